//! Who calls the kubelet API and whether they may: the user and groups of a verified
//! client certificate (subject CN and O, as Kubernetes reads them) or of a bearer token
//! ([`super::token`]), the request's
//! attributes (verb, `nodes/<subresource>`), and the decision, asked of the API server
//! with a SubjectAccessReview as the kubelet's webhook authorizer does and cached
//! (allowed 5 min, denied 30 s). Never decides from anything but a verified certificate
//! or a token the API server vouched for.
//! Layer 6.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::error::{Error, Result};
use crate::sources::kube::API_CALL_TIMEOUT;

/// How long an allowed decision is reused: the kubelet's
/// `--authorization-webhook-cache-authorized-ttl` default.
const ALLOWED_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a denied decision is reused: the kubelet's
/// `--authorization-webhook-cache-unauthorized-ttl` default.
const DENIED_TTL: Duration = Duration::from_secs(30);
/// Most decisions kept; past it expired ones are dropped, and if that is not enough the
/// whole cache, so callers cycling through names cannot grow it without bound.
const CACHE_MAX: usize = 4096;

/// The caller, from its verified client certificate or a reviewed bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    /// The subject's common name, or the token's user name.
    pub name: String,
    /// The subject's organisations, or the token's groups.
    pub groups: Vec<String>,
    /// The token's user UID (a certificate names none).
    pub uid: Option<String>,
    /// The token's extra user information (a certificate has none).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The user a DER client certificate names; `None` when it does not parse or has no
/// common name.
pub fn user_from_cert(der: &[u8]) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    in_authenticated_group(&mut groups);
    Some(User {
        name,
        groups,
        uid: None,
        extra: BTreeMap::new(),
    })
}

/// The group every authenticated user is in, however it authenticated.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Adds [`AUTHENTICATED_GROUP`] unless the authenticator named it already, as apiserver's
/// `AuthenticatedGroupAdder` does for every authenticator.
pub fn in_authenticated_group(groups: &mut Vec<String>) {
    if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        groups.push(AUTHENTICATED_GROUP.to_owned());
    }
}

/// What a request asks to do to the node, in RBAC terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// `get`, `create`, …
    pub verb: &'static str,
    /// The subresource of `nodes`: `log`, `stats`, `metrics`, `spec` or `proxy`.
    pub subresource: &'static str,
}

impl Attributes {
    /// The attributes of `method` on `path`, as the kubelet maps them; `None` for a
    /// method the kubelet API has no verb for.
    pub fn of(method: &str, path: &str) -> Option<Self> {
        let verb = match method {
            "GET" | "HEAD" => "get",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => return None,
        };
        Some(Self {
            verb,
            subresource: subresource(path),
        })
    }
}

/// The paths that run something in a container, over an upgraded stream.
const STREAMING_PATHS: [&str; 4] = ["/exec", "/attach", "/portForward", "/run"];

impl Attributes {
    /// What a request must also be allowed, beyond [`Attributes::of`]: a GET that runs
    /// something in a container (exec over a WebSocket) also needs `create`, as the API
    /// server asks for `pods/exec` since 1.35 (`AuthorizePodWebsocketUpgradeCreatePermission`).
    /// Stricter than the kubelet, which asks only `get`: a scraper given `get` on
    /// `nodes/proxy` for `/pods` must not be able to run commands in every pod.
    pub fn also_required(&self, path: &str) -> Option<Self> {
        let streaming = STREAMING_PATHS.iter().any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        (self.verb == "get" && streaming).then_some(Self {
            verb: "create",
            subresource: self.subresource,
        })
    }
}

/// The `nodes` subresource a path is authorized as (kubelet `server/auth.go`).
fn subresource(path: &str) -> &'static str {
    let is_subpath = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if is_subpath("/stats") {
        "stats"
    } else if is_subpath("/metrics") {
        "metrics"
    } else if is_subpath("/logs") {
        "log"
    } else if is_subpath("/spec") {
        "spec"
    } else {
        "proxy"
    }
}

/// Decisions already made, each until it expires.
#[derive(Debug, Default)]
pub struct DecisionCache {
    entries: HashMap<(User, Attributes), (bool, Instant)>,
}

impl DecisionCache {
    /// The cached decision for `user` doing `attributes`, if still fresh at `now`.
    pub fn get(&self, user: &User, attributes: &Attributes, now: Instant) -> Option<bool> {
        let key = (user.clone(), attributes.clone());
        let &(allowed, expires) = self.entries.get(&key)?;
        (now < expires).then_some(allowed)
    }

    /// Remembers a decision made at `now`.
    pub fn insert(&mut self, user: User, attributes: Attributes, allowed: bool, now: Instant) {
        if self.entries.len() >= CACHE_MAX {
            self.entries.retain(|_, (_, expires)| now < *expires);
            if self.entries.len() >= CACHE_MAX {
                self.entries.clear();
            }
        }
        let ttl = if allowed { ALLOWED_TTL } else { DENIED_TTL };
        self.entries
            .insert((user, attributes), (allowed, now + ttl));
    }
}

/// A decision with the reviewer's reason, for the 403 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Why, when the reviewer said.
    pub reason: Option<String>,
}

/// Decides whether a user may do something to this node.
pub enum Authorizer {
    /// No cluster to ask: a certificate verified by `--client-ca-file` is enough.
    ClientCaOnly,
    /// Ask the API server (SubjectAccessReview), caching its answers.
    Cluster {
        /// The node's client.
        client: kube::Client,
        /// The node's name, the `name` of every review.
        node_name: String,
        /// Recent decisions; a sync lock, never held across an await.
        cache: Mutex<DecisionCache>,
    },
}

impl Authorizer {
    /// Whether `user` may do `attributes` to the node.
    pub async fn decide(&self, user: &User, attributes: &Attributes) -> Result<Decision> {
        let Authorizer::Cluster {
            client,
            node_name,
            cache,
        } = self
        else {
            return Ok(Decision {
                allowed: true,
                reason: None,
            });
        };
        let cached = lock(cache).get(user, attributes, Instant::now());
        if let Some(allowed) = cached {
            return Ok(Decision {
                allowed,
                reason: None,
            });
        }
        let review = review(user, attributes, node_name);
        let api = Api::<SubjectAccessReview>::all(client.clone());
        let answer = tokio::time::timeout(
            API_CALL_TIMEOUT,
            api.create(&PostParams::default(), &review),
        )
        .await
        .map_err(|_| Error::Api {
            action: "review access (SubjectAccessReview)",
            message: format!("no answer within {API_CALL_TIMEOUT:?}"),
        })?
        .map_err(|err| Error::Api {
            action: "review access (SubjectAccessReview)",
            message: err.to_string(),
        })?;
        let status = answer.status.unwrap_or_default();
        let allowed = status.allowed && !status.denied.unwrap_or(false);
        lock(cache).insert(user.clone(), attributes.clone(), allowed, Instant::now());
        Ok(Decision {
            allowed,
            reason: status.reason.filter(|r| !r.is_empty()),
        })
    }
}

fn lock(cache: &Mutex<DecisionCache>) -> std::sync::MutexGuard<'_, DecisionCache> {
    // A panic while holding it cannot leave the map half-updated in a harmful way.
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The review the kubelet sends for `user` doing `attributes` to node `node_name`.
fn review(user: &User, attributes: &Attributes, node_name: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            groups: Some(user.groups.clone()),
            uid: user.uid.clone(),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone().into_iter().collect()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(attributes.verb.to_owned()),
                group: Some(String::new()),
                version: Some("v1".to_owned()),
                resource: Some("nodes".to_owned()),
                subresource: Some(attributes.subresource.to_owned()),
                name: Some(node_name.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_the_kubelets_subresources() {
        for (path, expected) in [
            ("/logs", "log"),
            ("/logs/syslog", "log"),
            ("/logsx", "proxy"),
            ("/stats/summary", "stats"),
            ("/metrics", "metrics"),
            ("/metrics/resource", "metrics"),
            ("/spec/", "spec"),
            ("/containerLogs/default/web/app", "proxy"),
            ("/exec/default/web/app", "proxy"),
            ("/attach/default/web/app", "proxy"),
            ("/portForward/default/web", "proxy"),
            ("/pods", "proxy"),
            ("/healthz", "proxy"),
            ("/", "proxy"),
        ] {
            assert_eq!(subresource(path), expected, "{path}");
        }
    }

    #[test]
    fn methods_map_to_verbs() {
        let verb = |method| Attributes::of(method, "/pods").map(|a| a.verb);
        assert_eq!(verb("GET"), Some("get"));
        assert_eq!(verb("POST"), Some("create"));
        assert_eq!(verb("DELETE"), Some("delete"));
        assert_eq!(verb("TRACE"), None);
    }

    #[test]
    fn a_get_that_runs_a_command_also_needs_create() {
        let extra = |method, path| Attributes::of(method, path).unwrap().also_required(path);
        let create = Some(Attributes {
            verb: "create",
            subresource: "proxy",
        });
        assert_eq!(extra("GET", "/exec/default/web/app"), create);
        assert_eq!(extra("GET", "/attach/default/web/app"), create);
        assert_eq!(extra("GET", "/portForward/default/web"), create);
        assert_eq!(extra("POST", "/exec/default/web/app"), None);
        assert_eq!(extra("GET", "/pods"), None);
        assert_eq!(extra("GET", "/containerLogs/default/web/app"), None);
        assert_eq!(extra("GET", "/executive"), None);
    }

    fn alice() -> User {
        User {
            name: "alice".into(),
            groups: vec!["devs".into()],
            uid: None,
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn allowed_decisions_last_five_minutes_denied_thirty_seconds() {
        let mut cache = DecisionCache::default();
        let t0 = Instant::now();
        let logs = Attributes::of("GET", "/containerLogs/a/b/c").unwrap();
        let stats = Attributes::of("GET", "/stats/summary").unwrap();
        cache.insert(alice(), logs.clone(), true, t0);
        cache.insert(alice(), stats.clone(), false, t0);
        assert_eq!(
            cache.get(&alice(), &logs, t0 + Duration::from_secs(299)),
            Some(true)
        );
        assert_eq!(
            cache.get(&alice(), &logs, t0 + Duration::from_secs(300)),
            None
        );
        assert_eq!(
            cache.get(&alice(), &stats, t0 + Duration::from_secs(29)),
            Some(false)
        );
        assert_eq!(
            cache.get(&alice(), &stats, t0 + Duration::from_secs(30)),
            None
        );
        let bob = User {
            name: "bob".into(),
            groups: vec![],
            uid: None,
            extra: BTreeMap::new(),
        };
        assert_eq!(cache.get(&bob, &logs, t0), None);
    }

    #[test]
    fn a_full_cache_drops_expired_decisions_first() {
        let mut cache = DecisionCache::default();
        let t0 = Instant::now();
        for i in 0..CACHE_MAX {
            let user = User {
                name: format!("u{i}"),
                groups: vec![],
                uid: None,
                extra: BTreeMap::new(),
            };
            cache.insert(user, Attributes::of("GET", "/pods").unwrap(), false, t0);
        }
        let later = t0 + Duration::from_secs(31);
        cache.insert(
            alice(),
            Attributes::of("GET", "/pods").unwrap(),
            true,
            later,
        );
        assert_eq!(cache.entries.len(), 1);
    }

    #[test]
    fn user_is_the_subjects_cn_and_groups_its_organisations() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:kube-apiserver");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            user_from_cert(cert.der()),
            Some(User {
                name: "system:kube-apiserver".into(),
                groups: vec!["system:masters".into(), AUTHENTICATED_GROUP.into()],
                uid: None,
                extra: BTreeMap::new(),
            })
        );
        assert_eq!(user_from_cert(b"garbage"), None);
    }

    #[test]
    fn review_names_the_node_and_subresource() {
        let attributes = Attributes::of("GET", "/containerLogs/a/b/c").unwrap();
        let review = review(&alice(), &attributes, "node-a");
        let resource = review.spec.resource_attributes.unwrap();
        assert_eq!(resource.resource.as_deref(), Some("nodes"));
        assert_eq!(resource.subresource.as_deref(), Some("proxy"));
        assert_eq!(resource.name.as_deref(), Some("node-a"));
        assert_eq!(resource.verb.as_deref(), Some("get"));
        assert_eq!(review.spec.user.as_deref(), Some("alice"));
    }
}
