//! Stopping a pod: within the grace period its deletion or spec asks for (or, for a pod
//! adopted at start, the one its units were written with), then removing its units, its
//! slice and its directory. As the kubelet does, every `preStop` hook runs first, then the
//! app containers stop, then the sidecars one by one in reverse order, all within the
//! one grace period. Layer 4.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use super::hooks::{has_pre_stop, pre_stop};
use super::{STOP_MARGIN, read_unit};
use crate::pod::container_unit::{ContainerRef, containers, stop_order, unit_name};
use crate::pod::context::Context;
use crate::pod::error::Result;
use crate::pod::observe::is_running;
use crate::pod::progress::EventKind;
use crate::pod::state::PodState;
use crate::systemd::UnitStatus;
use crate::unit::{SliceName, UnitName};

/// The least time a container gets to stop after waiting for its turn (the kubelet's
/// `minimumGracePeriodInSeconds`), so a late sidecar is not SIGKILLed at once.
const MIN_STOP: Duration = Duration::from_secs(2);

/// Stops a pod whose deletion was requested (`deletionTimestamp`): like [`cleanup`], within
/// the grace period the deletion asked for. Its source still lists it until the API
/// object is gone, so the pod stays desired but must not run.
pub async fn terminate(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
) -> Result<()> {
    state.prepared_mut().applied_to(pod);
    cleanup(ctx, uid, state).await
}

/// Stops every unit of a pod that is no longer desired (each within its grace period),
/// removes the units, the pod's slice and its directory.
pub async fn cleanup(ctx: &Context, uid: &str, state: &mut PodState) -> Result<()> {
    let names: Vec<UnitName> = state.units().iter().cloned().collect();
    if !names.is_empty() {
        let timeout = match state.prepared().applied().map(Arc::as_ref) {
            Some(pod) => stop_timeout(Some(pod)),
            // Adopted at start (the manifest went away while systemk was down): the
            // units still say what grace their pod gave.
            None => written_grace(&ctx.unit_dir, &names).await + STOP_MARGIN,
        };
        if let Some(pod) = state.prepared().applied().cloned() {
            for name in &names {
                state.event(
                    &pod,
                    EventKind::Normal,
                    "Killing",
                    format!("Stopping unit {name}"),
                );
            }
        }
        let applied = state.prepared().applied().cloned();
        let pre_stops = names
            .iter()
            .map(|name| pre_stop_of(ctx, applied.as_ref(), state, name, timeout));
        let began = Instant::now();
        let timeouts = futures::future::join_all(pre_stops).await;
        let timeouts: HashMap<&UnitName, Duration> = names.iter().zip(timeouts).collect();
        for wave in stop_waves(applied.as_deref(), &names) {
            let stops = wave.iter().map(|name| {
                let timeout = timeouts.get(name).copied().unwrap_or(timeout);
                ctx.systemd.stop(name, left(timeout, began))
            });
            for (name, stopped) in wave.iter().zip(futures::future::join_all(stops).await) {
                if let Err(err) = stopped {
                    tracing::warn!(unit = %name, error = %crate::error_chain::Chain(&err), "stopping a removed pod's unit failed");
                }
            }
        }
        ctx.systemd.remove(&ctx.unit_dir, &names).await?;
        tracing::info!(
            pod_uid = uid,
            units = names.len(),
            "removed the units of a pod"
        );
    }
    state.run_mut().clear_units();
    // Every slice the UID may have (a static pod keeps its UID across class changes);
    // empty now that its units are gone. A UID that names no slice never had one.
    if let Ok(slices) = SliceName::all_for_pod(uid) {
        ctx.systemd.remove_slices(&ctx.unit_dir, &slices).await?;
    }
    // Its packages are free for other versions once no unit of it runs.
    ctx.installer.release(uid);
    ctx.dirs.remove_async(uid).await?;
    Ok(())
}

/// The units of `names` in the groups they stop in, one group after the other: all but
/// the sidecars at once, then each sidecar alone, in reverse order of `initContainers`.
/// Without the pod's spec (adopted at start) all stop at once.
fn stop_waves(pod: Option<&Pod>, names: &[UnitName]) -> Vec<Vec<UnitName>> {
    let sidecars: Vec<UnitName> = pod
        .map(|pod| {
            stop_order(pod)
                .into_iter()
                .filter(ContainerRef::sidecar)
                .filter_map(|c| unit_name(pod, c.container).ok())
                .filter(|name| names.contains(name))
                .collect()
        })
        .unwrap_or_default();
    let first: Vec<UnitName> = names
        .iter()
        .filter(|name| !sidecars.contains(name))
        .cloned()
        .collect();
    std::iter::once(first)
        .chain(sidecars.into_iter().map(|name| vec![name]))
        .filter(|wave| !wave.is_empty())
        .collect()
}

/// What is left of `timeout` counted from `began`, but at least [`MIN_STOP`].
fn left(timeout: Duration, began: Instant) -> Duration {
    timeout.saturating_sub(began.elapsed()).max(MIN_STOP)
}

/// Stops the running sidecars of `pod`, whose other containers are done, in reverse
/// order of `initContainers` and within the pod's grace period; returns whether it
/// stopped any. Their restart machines then retire them (see `worker::due`).
pub(super) async fn stop_sidecars(
    ctx: &Context,
    pod: &Arc<Pod>,
    state: &mut PodState,
    statuses: &HashMap<String, UnitStatus>,
) -> bool {
    let (timeout, grace, began) = (stop_timeout(Some(pod)), grace_of(Some(pod)), Instant::now());
    let mut stopped = false;
    for sidecar in stop_order(pod).into_iter().filter(ContainerRef::sidecar) {
        let Some(unit) = statuses
            .get(&sidecar.container.name)
            .filter(|u| is_running(u))
        else {
            continue;
        };
        stopped = true;
        tracing::info!(unit = %unit.name, "the pod's containers are done; stopping its sidecar");
        state.event(
            pod,
            EventKind::Normal,
            "Killing",
            format!("Stopping unit {}", unit.name),
        );
        let grace = left(grace, began);
        let hook_left = pre_stop(ctx, pod, state, sidecar.container, &unit.name, grace).await;
        let timeout = left(hook_left + timeout.saturating_sub(grace), began);
        if let Err(err) = ctx.systemd.stop(&unit.name, timeout).await {
            tracing::warn!(unit = %unit.name, error = %crate::error_chain::Chain(&err), "stopping a sidecar failed");
        }
    }
    stopped
}

/// Runs the `preStop` hook of the container of unit `name`, when the pod's spec is known
/// and the container runs; returns what is left of `timeout` for the stop.
async fn pre_stop_of(
    ctx: &Context,
    pod: Option<&Arc<Pod>>,
    state: &PodState,
    name: &UnitName,
    timeout: Duration,
) -> Duration {
    let Some(pod) = pod else {
        return timeout;
    };
    let Some(container) = containers(pod)
        .into_iter()
        .find(|c| unit_name(pod, c.container).is_ok_and(|unit| &unit == name))
    else {
        return timeout;
    };
    // Only a container with a hook costs a look at its unit.
    if !has_pre_stop(container.container) {
        return timeout;
    }
    let running = ctx
        .systemd
        .status(name)
        .await
        .is_ok_and(|status| is_running(&status));
    if !running {
        return timeout;
    }
    // The hook and the stop share the grace; the margin stays the stop's.
    let grace = match pod.metadata.deletion_grace_period_seconds {
        Some(seconds) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
        None => grace_of(Some(pod)),
    };
    let margin = timeout.saturating_sub(grace);
    pre_stop(ctx, pod, state, container.container, name, grace).await + margin
}

/// How long a stop of a pod's unit may take before systemk SIGKILLs it. A deletion that
/// asked for its own grace (`kubectl delete --grace-period`) gets exactly that: the unit's
/// `TimeoutStopSec` carries the spec's grace, so systemk's kill is the escalation. Otherwise
/// systemd escalates at the spec's grace and the margin only bounds the wait for it.
pub(super) fn stop_timeout(pod: Option<&Pod>) -> Duration {
    match pod.and_then(|pod| pod.metadata.deletion_grace_period_seconds) {
        Some(seconds) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
        None => grace_of(pod) + STOP_MARGIN,
    }
}

/// The spec's grace between SIGTERM and SIGKILL.
pub(super) fn grace_of(pod: Option<&Pod>) -> Duration {
    let seconds = pod
        .and_then(|pod| pod.spec.as_ref())
        .and_then(|spec| spec.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// The longest stop timeout the unit files of `names` give: the grace period they were
/// written with ([`grace_of`] when none can be read).
pub(super) async fn written_grace(unit_dir: &Path, names: &[UnitName]) -> Duration {
    let mut longest = None;
    for name in names {
        let timeout = read_unit(unit_dir, name).await.and_then(|unit| {
            unit.get("Service", "TimeoutStopSec")
                .and_then(parse_seconds)
        });
        longest = longest.max(timeout);
    }
    longest.unwrap_or_else(|| grace_of(None))
}

/// A `TimeoutStopSec=` as the unit builder writes it (`<seconds>s`).
pub(super) fn parse_seconds(value: &str) -> Option<Duration> {
    value
        .strip_suffix('s')?
        .parse()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Pod {
        let sidecar =
            |name: &str| json!({"name": name, "image": "/bin/sh", "restartPolicy": "Always"});
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": {
                "initContainers": [
                    {"name": "setup", "image": "/bin/true"},
                    sidecar("proxy"),
                    sidecar("logs"),
                ],
                "containers": [
                    {"name": "main", "image": "/bin/sh"},
                    {"name": "helper", "image": "/bin/sh"},
                ],
            },
        }))
        .unwrap()
    }

    fn unit(container: &str) -> UnitName {
        UnitName::for_container("default", "web", container).unwrap()
    }

    #[test]
    fn app_containers_stop_first_then_sidecars_last_first() {
        let names: Vec<UnitName> = ["logs", "main", "proxy", "setup", "helper"]
            .into_iter()
            .map(unit)
            .collect();
        assert_eq!(
            stop_waves(Some(&pod()), &names),
            [
                vec![unit("main"), unit("setup"), unit("helper")],
                vec![unit("logs")],
                vec![unit("proxy")],
            ]
        );
    }

    #[test]
    fn without_the_spec_everything_stops_at_once() {
        let names = vec![unit("proxy"), unit("main")];
        let waves = stop_waves(None, &names);
        assert_eq!(waves, vec![names]);
    }

    #[test]
    fn only_sidecars_left_stop_one_by_one() {
        let names = vec![unit("proxy"), unit("logs")];
        assert_eq!(
            stop_waves(Some(&pod()), &names),
            [vec![unit("logs")], vec![unit("proxy")]]
        );
    }

    #[test]
    fn a_late_turn_still_gets_the_minimum() {
        let began = Instant::now();
        assert_eq!(left(Duration::ZERO, began), MIN_STOP);
        assert!(left(Duration::from_secs(30), began) > Duration::from_secs(29));
    }
}
