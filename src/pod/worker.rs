//! One reconcile pass over one pod: prepare its units when its spec changed, observe
//! them, start what should run (init containers in order, then app containers, restarts
//! after their back-off), and compute its status. And the cleanup of a pod that is no
//! longer desired. Idempotent and level-triggered: a pass reads systemd and converges,
//! whatever happened before it. Layer 4.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;

use super::blocking::off_runtime;
use super::container_unit::{ContainerRef, containers, unit_name};
use super::context::Context;
use super::deadline::{self, Deadline};
use super::error::{Error, Result};
use super::failure::{self, Failure};
use super::observe::{is_running, observe_unit};
use super::progress::EventKind;
use super::records;
use super::restart::{ContainerRestarts, RestartPolicy};
pub use super::state::PodState;
use super::state::PrepareDecision;
use super::status::{self, ContainerSeen, PodSeen};
use super::termination_file;
use crate::clock::now;
use crate::systemd::{ActiveState, JobResult, UnitStatus};
use crate::unit::{UnitFile, UnitName};

/// Extra time given to systemd beyond the grace period when stopping a unit: its own
/// SIGKILL escalation happens at the grace period, this only bounds the wait for it.
const STOP_MARGIN: Duration = Duration::from_secs(10);

/// How long a pass waits for a start job. A `Type=simple`/`exec` unit's job ends within
/// it; a `Type=notify` one's only at `READY=1` and a `Type=forking` one's when its parent
/// exits, which may take long: the pass goes on and shows the container running but not
/// ready, and the unit's change to `active` brings the next pass (a systemd signal).
const START_WAIT: Duration = Duration::from_secs(2);

/// What a pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// When the next pass is due (a restart back-off or a retry), if a timer is needed.
    pub wake: Option<Timestamp>,
    /// Whether the pod's status differs from the one computed before.
    pub status_changed: bool,
}

/// Converges `pod`: prepares its units when its spec changed, starts what is due, and
/// computes its status (kept in `<pod dir>/pod.json` for `systemk pods`). An evicted pod
/// (see `evicted.rs`) is only kept stopped.
pub async fn reconcile(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
) -> Result<Pass> {
    let (dirs, pod_uid) = (ctx.dirs.clone(), uid.to_owned());
    let eviction = off_runtime(&ctx.dirs.pod_dir(uid), move || {
        Ok(crate::pod::eviction::marker::read(&dirs, &pod_uid))
    })
    .await?;
    if let Some(message) = eviction {
        return evicted::evicted(ctx, uid, pod, state, message).await;
    }
    let mut wake: Option<Timestamp> = None;
    match state.prepared().decision(pod, now()) {
        PrepareDecision::UpToDate => refresh_volumes(ctx, uid, pod, state).await,
        PrepareDecision::RetryAt(at) => {
            wake = Some(at);
            show_back_off(pod, state);
            refresh_volumes(ctx, uid, pod, state).await;
        }
        PrepareDecision::StayFailed => refresh_volumes(ctx, uid, pod, state).await,
        PrepareDecision::Prepare => {
            state.run_mut().working_at(now());
            prepare(ctx, uid, pod, state).await?;
            wake = state.prepared_mut().retry_after(pod, now());
        }
    }
    let mut statuses = observe(ctx, uid, pod, state).await?;
    if probes::kill_failed(ctx, uid, pod, state, &statuses).await {
        statuses = observe(ctx, uid, pod, state).await?;
    }
    let start = deadline::start_of(state.status(), pod, state.run().start_time());
    // A pod that finished before its deadline stays as it finished, as the kubelet
    // no longer syncs a pod in a terminal phase.
    let finished = !state.run().deadline_exceeded()
        && state
            .status()
            .and_then(|status| status.phase.as_deref())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
    let due = if finished {
        Deadline::None
    } else {
        deadline::check(pod, start, now())
    };
    let changed = match due {
        Deadline::Exceeded => stop_past_deadline(ctx, uid, pod, state, &statuses).await?,
        due => {
            if let Deadline::At(at) = due {
                wake = earliest(wake, Some(at));
            }
            let (started, restart_at) = start_due(ctx, pod, state, &statuses, now()).await?;
            wake = earliest(wake, restart_at);
            started
        }
    };
    wake = earliest(wake, volumes_wake(pod, state, now()));
    if changed {
        // The status shows what runs now, not what ran before the starts or stops.
        statuses = observe(ctx, uid, pod, state).await?;
    }
    probes::sync(ctx, pod, state, &statuses, now());
    let mut status = compute_status(ctx, uid, pod, state, &statuses, now());
    if state.run().deadline_exceeded() {
        status = deadline::failed(status);
    }
    let status_changed = state.status() != Some(&status);
    if status_changed {
        let mut with_status = Pod::clone(pod);
        with_status.status = Some(status.clone());
        ctx.dirs.save_pod_async(uid, with_status).await?;
    }
    state.run_mut().set_status(status);
    Ok(Pass {
        wake,
        status_changed,
    })
}

/// Reads the status of the pod's units and brings the restart machines up to date.
async fn observe(
    ctx: &Context,
    uid: &str,
    pod: &Pod,
    state: &mut PodState,
) -> Result<HashMap<String, UnitStatus>> {
    let statuses = read_statuses(ctx, pod, state).await?;
    for container in containers(pod) {
        let Some(unit) = statuses.get(&container.container.name) else {
            continue;
        };
        let restarts = restarts_of(ctx, uid, pod, container, state);
        let exit_before = restarts.last_exit();
        if observe_unit(restarts, unit) {
            read_start_log(restarts, unit).await;
            if restarts.last_exit() != exit_before {
                let pod_dir = ctx.dirs.pod_dir(uid);
                read_message(restarts, unit, container.container, &pod_dir).await;
            }
            let (dirs, pod_uid, record) = (ctx.dirs.clone(), uid.to_owned(), restarts.clone());
            off_runtime(&ctx.dirs.records_dir(uid), move || {
                records::save(&dirs, &pod_uid, &record)
            })
            .await?;
        }
    }
    if due::sidecars_done(pod, state, now()) {
        for sidecar in containers(pod).into_iter().filter(ContainerRef::sidecar) {
            restarts_of(ctx, uid, pod, sidecar, state).retire();
        }
    }
    Ok(statuses)
}

/// Starts what should run now; returns whether it started anything and when the next
/// restart is due.
async fn start_due(
    ctx: &Context,
    pod: &Arc<Pod>,
    state: &mut PodState,
    statuses: &HashMap<String, UnitStatus>,
    now: Timestamp,
) -> Result<(bool, Option<Timestamp>)> {
    let due = due::due(pod, state, statuses, now);
    let mut wake = due.wake;
    let mut started = false;
    if due.sidecars_done {
        started = stop::stop_sidecars(ctx, pod, state, statuses).await;
    }
    for container in due.start {
        let Some(unit) = statuses.get(&container.container.name) else {
            continue;
        };
        // A unit still activating has its start job running (a `Type=forking` parent
        // has no main PID yet): starting it again would kill that start.
        if is_running(unit) || unit.active_state == ActiveState::Activating {
            continue;
        }
        tracing::info!(unit = %unit.name, "starting container");
        started = true;
        // A (re)started container gets a fresh /run, as a new container would.
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        if let Err(err) = ctx.dirs.reset_run_dir(uid, &container.container.name) {
            tracing::warn!(unit = %unit.name, error = %crate::error_chain::Chain(&err), "cannot empty the container's /run");
        }
        // And an empty termination-message file, as each container instance gets its own.
        let pod_dir = ctx.dirs.pod_dir(uid);
        if let Err(err) = termination_file::reset(&pod_dir, &container.container.name) {
            tracing::warn!(unit = %unit.name, error = %crate::error_chain::Chain(&err), "cannot empty the container's termination-message file");
        }
        // RestartUnit also starts inactive and failed units, and is the only way to run
        // an `active (exited)` unit (RemainAfterExit=yes) again.
        match ctx.systemd.restart_within(&unit.name, START_WAIT).await {
            Ok(Some(JobResult::Done) | None) => {
                state.event(
                    pod,
                    EventKind::Normal,
                    "Started",
                    format!("Started unit {}", unit.name),
                );
                let grace = stop::grace_of(Some(pod));
                hooks::post_start(ctx, pod, state, container.container, &unit.name, grace).await;
            }
            Ok(Some(result)) => state.event(
                pod,
                EventKind::Warning,
                "Failed",
                format!("Unit {} did not start: {result:?}", unit.name),
            ),
            Err(err) => {
                let err = Error::from(err);
                let problem = Failure::of_start(&err).problem(&err);
                tracing::warn!(unit = %unit.name, error = %problem.message, "starting a container failed");
                state.event(
                    pod,
                    EventKind::Warning,
                    "Failed",
                    format!("Error: {}", problem.message),
                );
                if problem.transient {
                    wake = earliest(wake, later(now, failure::RETRY.delay(0)));
                }
                state
                    .prepared_mut()
                    .add_problem(container.container.name.as_str(), problem);
                // The unit may be gone or broken behind systemk's back: the next pass
                // prepares the pod again, which writes what is missing.
                state.prepared_mut().forget_applied();
            }
        }
    }
    Ok((started, wake))
}

/// The pod's status from what this pass saw (see [`status::build`]).
fn compute_status(
    ctx: &Context,
    uid: &str,
    pod: &Pod,
    state: &PodState,
    statuses: &HashMap<String, UnitStatus>,
    now: Timestamp,
) -> PodStatus {
    let seen = PodSeen {
        uid,
        previous: state.status(),
        start_time: state.run().start_time(),
        host_ips: &ctx.host_ips,
        containers: containers(pod)
            .iter()
            .map(|c| {
                let name = c.container.name.as_str();
                let restarts = state.run().restarts(name);
                let run = restarts.map_or(0, |restarts| restarts.restart_count());
                let seen = ContainerSeen {
                    image_id: state.prepared().image_id(name).unwrap_or_default(),
                    restarts,
                    unit: statuses.get(name),
                    problem: state.prepared().problem(name),
                    probed: state.probes().probed(name, run),
                };
                (name, seen)
            })
            .collect(),
    };
    status::build(pod, &seen, now)
}

/// The status of each container's unit, by container name.
async fn read_statuses(
    ctx: &Context,
    pod: &Pod,
    state: &PodState,
) -> Result<HashMap<String, UnitStatus>> {
    let mut statuses = HashMap::new();
    for container in containers(pod) {
        let Ok(name) = unit_name(pod, container.container) else {
            continue;
        };
        if state.run().has_unit(&name) {
            statuses.insert(
                container.container.name.clone(),
                ctx.systemd.status(&name).await?,
            );
        }
    }
    Ok(statuses)
}

fn restarts_of<'a>(
    ctx: &Context,
    uid: &str,
    pod: &Pod,
    container: ContainerRef<'_>,
    state: &'a mut PodState,
) -> &'a mut ContainerRestarts {
    let name = container.container.name.as_str();
    state.run_mut().restarts_or_resume(name, || {
        ContainerRestarts::resumed(
            name,
            RestartPolicy::of_pod(pod),
            container.role(),
            records::load(&ctx.dirs, uid, name),
        )
    })
}

fn fresh(pod: &Pod, container: &ContainerRef<'_>) -> ContainerRestarts {
    ContainerRestarts::new(
        container.container.name.clone(),
        RestartPolicy::of_pod(pod),
        container.role(),
    )
}

async fn read_unit(unit_dir: &Path, name: &UnitName) -> Option<UnitFile> {
    let text = tokio::fs::read_to_string(unit_dir.join(name.as_str()))
        .await
        .ok()?;
    UnitFile::parse(&text).ok()
}

/// While a pull's retry waits, its container shows the back-off, and the kubelet's
/// events tell of it once.
fn show_back_off(pod: &Arc<Pod>, state: &mut PodState) {
    let images: Vec<(&str, &str)> = containers(pod)
        .into_iter()
        .map(|container| {
            let image = container.container.image.as_deref().unwrap_or_default();
            (container.container.name.as_str(), image)
        })
        .collect();
    for (kind, reason, message) in state.prepared_mut().show_back_off(&images) {
        state.event(pod, kind, reason, message);
    }
}

fn later(now: Timestamp, delay: Duration) -> Option<Timestamp> {
    now.saturating_add(delay).ok()
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

mod deadline_stop;
mod due;
mod evicted;
mod hooks;
mod prepare;
mod probes;
mod run_end;
mod stop;
mod volumes;

use deadline_stop::stop_past_deadline;
pub(crate) use evicted::EVICTION_GRACE;
use prepare::prepare;
use run_end::{read_message, read_start_log};
pub use stop::{cleanup, terminate};
use volumes::{refresh_volumes, volumes_wake};

#[cfg(test)]
mod tests;
