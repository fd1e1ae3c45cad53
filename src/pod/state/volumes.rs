//! What a pod's volumes hold between passes: the service-account tokens its projected
//! volumes carry (with when to renew each) and the volumes whose files could not be
//! written at the last pass. Pure. Layer 4.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::jiff::Timestamp;

use crate::pod::objects::{IssuedToken, TokenSpec};

/// Volumes that could not be written, by name, with why.
pub(crate) type VolumeFailures = BTreeMap<String, String>;

/// A token a pod holds and when to ask for a new one.
#[derive(Debug, Clone)]
pub(crate) struct HeldToken {
    /// The token as issued.
    pub(crate) issued: IssuedToken,
    /// When to ask for a new one.
    pub(crate) refresh_at: Timestamp,
}

/// What a pod's volumes hold between passes.
#[derive(Debug, Default)]
pub(crate) struct VolumeState {
    /// Tokens of the pod's projected volumes.
    tokens: HashMap<TokenSpec, HeldToken>,
    /// Volumes whose files could not be written at the last pass, with why.
    failures: VolumeFailures,
}

impl VolumeState {
    /// Drops the tokens no volume of the pod asks for any more.
    pub(crate) fn keep_tokens(&mut self, wanted: &[TokenSpec]) {
        self.tokens.retain(|spec, _| wanted.contains(spec));
    }

    /// Whether a token for `spec` must be asked for at `now`: none is held, or the one
    /// held is due for renewal.
    pub(crate) fn token_due(&self, spec: &TokenSpec, now: Timestamp) -> bool {
        self.tokens
            .get(spec)
            .is_none_or(|held| now >= held.refresh_at)
    }

    /// Whether a token for `spec` is held (it serves until it expires).
    pub(crate) fn holds_token(&self, spec: &TokenSpec) -> bool {
        self.tokens.contains_key(spec)
    }

    /// Holds `token` for `spec`.
    pub(crate) fn hold_token(&mut self, spec: TokenSpec, token: HeldToken) {
        self.tokens.insert(spec, token);
    }

    /// The tokens held, as the volumes' files carry them.
    pub(crate) fn issued_tokens(&self) -> HashMap<TokenSpec, IssuedToken> {
        self.tokens
            .iter()
            .map(|(spec, held)| (spec.clone(), held.issued.clone()))
            .collect()
    }

    /// When the first held token is due for renewal.
    pub(crate) fn next_renewal(&self) -> Option<Timestamp> {
        self.tokens.values().map(|held| held.refresh_at).min()
    }

    /// Why `volume` could not be written at the last pass, if so.
    pub(crate) fn failure(&self, volume: &str) -> Option<&String> {
        self.failures.get(volume)
    }

    /// The volumes that failed at this pass.
    pub(crate) fn set_failures(&mut self, failures: VolumeFailures) {
        self.failures = failures;
    }
}
