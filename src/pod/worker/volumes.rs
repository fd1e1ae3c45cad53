//! Keeping a pod's configMap, secret, projected and downwardAPI volumes current: on every
//! pass their files are computed from the objects (served from watches, so cheap) and the
//! tokens the pod holds, and rewritten atomically where they differ. Tokens are asked for
//! again once 80 % of their lifetime has passed, as the kubelet does. A volume that cannot
//! be written keeps its last files. Secret and projected volumes are written to the
//! pod's runtime directory (tmpfs) and never to persistent disk; files an older systemk
//! kept for them in the state directory are removed. Layer 4.

use std::collections::BTreeMap;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::{earliest, later};
use crate::clock::now;
use crate::pod::context::Context;
use crate::pod::dirs::remove_tree;
use crate::pod::env::EnvFacts;
use crate::pod::error::Error;
use crate::pod::objects::{IssuedToken, TokenSpec, fetch_for_volumes, pod_volumes};
use crate::pod::progress::EventKind;
use crate::pod::state::PodState;
use crate::pod::state::{HeldToken, VolumeFailures};
use crate::pod::volumes::{
    VolumeSources, token_specs, volume_owner, volume_payload, volume_token_specs, write_payload,
};
use crate::unit::{ApiVolumeKind, api_volume_path, is_dns_label, legacy_secret_volume_path};

/// How often a pod's volumes are compared with their objects even when no change was
/// announced (the kubelet's sync period): a missed watch event heals, and the watches of
/// the objects stay in use.
const VOLUME_RESYNC: Duration = Duration::from_secs(60);
/// A token is renewed at this share of its lifetime, and at the latest after a day.
const TOKEN_REFRESH_SHARE: f64 = 0.8;
const TOKEN_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Mode of the directories holding the volumes (below the root-only pod directory).
const VOLUMES_DIR_MODE: u32 = 0o700;

/// Whether systemk writes files for any volume of `pod`.
fn has_api_volumes(pod: &Pod) -> bool {
    pod_volumes(pod).any(|v| ApiVolumeKind::of(v).is_some())
}

/// When the pod's volumes need a pass: the resync, or a token's renewal if earlier.
pub(super) fn volumes_wake(pod: &Pod, state: &PodState, now: Timestamp) -> Option<Timestamp> {
    if !has_api_volumes(pod) {
        return None;
    }
    let tokens = state.volumes().next_renewal();
    earliest(later(now, VOLUME_RESYNC), tokens)
}

/// Writes every volume of the pod whose files changed; returns those that failed.
pub(super) async fn sync_volumes(
    ctx: &Context,
    uid: &str,
    pod: &Pod,
    state: &mut PodState,
) -> VolumeFailures {
    let mut failures = VolumeFailures::new();
    if !has_api_volumes(pod) {
        return failures;
    }
    let token_failures = renew_tokens(ctx, pod, state).await;
    let objects = match fetch_for_volumes(ctx.objects.as_deref(), pod).await {
        Ok(objects) => objects,
        Err(err) => {
            for volume in pod_volumes(pod).filter(|v| ApiVolumeKind::of(v).is_some()) {
                failures.insert(volume.name.clone(), crate::error_chain::chain(&err));
            }
            return failures;
        }
    };
    let tokens: HashMap<TokenSpec, IssuedToken> = state.volumes().issued_tokens();
    let facts = EnvFacts {
        node_name: ctx.node.hostname.clone(),
        allocatable: ctx.allocatable,
        ..EnvFacts::default()
    };
    let sources = VolumeSources {
        objects: objects.as_ref(),
        tokens: &tokens,
        facts: &facts,
    };
    let pod_dir = ctx.dirs.pod_dir(uid);
    let runtime_pod_dir = ctx.dirs.runtime_pod_dir(uid);
    for volume in pod_volumes(pod) {
        let Some(dir) = api_volume_path(&pod_dir, &runtime_pod_dir, volume) else {
            continue;
        };
        let name = volume.name.clone();
        if is_dns_label(&name)
            && let Some(legacy) = legacy_secret_volume_path(&pod_dir, volume)
            && let Err(err) = remove_tree(&legacy)
        {
            tracing::warn!(pod_uid = uid, volume = %name, error = %crate::error_chain::Chain(&err), "cannot remove the secret files an older systemk kept on disk");
        }
        if let Some(why) = token_failures.get(&name) {
            failures.insert(name, why.clone());
            continue;
        }
        if !is_dns_label(&name) {
            failures.insert(name, "the volume name is not a DNS label".to_owned());
            continue;
        }
        let payload = match volume_payload(pod, volume, sources) {
            Ok(Some(payload)) => payload,
            Ok(None) => continue,
            Err(why) => {
                failures.insert(name, why);
                continue;
            }
        };
        let owner = volume_owner(pod, &name, state.prepared().identities());
        let write = tokio::task::spawn_blocking(move || {
            if let Some(parent) = dir.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(VOLUMES_DIR_MODE)
                    .create(parent)
                    .map_err(|source| Error::Io {
                        path: parent.to_owned(),
                        source,
                    })?;
            }
            write_payload(&dir, &payload, owner)
        })
        .await;
        match write {
            Ok(Ok(true)) => tracing::info!(pod_uid = uid, volume = %name, "volume files updated"),
            Ok(Ok(false)) => {}
            Ok(Err(err)) => {
                failures.insert(name, crate::error_chain::chain(&err));
            }
            Err(err) => {
                failures.insert(name, format!("writing the files failed: {err}"));
            }
        }
    }
    failures
}

/// Brings the volume files of a pod whose units are prepared up to date; a volume that
/// newly fails (or fails differently) is a FailedMount event, its old files stay.
pub(super) async fn refresh_volumes(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
) {
    let failures = sync_volumes(ctx, uid, pod, state).await;
    for (volume, why) in &failures {
        if state.volumes().failure(volume) != Some(why) {
            tracing::warn!(pod_uid = uid, volume = %volume, error = %why, "cannot update a volume");
            state.event(
                pod,
                EventKind::Warning,
                "FailedMount",
                format!("MountVolume.SetUp failed for volume {volume:?}: {why}"),
            );
        }
    }
    state.volumes_mut().set_failures(failures);
}

/// Asks for the tokens the pod's projected volumes need and have not, or must renew;
/// returns why, by volume, for those that could not be had.
async fn renew_tokens(ctx: &Context, pod: &Pod, state: &mut PodState) -> BTreeMap<String, String> {
    let specs = token_specs(pod);
    state.volumes_mut().keep_tokens(&specs);
    let mut failed: HashMap<TokenSpec, String> = HashMap::new();
    for spec in specs {
        let now = now();
        if !state.volumes().token_due(&spec, now) {
            continue;
        }
        let Some(lookup) = ctx.objects.as_deref() else {
            failed.insert(
                spec,
                "a serviceAccountToken needs the Kubernetes API, and systemk runs without one"
                    .to_owned(),
            );
            continue;
        };
        match lookup.service_account_token(&spec).await {
            Ok(issued) => {
                tracing::info!(service_account = %spec.service_account, expires_at = %issued.expires_at, "token issued");
                let refresh_at = refresh_time(now, issued.expires_at);
                state
                    .volumes_mut()
                    .hold_token(spec, HeldToken { issued, refresh_at });
            }
            // A token still valid serves until it expires; the next pass asks again.
            Err(err) if state.volumes().holds_token(&spec) => {
                tracing::warn!(service_account = %spec.service_account, error = %crate::error_chain::Chain(&err), "renewing a token failed");
            }
            Err(err) => {
                failed.insert(spec, crate::error_chain::chain(&err));
            }
        }
    }
    let mut by_volume = BTreeMap::new();
    for volume in pod_volumes(pod) {
        if let Some(why) = volume_token_specs(pod, volume)
            .iter()
            .find_map(|spec| failed.get(spec))
        {
            by_volume.insert(volume.name.clone(), why.clone());
        }
    }
    by_volume
}

/// When to renew a token issued at `now` that expires at `expires_at`.
fn refresh_time(now: Timestamp, expires_at: Timestamp) -> Timestamp {
    let lifetime = Duration::try_from(now.duration_until(expires_at)).unwrap_or_default();
    let wait = lifetime.mul_f64(TOKEN_REFRESH_SHARE).min(TOKEN_MAX_AGE);
    later(now, wait).unwrap_or(expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_at_eighty_percent_of_their_life() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let hour = Timestamp::from_second(1_000_000 + 3600).unwrap();
        assert_eq!(
            refresh_time(now, hour),
            Timestamp::from_second(1_000_000 + 2880).unwrap()
        );
        let year = Timestamp::from_second(1_000_000 + 365 * 86_400).unwrap();
        assert_eq!(
            refresh_time(now, year),
            Timestamp::from_second(1_000_000 + 86_400).unwrap()
        );
        assert_eq!(refresh_time(now, now), now);
    }
}
