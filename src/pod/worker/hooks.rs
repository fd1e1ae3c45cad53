//! When a pass runs lifecycle hooks (`pod::hook`): `postStart` right after a container
//! starts — the pass, and so the container's running-and-ready status, waits for it, and
//! a failure ends the container (`FailedPostStartHook`) — and `preStop` before every stop
//! signal systemk sends, within the grace period it shares with the stop. Layer 4.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::time::Instant;

use crate::pod::context::Context;
use crate::pod::hook::{Hook, Reach, container_hooks, message, run};
use crate::pod::probe::exec::InUnit;
use crate::pod::progress::EventKind;
use crate::pod::state::PodState;
use crate::unit::UnitName;

/// How long a `postStart` hook may run. The kubelet sets no bound; a hook that never
/// returns would hold the pod's pass, and with it its deletion, for good.
const POST_START_LIMIT: Duration = Duration::from_secs(120);

/// The least time between a `preStop` hook and SIGKILL (the kubelet's
/// `minimumGracePeriodInSeconds`).
const MIN_GRACE_AFTER_PRE_STOP: Duration = Duration::from_secs(2);

/// Runs the container's `postStart` hook, if any; false when it failed, and the container
/// was then ended (its `preStop` first, as the kubelet's kill) within the pod's grace.
pub(super) async fn post_start(
    ctx: &Context,
    pod: &Arc<Pod>,
    state: &PodState,
    container: &Container,
    unit: &UnitName,
    grace: Duration,
) -> bool {
    let Some(hook) = hooks(container).post_start else {
        return true;
    };
    let Err(failed) = run_in(ctx, &hook, unit, POST_START_LIMIT).await else {
        return true;
    };
    let text = message(&hook, &container.name, pod, &failed);
    tracing::warn!(unit = %unit, error = %text, "postStart hook failed; ending the container");
    state.event(pod, EventKind::Warning, "FailedPostStartHook", text);
    state.event(
        pod,
        EventKind::Normal,
        "Killing",
        "FailedPostStartHook".to_owned(),
    );
    let left = pre_stop(ctx, pod, state, container, unit, grace).await;
    if let Err(err) = ctx.systemd.kill_within(unit, left).await {
        tracing::warn!(unit = %unit, error = %crate::error_chain::Chain(&err), "ending a container whose postStart hook failed");
    }
    false
}

/// Runs the container's `preStop` hook, if any, within `grace`; returns what is left of
/// the grace for the stop (at least 2 s after a hook, as the kubelet gives).
pub(super) async fn pre_stop(
    ctx: &Context,
    pod: &Arc<Pod>,
    state: &PodState,
    container: &Container,
    unit: &UnitName,
    grace: Duration,
) -> Duration {
    let Some(hook) = hooks(container).pre_stop else {
        return grace;
    };
    let started = Instant::now();
    if let Err(failed) = run_in(ctx, &hook, unit, grace).await {
        let text = message(&hook, &container.name, pod, &failed);
        tracing::warn!(unit = %unit, error = %text, "preStop hook failed");
        state.event(pod, EventKind::Warning, "FailedPreStopHook", text);
    }
    grace
        .saturating_sub(started.elapsed())
        .max(MIN_GRACE_AFTER_PRE_STOP)
}

/// Whether the container has a `preStop` hook to run before its stop.
pub(super) fn has_pre_stop(container: &Container) -> bool {
    hooks(container).pre_stop.is_some()
}

/// The pod's IP, which is the node's first address: the host of probes and hooks that
/// name none.
pub(super) fn pod_ip(ctx: &Context) -> String {
    ctx.host_ips
        .first()
        .map_or_else(|| "127.0.0.1".to_owned(), ToString::to_string)
}

fn hooks(container: &Container) -> crate::pod::hook::Hooks {
    container_hooks(container).unwrap_or_else(|(hook, invalid)| {
        tracing::warn!(container = %container.name, hook, %invalid, "a hook admission let through is invalid");
        crate::pod::hook::Hooks::default()
    })
}

async fn run_in(
    ctx: &Context,
    hook: &Hook,
    unit: &UnitName,
    limit: Duration,
) -> Result<(), crate::pod::hook::Failed> {
    let pod_ip = pod_ip(ctx);
    let runner = InUnit(ctx.systemd.clone());
    let reach = Reach {
        runner: &runner,
        unit: unit.as_str(),
        pod_ip: &pod_ip,
    };
    run(hook, &reach, limit).await
}
