//! Bearer tokens on the kubelet API, as the kubelet's `--authentication-token-webhook`:
//! the token of an `Authorization: Bearer` header is sent to the API server in an
//! `authentication.k8s.io/v1` TokenReview (no audiences, as the kubelet sends none, so the
//! API server checks its own), and the user it names goes through the same
//! SubjectAccessReview as a certificate's user. Answers are cached as apiserver's delegating
//! authenticator caches them: authenticated and plainly unauthenticated answers for the
//! cache TTL (`--authentication-token-webhook-cache-ttl`, 2 min), answers carrying an error
//! and failed calls not at all. Tokens are never logged or kept: the cache is keyed by an
//! HMAC-SHA256 of the token under a key made at start. Layer 6.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::{Api, PostParams};
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

use super::auth::{User, in_authenticated_group};
use super::error::{Error, Result};
use crate::sources::kube::API_CALL_TIMEOUT;

/// The kubelet's `--authentication-token-webhook-cache-ttl` default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(2 * 60);

/// Longest token sent for review, in bytes. A service account token is about 1 KiB, an OIDC
/// token with many groups a few KiB; a longer one is refused without asking the API server,
/// so a caller cannot make systemk post its request head (up to 64 KiB) again and again.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Most answers kept; past it expired ones are dropped, then all, as in
/// [`super::auth::DecisionCache`], so callers cycling through tokens cannot grow it.
const CACHE_MAX: usize = 4096;

/// What an `Authorization` header holds, read as apiserver's `bearertoken` authenticator
/// reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No header, another scheme, or an empty token: this authenticator has nothing to say.
    Absent,
    /// A token longer than [`MAX_TOKEN_BYTES`]: refused without review.
    TooLong,
    /// The token.
    Token(&'a str),
}

/// The bearer token of an `Authorization` header value: surrounding whitespace trimmed,
/// split on single spaces, the scheme `Bearer` in any case, the token the second field
/// (what follows a third space is ignored, as upstream's `SplitN(auth, " ", 3)` does).
pub fn bearer(header: Option<&str>) -> Bearer<'_> {
    let Some(value) = header.map(str::trim).filter(|v| !v.is_empty()) else {
        return Bearer::Absent;
    };
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next().unwrap_or_default();
    let token = parts.next().unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Bearer::Absent;
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Bearer::TooLong;
    }
    Bearer::Token(token)
}

/// A token's cache key: HMAC-SHA256 under the process's key, never the token itself.
type Digest = [u8; 32];

/// What the API server said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The token is this user's.
    User(User),
    /// Not authenticated, with the API server's error when it gave one.
    Rejected(Option<String>),
}

/// Recent answers, each until it expires.
#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    entries: HashMap<Digest, (Outcome, Instant)>,
}

impl TokenCache {
    /// An empty cache keeping answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    /// The answer for `digest`, if still fresh at `now`.
    fn get(&self, digest: &Digest, now: Instant) -> Option<Outcome> {
        let (outcome, expires) = self.entries.get(digest)?;
        (now < *expires).then(|| outcome.clone())
    }

    /// Remembers an answer got at `now`; one carrying an error is not kept (upstream's
    /// `cacheErrs` is false), nor is anything when the TTL is zero.
    fn insert(&mut self, digest: Digest, outcome: Outcome, now: Instant) {
        if self.ttl.is_zero() || matches!(outcome, Outcome::Rejected(Some(_))) {
            return;
        }
        if self.entries.len() >= CACHE_MAX {
            self.entries.retain(|_, (_, expires)| now < *expires);
            if self.entries.len() >= CACHE_MAX {
                self.entries.clear();
            }
        }
        self.entries.insert(digest, (outcome, now + self.ttl));
    }
}

/// Authenticates bearer tokens with TokenReview.
pub struct TokenAuthenticator {
    client: kube::Client,
    key: hmac::Key,
    cache: Mutex<TokenCache>,
}

impl TokenAuthenticator {
    /// An authenticator asking through `client`, caching answers for `cache_ttl`; fails
    /// only when the system has no randomness for the cache key.
    pub fn new(client: kube::Client, cache_ttl: Duration) -> Result<Self> {
        Ok(Self {
            client,
            key: random_key()?,
            cache: Mutex::new(TokenCache::new(cache_ttl)),
        })
    }

    /// The user `token` belongs to, from the cache or the API server.
    pub async fn authenticate(&self, token: &str) -> Result<Outcome> {
        let digest = digest(&self.key, token);
        if let Some(outcome) = lock(&self.cache).get(&digest, Instant::now()) {
            return Ok(outcome);
        }
        let api = Api::<TokenReview>::all(self.client.clone());
        let failed = |message: String| Error::Api {
            action: "review a bearer token (TokenReview)",
            message,
        };
        let answer = tokio::time::timeout(
            API_CALL_TIMEOUT,
            api.create(&PostParams::default(), &review(token)),
        )
        .await
        .map_err(|_| failed(format!("no answer within {API_CALL_TIMEOUT:?}")))?
        .map_err(|err| failed(err.to_string()))?;
        let outcome = outcome(answer.status.unwrap_or_default());
        lock(&self.cache).insert(digest, outcome.clone(), Instant::now());
        Ok(outcome)
    }
}

fn random_key() -> Result<hmac::Key> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Local {
            action: "make the token cache key",
            message: "the system's random number generator failed".to_owned(),
        })?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

fn digest(key: &hmac::Key, token: &str) -> Digest {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(hmac::sign(key, token.as_bytes()).as_ref());
    digest
}

fn lock(cache: &Mutex<TokenCache>) -> std::sync::MutexGuard<'_, TokenCache> {
    // A panic while holding it cannot leave the map half-updated in a harmful way.
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The review the kubelet sends: the token and no audiences.
fn review(token: &str) -> TokenReview {
    TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_owned()),
            audiences: None,
        },
        ..TokenReview::default()
    }
}

/// What a review's status means for the caller.
fn outcome(status: TokenReviewStatus) -> Outcome {
    let error = status.error.filter(|e| !e.is_empty());
    let user = status.user.unwrap_or_default();
    let name = user.username.unwrap_or_default();
    if status.authenticated != Some(true) || name.is_empty() {
        return Outcome::Rejected(error);
    }
    let mut groups = user.groups.unwrap_or_default();
    in_authenticated_group(&mut groups);
    Outcome::User(User {
        name,
        groups,
        uid: user.uid.filter(|uid| !uid.is_empty()),
        extra: user.extra.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::authentication::v1::UserInfo;

    use super::*;
    use crate::server::auth::AUTHENTICATED_GROUP;

    #[test]
    fn bearer_is_read_as_apiserver_reads_it() {
        for (header, expected) in [
            (None, Bearer::Absent),
            (Some(""), Bearer::Absent),
            (Some("   "), Bearer::Absent),
            (Some("Bearer abc"), Bearer::Token("abc")),
            (Some("bearer abc"), Bearer::Token("abc")),
            (Some("BEARER abc"), Bearer::Token("abc")),
            (Some("  Bearer abc  "), Bearer::Token("abc")),
            (Some("Bearer abc def"), Bearer::Token("abc")),
            // Two spaces: the token is the empty field between them.
            (Some("Bearer  abc"), Bearer::Absent),
            (Some("Bearer"), Bearer::Absent),
            (Some("Bearer "), Bearer::Absent),
            (Some("Basic YWxpY2U6c2VjcmV0"), Bearer::Absent),
            (Some("Bearerabc"), Bearer::Absent),
            (Some("Bearer\tabc"), Bearer::Absent),
        ] {
            assert_eq!(bearer(header), expected, "{header:?}");
        }
    }

    #[test]
    fn a_token_over_the_bound_is_too_long() {
        let longest = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES));
        assert_eq!(bearer(Some(&longest)), Bearer::Token(&longest[7..]));
        let over = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer(Some(&over)), Bearer::TooLong);
    }

    #[test]
    fn digests_are_keyed_and_never_the_token() {
        let (a, b) = (random_key().unwrap(), random_key().unwrap());
        let token = "secret-token";
        assert_eq!(digest(&a, token), digest(&a, token));
        assert_ne!(digest(&a, token), digest(&a, "secret-tokeN"));
        // Another process (key) files the same token elsewhere.
        assert_ne!(digest(&a, token), digest(&b, token));
        assert!(
            !digest(&a, token)
                .windows(token.len())
                .any(|w| w == token.as_bytes())
        );
    }

    fn prometheus() -> User {
        User {
            name: "system:serviceaccount:monitoring:prometheus".into(),
            groups: vec!["system:serviceaccounts".into(), AUTHENTICATED_GROUP.into()],
            uid: Some("u-1".into()),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn answers_last_the_ttl_errors_not_at_all() {
        let mut cache = TokenCache::new(DEFAULT_CACHE_TTL);
        let t0 = Instant::now();
        let (good, bad, broken) = ([1; 32], [2; 32], [3; 32]);
        cache.insert(good, Outcome::User(prometheus()), t0);
        cache.insert(bad, Outcome::Rejected(None), t0);
        cache.insert(broken, Outcome::Rejected(Some("expired".into())), t0);
        let before = t0 + Duration::from_secs(119);
        assert_eq!(cache.get(&good, before), Some(Outcome::User(prometheus())));
        assert_eq!(cache.get(&bad, before), Some(Outcome::Rejected(None)));
        assert_eq!(cache.get(&broken, t0), None);
        let at = t0 + DEFAULT_CACHE_TTL;
        assert_eq!(cache.get(&good, at), None);
        assert_eq!(cache.get(&bad, at), None);
        assert_eq!(cache.get(&[4; 32], t0), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let mut cache = TokenCache::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.insert([1; 32], Outcome::User(prometheus()), t0);
        assert_eq!(cache.get(&[1; 32], t0), None);
    }

    #[test]
    fn a_full_cache_drops_expired_answers_first_then_all() {
        let mut cache = TokenCache::new(DEFAULT_CACHE_TTL);
        let t0 = Instant::now();
        for i in 0..CACHE_MAX {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(digest, Outcome::Rejected(None), t0);
        }
        assert_eq!(cache.entries.len(), CACHE_MAX);
        // Still fresh: nothing expired to drop, so all go.
        cache.insert([0xff; 32], Outcome::User(prometheus()), t0);
        assert_eq!(cache.entries.len(), 1);
        let later = t0 + DEFAULT_CACHE_TTL;
        for i in 0..CACHE_MAX - 1 {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(digest, Outcome::Rejected(None), later);
        }
        cache.insert([0xee; 32], Outcome::User(prometheus()), later);
        // The one from t0 expired and was dropped; the fresh ones stay.
        assert_eq!(cache.entries.len(), CACHE_MAX);
        assert_eq!(cache.get(&[0xff; 32], later), None);
    }

    #[test]
    fn the_review_carries_the_token_and_no_audiences() {
        let review = review("abc");
        assert_eq!(review.spec.token.as_deref(), Some("abc"));
        assert_eq!(review.spec.audiences, None);
    }

    #[test]
    fn an_authenticated_answer_names_the_user_in_system_authenticated() {
        let status = TokenReviewStatus {
            authenticated: Some(true),
            user: Some(UserInfo {
                username: Some("system:serviceaccount:monitoring:prometheus".into()),
                uid: Some("u-1".into()),
                groups: Some(vec!["system:serviceaccounts".into()]),
                extra: Some(
                    [(
                        "authentication.kubernetes.io/pod-name".into(),
                        vec!["p".into()],
                    )]
                    .into(),
                ),
            }),
            ..TokenReviewStatus::default()
        };
        let Outcome::User(user) = outcome(status) else {
            panic!("not authenticated");
        };
        assert_eq!(user.name, "system:serviceaccount:monitoring:prometheus");
        assert_eq!(user.groups, ["system:serviceaccounts", AUTHENTICATED_GROUP]);
        assert_eq!(user.uid.as_deref(), Some("u-1"));
        assert_eq!(
            user.extra["authentication.kubernetes.io/pod-name"],
            ["p".to_owned()]
        );
    }

    #[test]
    fn unauthenticated_or_nameless_answers_are_rejections() {
        assert_eq!(
            outcome(TokenReviewStatus::default()),
            Outcome::Rejected(None)
        );
        let expired = TokenReviewStatus {
            authenticated: Some(false),
            error: Some("service account token has expired".into()),
            ..TokenReviewStatus::default()
        };
        assert_eq!(
            outcome(expired),
            Outcome::Rejected(Some("service account token has expired".into()))
        );
        let nameless = TokenReviewStatus {
            authenticated: Some(true),
            user: Some(UserInfo::default()),
            ..TokenReviewStatus::default()
        };
        assert_eq!(outcome(nameless), Outcome::Rejected(None));
    }
}
