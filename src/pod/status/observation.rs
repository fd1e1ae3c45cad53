//! One container's observation for the pod status: its restart state machine, its unit's
//! status and why it could not be prepared, turned into the state the kubelet would show
//! (running, waiting with a reason, terminated) and its last termination. Pure. Layer 4.

use k8s_openapi::jiff::Timestamp;

use super::{ContainerObservation, ContainerState, Termination, WaitingReason, crash_loop_message};
use crate::pod::observe::{is_running, is_serving, timestamp};
use crate::pod::probe::{Probed, effect};
use crate::pod::restart::{ContainerRestarts, RestartState};
use crate::pod::start_failure::start_error_message;
use crate::systemd::UnitStatus;

/// systemd's `Result=` when the kernel's OOM killer ended the unit (cgroup v2 only).
const RESULT_OOM_KILL: &str = "oom-kill";

/// Why a container cannot be prepared, for its waiting state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The kubelet's reason.
    pub reason: WaitingReason,
    /// What failed, for humans: the whole cause chain.
    pub message: String,
    /// Whether retrying may heal it without the pod changing (see `pod::failure`).
    pub transient: bool,
}

/// Everything known about one container, as the API shows it.
pub struct ContainerFacts<'a> {
    /// Its name.
    pub name: &'a str,
    /// The image as the spec writes it.
    pub image: &'a str,
    /// What the image resolved to, empty when unknown.
    pub image_id: &'a str,
    /// Its restart state machine.
    pub restarts: &'a ContainerRestarts,
    /// Its unit's status, when the unit exists.
    pub unit: Option<&'a UnitStatus>,
    /// Why it could not be prepared, if so.
    pub problem: Option<&'a Problem>,
    /// What its readiness and startup probes report.
    pub probed: Probed,
    /// Whether it is a sidecar (an init container with `restartPolicy: Always`).
    pub sidecar: bool,
    /// Whether the pod has init containers (for the "not created yet" reason).
    pub pod_has_init_containers: bool,
    /// `name_namespace(uid)` parts for the CrashLoopBackOff message.
    pub pod: (&'a str, &'a str, &'a str),
}

/// The container's observation for [`super::status::pod_status`].
pub fn container_observation(facts: &ContainerFacts<'_>) -> ContainerObservation {
    let restarts = facts.restarts;
    let running = facts.unit.filter(|unit| is_running(unit));
    let oom_killed = facts
        .unit
        .is_some_and(|unit| unit.result == RESULT_OOM_KILL);
    let last_termination = |oom| {
        restarts.last_exit().map(|exit| Termination {
            start_error: restarts
                .last_start_error()
                .map(|error| start_error_message(&error.reason, &error.log)),
            message: restarts.last_message().map(str::to_owned),
            ..Termination::from_exit(exit, oom)
        })
    };
    let (state, previous) = match (running, restarts.state(), facts.problem) {
        (Some(unit), _, _) => (
            ContainerState::Running {
                started_at: timestamp(unit.exec_main_start_us).unwrap_or(Timestamp::UNIX_EPOCH),
            },
            last_termination(false),
        ),
        (None, _, Some(problem)) => (
            ContainerState::Waiting {
                reason: problem.reason,
                message: Some(problem.message.clone()),
            },
            last_termination(oom_killed),
        ),
        (None, RestartState::BackingOff { delay, .. }, None) => {
            let (pod_name, namespace, uid) = facts.pod;
            let message = crash_loop_message(delay, facts.name, pod_name, namespace, uid);
            (
                ContainerState::Waiting {
                    reason: WaitingReason::CrashLoopBackOff,
                    message: Some(message),
                },
                last_termination(oom_killed),
            )
        }
        (None, RestartState::Terminated, None) => match last_termination(oom_killed) {
            Some(termination) => (ContainerState::Terminated(termination), None),
            None => (
                ContainerState::not_created(facts.pod_has_init_containers),
                None,
            ),
        },
        (None, RestartState::NotStarted | RestartState::Running { .. }, None) => (
            ContainerState::not_created(facts.pod_has_init_containers),
            last_termination(oom_killed),
        ),
    };
    ContainerObservation {
        name: facts.name.to_owned(),
        image: facts.image.to_owned(),
        image_id: facts.image_id.to_owned(),
        container_id: facts.unit.map(|unit| format!("systemd://{}", unit.name)),
        ready: running.is_some_and(|unit| effect::ready(is_serving(unit), facts.probed)),
        started: running.is_some() && effect::started(true, facts.probed.startup),
        restart_count: restarts.restart_count(),
        sidecar: facts.sidecar,
        state,
        last_termination: previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::observe::observe_unit;
    use crate::pod::observe::tests::{SECOND, T0, unit};
    use crate::pod::restart::{RestartPolicy, Role};
    use crate::systemd::ActiveState;

    fn facts<'a>(
        restarts: &'a ContainerRestarts,
        unit: Option<&'a UnitStatus>,
    ) -> ContainerFacts<'a> {
        ContainerFacts {
            name: "app",
            image: "/bin/sh",
            image_id: "sha256:00",
            restarts,
            unit,
            problem: None,
            probed: Probed::default(),
            sidecar: false,
            pod_has_init_containers: false,
            pod: ("web", "default", "u-1"),
        }
    }

    #[test]
    fn a_running_unit_starts_the_machine_once() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        let running = unit(ActiveState::Active, 42, 0, 0, T0, 0);
        assert!(observe_unit(&mut restarts, &running));
        assert!(!observe_unit(&mut restarts, &running));
        let observation = container_observation(&facts(&restarts, Some(&running)));
        assert!(matches!(observation.state, ContainerState::Running { .. }));
        assert!(observation.ready);
        assert_eq!(
            observation.container_id.as_deref(),
            Some("systemd://systemk.default.web.app.service")
        );
    }

    #[test]
    fn an_activating_unit_runs_but_is_not_ready_until_active() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        // Type=notify before READY=1: the main process runs, the unit is activating.
        let activating = unit(ActiveState::Activating, 42, 0, 0, T0, 0);
        observe_unit(&mut restarts, &activating);
        let observation = container_observation(&facts(&restarts, Some(&activating)));
        assert!(matches!(observation.state, ContainerState::Running { .. }));
        assert!(!observation.ready);
        // READY=1: the same run, now active.
        let active = unit(ActiveState::Active, 42, 0, 0, T0, 0);
        assert!(!observe_unit(&mut restarts, &active), "no new run");
        let observation = container_observation(&facts(&restarts, Some(&active)));
        assert!(observation.ready);
        assert_eq!(restarts.restart_count(), 0);
    }

    #[test]
    fn a_forking_unit_before_its_parent_exits_is_not_running_yet() {
        let restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        // Type=forking: the parent is systemd's control process; no main PID yet.
        let activating = unit(ActiveState::Activating, 0, 0, 0, 0, 0);
        let observation = container_observation(&facts(&restarts, Some(&activating)));
        assert_eq!(observation.state, ContainerState::not_created(false));
        assert!(!observation.ready);
    }

    #[test]
    fn a_stopping_or_reloading_unit_keeps_running() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        for (state, ready) in [
            (ActiveState::Reloading, true),
            (ActiveState::Deactivating, false),
        ] {
            let unit = unit(state.clone(), 42, 0, 0, T0, 0);
            observe_unit(&mut restarts, &unit);
            let observation = container_observation(&facts(&restarts, Some(&unit)));
            assert!(matches!(observation.state, ContainerState::Running { .. }));
            assert_eq!(observation.ready, ready, "{state:?}");
        }
    }

    #[test]
    fn the_message_of_the_last_run_shows_in_state_then_in_last_state() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        let exited = unit(ActiveState::Failed, 0, 1, 1, T0, T0 + SECOND);
        observe_unit(&mut restarts, &exited);
        restarts.attach_message(Some("bye".into()));
        let record = restarts.to_record();
        let kept = ContainerRestarts::from_record(&record).unwrap();
        assert_eq!(kept.last_message(), Some("bye"));
        let message = |o: &ContainerObservation| o.last_termination.clone().unwrap().message;
        let observation = container_observation(&facts(&restarts, Some(&exited)));
        assert_eq!(message(&observation).as_deref(), Some("bye"));
        // Restarted: the message stays with the run before, in lastState.
        let running = unit(ActiveState::Active, 43, 0, 0, T0 + 20 * SECOND, 0);
        observe_unit(&mut restarts, &running);
        let observation = container_observation(&facts(&restarts, Some(&running)));
        assert!(matches!(observation.state, ContainerState::Running { .. }));
        assert_eq!(message(&observation).as_deref(), Some("bye"));
        // Its next exit forgets it until that run's message is read.
        let again = unit(
            ActiveState::Failed,
            0,
            1,
            2,
            T0 + 20 * SECOND,
            T0 + 30 * SECOND,
        );
        observe_unit(&mut restarts, &again);
        assert_eq!(restarts.last_message(), None);
    }

    #[test]
    fn a_quick_exit_is_recorded_even_if_running_was_never_seen() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        let exited = unit(ActiveState::Failed, 0, 1, 3, T0, T0 + SECOND);
        assert!(observe_unit(&mut restarts, &exited));
        assert!(matches!(restarts.state(), RestartState::BackingOff { .. }));
        assert!(
            !observe_unit(&mut restarts, &exited),
            "the same exit is not counted twice"
        );
        let observation = container_observation(&facts(&restarts, Some(&exited)));
        assert!(matches!(
            observation.state,
            ContainerState::Waiting {
                reason: WaitingReason::CrashLoopBackOff,
                ..
            }
        ));
        assert_eq!(
            observation.last_termination.map(|t| t.exit.exit_code()),
            Some(3)
        );
    }

    #[test]
    fn a_signal_kill_under_never_is_terminated_with_128_plus_n() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Never, Role::App);
        observe_unit(
            &mut restarts,
            &unit(ActiveState::Failed, 0, 2, 9, T0, T0 + SECOND),
        );
        let observation = container_observation(&facts(&restarts, None));
        match observation.state {
            ContainerState::Terminated(termination) => {
                assert_eq!(termination.exit.exit_code(), 137)
            }
            other => panic!("expected terminated, got {other:?}"),
        }
    }

    #[test]
    fn a_problem_shows_as_waiting_with_its_message() {
        let restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        let problem = Problem {
            reason: WaitingReason::ErrImagePull,
            message: "no such package".into(),
            transient: true,
        };
        let mut facts = facts(&restarts, None);
        facts.problem = Some(&problem);
        let observation = container_observation(&facts);
        assert_eq!(
            observation.state,
            ContainerState::Waiting {
                reason: WaitingReason::ErrImagePull,
                message: Some("no such package".into())
            }
        );
    }
}
