//! What a pass should start: init containers one at a time (a sidecar once it started),
//! then the app containers and sidecars, each after its restart back-off. Once the pod's
//! app containers are done for good (or its initialisation failed), its sidecars are done
//! too: they are stopped and not restarted, as the kubelet's `computePodActions` kills a
//! pod with nothing left to run. Reads the restart machines, the units and the probes;
//! only records back-off events. Layer 4.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::{earliest, fresh};
use crate::pod::container_unit::{ContainerRef, containers};
use crate::pod::init_order::{InitProgress, InitStep, init_progress};
use crate::pod::observe::is_running;
use crate::pod::probe::effect;
use crate::pod::progress::EventKind;
use crate::pod::restart::{ContainerRestarts, Decision, Role};
use crate::pod::state::PodState;
use crate::systemd::UnitStatus;

/// What a pass should do with the pod's containers.
pub(super) struct Due<'a> {
    /// Containers to start (those already running are left alone).
    pub start: Vec<ContainerRef<'a>>,
    /// When a back-off runs out, if one waits.
    pub wake: Option<Timestamp>,
    /// Whether the sidecars are done: nothing else of the pod runs or will run again.
    pub sidecars_done: bool,
}

/// What should run in `pod` at `now`.
pub(super) fn due<'a>(
    pod: &'a Arc<Pod>,
    state: &mut PodState,
    statuses: &HashMap<String, UnitStatus>,
    now: Timestamp,
) -> Due<'a> {
    let all = containers(pod);
    let (init, app): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.init);
    let mut due = Due {
        start: Vec::new(),
        wake: None,
        sidecars_done: false,
    };
    // As the kubelet's `HasAnyRegularContainerStarted`: once an app container ran, the
    // pod stays initialised, and a sidecar that exits is restarted beside it.
    let initialized = app.iter().any(|c| {
        state
            .run()
            .restarts(&c.container.name)
            .is_some_and(|r| r.last_started_at().is_some())
    });
    if !initialized {
        let restarts: Vec<ContainerRestarts> = init
            .iter()
            .map(|c| {
                state
                    .run()
                    .restarts(&c.container.name)
                    .cloned()
                    .unwrap_or_else(|| fresh(pod, c))
            })
            .collect();
        let steps: Vec<InitStep<'_>> = init
            .iter()
            .zip(&restarts)
            .map(|(c, restarts)| InitStep {
                restarts,
                sidecar: c.sidecar(),
                started: c.sidecar() && started(state, statuses, c),
            })
            .collect();
        match init_progress(&steps, now) {
            InitProgress::Run(index) => {
                due.start.push(init[index]);
                return due;
            }
            InitProgress::WaitUntil { until, .. } => {
                due.wake = Some(until);
                return due;
            }
            InitProgress::Failed(_) => {
                due.sidecars_done = true;
                return due;
            }
            InitProgress::Done => {}
        }
    }
    if sidecars_done(pod, state, now) {
        due.sidecars_done = true;
        return due;
    }
    let sidecars = init.into_iter().filter(ContainerRef::sidecar);
    for container in sidecars.chain(app) {
        let name = &container.container.name;
        let decision = state
            .run()
            .restarts(name)
            .map_or(Decision::Run, |restarts| restarts.decide(now));
        match decision {
            Decision::Run => due.start.push(container),
            Decision::RestartAt(at) => {
                state.event(
                    pod,
                    EventKind::Warning,
                    "BackOff",
                    format!("Back-off restarting failed container {name}"),
                );
                due.wake = earliest(due.wake, Some(at));
            }
            Decision::StayTerminated => {}
        }
    }
    due
}

/// Whether the sidecars of `pod` have nothing left to serve: a regular init container
/// failed for good, or every app container ended for good under the restart policy
/// (never under `Always`).
pub(super) fn sidecars_done(pod: &Pod, state: &PodState, now: Timestamp) -> bool {
    let all = containers(pod);
    let done = |c: &ContainerRef<'_>| {
        state
            .run()
            .restarts(&c.container.name)
            .is_some_and(|r| r.decide(now) == Decision::StayTerminated)
    };
    let failed = |c: &ContainerRef<'_>| {
        state
            .run()
            .restarts(&c.container.name)
            .and_then(ContainerRestarts::last_exit)
            .is_some_and(|exit| !exit.status.succeeded())
    };
    let init_failed = all
        .iter()
        .any(|c| c.role() == Role::Init && done(c) && failed(c));
    let apps: Vec<&ContainerRef<'_>> = all.iter().filter(|c| !c.init).collect();
    init_failed || (!apps.is_empty() && apps.into_iter().all(done))
}

/// Whether the sidecar `container` runs and its startup probe, if it has one, passed.
fn started(
    state: &PodState,
    statuses: &HashMap<String, UnitStatus>,
    container: &ContainerRef<'_>,
) -> bool {
    let name = container.container.name.as_str();
    let running = statuses.get(name).is_some_and(is_running);
    let run = state
        .run()
        .restarts(name)
        .map_or(0, ContainerRestarts::restart_count);
    let startup = state.probes().probed(name, run).startup;
    // A startup probe not wired yet has not passed either.
    let wired = container.container.startup_probe.is_none() || startup.is_some();
    wired && effect::started(running, startup)
}
