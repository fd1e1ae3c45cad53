//! Bootstrap tokens, as kubeadm creates them and kube-apiserver's bootstrap token
//! authenticator (`plugin/pkg/auth/authenticator/token/bootstrap`) reads them: Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` with
//! `token-id`, `token-secret`, `usage-bootstrap-authentication: "true"`, optional
//! `expiration` (RFC 3339) and `auth-extra-groups` (comma-separated
//! `system:bootstrappers:…`). The user is `system:bootstrap:<id>` in `system:bootstrappers`
//! plus the extra groups. What such a user may do is the `system:node-bootstrapper`
//! ClusterRole (CSRs) and discovery: `bootstrapper_allows`.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::authn::{AUTHENTICATED, User};
use super::resources;
use super::store::ObjectKey;
use super::{Api, base64, objects};

/// The group of every bootstrap token user.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";
/// The Secret type of bootstrap tokens.
const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";

/// `Some(Some(user))` for a valid bootstrap token, `Some(None)` for a token of the bootstrap
/// form that does not authenticate, `None` for a token of another form (left to the other
/// authenticators).
pub fn authenticate(api: &Api, token: &str) -> Option<Option<User>> {
    let (id, secret) = parse(token)?;
    Some(check(api, id, secret))
}

/// `<id>.<secret>`: 6 and 16 characters of `[a-z0-9]` (`bootstraputil.ParseToken`).
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let valid = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (valid(id, 6) && valid(secret, 16)).then_some((id, secret))
}

fn check(api: &Api, id: &str, secret: &str) -> Option<User> {
    let state = api.store.lock();
    let key = ObjectKey::new(
        resources::core("secrets"),
        "kube-system",
        &format!("bootstrap-token-{id}"),
    );
    let stored = state.get(&key)?;
    if !stored["metadata"]["deletionTimestamp"].is_null() || stored["type"] != SECRET_TYPE {
        return None;
    }
    let data = |name: &str| {
        stored["data"][name]
            .as_str()
            .and_then(base64::decode_standard)
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    if data("token-id").as_deref() != Some(id) || data("token-secret").as_deref() != Some(secret) {
        return None;
    }
    if let Some(expiration) = data("expiration") {
        let expires: Timestamp = expiration.parse().ok()?;
        if expires.as_second() <= objects::unix_now() {
            return None;
        }
    }
    if data("usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    // `GetGroups`: the default group plus each extra one, validated, deduplicated, sorted.
    let mut groups = std::collections::BTreeSet::from([BOOTSTRAPPERS.to_owned()]);
    let extra = data("auth-extra-groups").unwrap_or_default();
    if !extra.is_empty() {
        for group in extra.split(',') {
            if !valid_group(group) {
                return None;
            }
            groups.insert(group.to_owned());
        }
    }
    let mut groups: Vec<String> = groups.into_iter().collect();
    groups.push(AUTHENTICATED.to_owned());
    Some(User {
        name: format!("system:bootstrap:{id}"),
        uid: String::new(),
        groups,
        extra: json!({}),
    })
}

/// `ValidateBootstrapGroupName`: `\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`.
fn valid_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    rest.len() <= 256
        && rest.bytes().last().is_some_and(allowed)
        && rest.bytes().all(|b| allowed(b) || b == b':' || b == b'-')
}

/// Creates a bootstrap token Secret for `groups` (each `system:bootstrappers:…`), valid for
/// an hour; returns the token `<id>.<secret>`.
pub fn create_token(api: &Api, groups: &[&str]) -> String {
    let random = |len: usize| -> String {
        let mut out = String::new();
        while out.len() < len {
            out.extend(
                objects::new_uid()
                    .chars()
                    .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            );
        }
        out.truncate(len);
        out
    };
    let (id, secret) = (random(6), random(16));
    let secret_object = json!({
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "type": SECRET_TYPE,
        "stringData": {
            "token-id": id,
            "token-secret": secret,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "expiration": objects::now_plus(3600),
            "auth-extra-groups": groups.join(","),
        },
    });
    super::server::create_internal(
        api,
        resources::core("secrets"),
        "kube-system",
        secret_object,
    );
    format!("{id}.{secret}")
}

/// What RBAC gives a bootstrap token user: `system:node-bootstrapper` (create, get, list,
/// watch certificatesigningrequests) plus the discovery roles; `verb` on
/// `resource`/`subresource`.
pub fn bootstrapper_allows(verb: &str, resource: &str, subresource: Option<&str>) -> bool {
    resource == "certificatesigningrequests"
        && subresource.is_none()
        && matches!(verb, "create" | "get" | "list" | "watch")
}
