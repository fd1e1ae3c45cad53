//! A pass's part in probing: end a container whose liveness or startup probe failed
//! (the kubelet's `Killing`, within the probe's grace), and tell the probes what runs
//! now, starting them once a container's unit exists. The probing itself happens in the
//! probe tasks (`pod::probe`). Layer 4.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;

use super::hooks::{pod_ip, pre_stop};
use super::restarts_of;
use super::stop::grace_of;
use crate::pod::container_unit::containers;
use crate::pod::context::Context;
use crate::pod::observe::is_running;
use crate::pod::probe::{Kind, Plan, Sight, container_plans, effect};
use crate::pod::progress::EventKind;
use crate::pod::restart::RestartState;
use crate::pod::state::PodState;
use crate::systemd::UnitStatus;

/// Ends each running container a probe asked to kill (its kill signal, SIGKILL after the
/// probe's grace, else the pod's); returns whether it ended any.
/// Its exit then restarts it after the usual back-off (unless the policy is `Never`).
pub(super) async fn kill_failed(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
    statuses: &HashMap<String, UnitStatus>,
) -> bool {
    let mut killed = false;
    for container in containers(pod).into_iter().filter(|c| c.long_running()) {
        let name = container.container.name.as_str();
        let Some(unit) = statuses.get(name).filter(|unit| is_running(unit)) else {
            continue;
        };
        let run = state
            .run()
            .restarts(name)
            .map_or(0, |restarts| restarts.restart_count());
        let Some(kind) = state.probes_mut().take_kill(name, run) else {
            continue;
        };
        let grace = probe_grace(container.container, kind).unwrap_or_else(|| grace_of(Some(pod)));
        tracing::info!(unit = %unit.name, probe = kind.lower(), ?grace, "a probe failed; stopping the container");
        state.event(
            pod,
            EventKind::Normal,
            "Killing",
            effect::killing(name, kind),
        );
        restarts_of(ctx, uid, pod, container, state).killed_by_probe();
        let grace = pre_stop(ctx, pod, state, container.container, &unit.name, grace).await;
        match ctx.systemd.kill_within(&unit.name, grace).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(unit = %unit.name, "a container a probe failed outlived SIGKILL")
            }
            Err(err) => {
                tracing::warn!(unit = %unit.name, error = %crate::error_chain::Chain(&err), "ending a container a probe failed");
            }
        }
        killed = true;
    }
    killed
}

/// Tells the probes of each app container and sidecar what it looks like now, starting
/// them once its unit exists; a container done for good (or gone from the spec) is no
/// longer probed.
pub(super) fn sync(
    ctx: &Context,
    pod: &Arc<Pod>,
    state: &mut PodState,
    statuses: &HashMap<String, UnitStatus>,
    now: Timestamp,
) {
    let Some(wiring) = state.probe_wiring(pod_ip(ctx), &ctx.systemd, &ctx.metrics) else {
        return;
    };
    let mut probed = Vec::new();
    for container in containers(pod).into_iter().filter(|c| c.long_running()) {
        let name = container.container.name.as_str();
        let Some(unit) = statuses.get(name) else {
            continue;
        };
        let restarts = state.run().restarts(name);
        let (run, running_since) = match restarts.map(|r| (r.restart_count(), r.state())) {
            Some((_, RestartState::Terminated)) => continue,
            Some((run, RestartState::Running { started_at })) => (run, Some(started_at)),
            Some((run, _)) => (run, None),
            None => (0, None),
        };
        let running_for = running_since
            .filter(|_| is_running(unit))
            .map(|since| Duration::try_from(now.duration_since(since)).unwrap_or_default());
        let sight = Sight { run, running_for };
        let plans = || plans_of(container.container);
        state
            .probes_mut()
            .sync(&wiring, pod, name, &unit.name, plans, sight);
        probed.push(name.to_owned());
    }
    state
        .probes_mut()
        .retain(|name| probed.iter().any(|p| p == name));
}

/// The container's probe plans; admission refused a pod whose probes are invalid.
fn plans_of(container: &Container) -> Vec<Plan> {
    container_plans(container).unwrap_or_else(|(kind, invalid)| {
        tracing::warn!(container = %container.name, probe = kind.lower(), %invalid, "a probe admission let through is invalid");
        Vec::new()
    })
}

/// The probe's own `terminationGracePeriodSeconds`, when it sets one.
fn probe_grace(container: &Container, kind: Kind) -> Option<Duration> {
    let plans = container_plans(container).ok()?;
    plans
        .into_iter()
        .find(|plan| plan.kind == kind)?
        .termination_grace
}
