//! Init container sequencing: init containers run one at a time, in spec order, each to
//! success before the next, and app containers only after all of them; a failed init
//! container that may not restart (restartPolicy Never) fails the pod. A sidecar (an init
//! container with `restartPolicy: Always`) is not waited for to end but to have started
//! (running, its startup probe passed), as the kubelet's `computeInitContainerActions`
//! does; it keeps running beside the app containers. Pure: reads the restart state
//! machines and the time passed in. Layer 4.

use k8s_openapi::jiff::Timestamp;

use super::restart::{ContainerRestarts, Decision, RestartState};

/// One init container as the sequencing sees it.
#[derive(Debug, Clone, Copy)]
pub struct InitStep<'a> {
    /// Its restart state machine.
    pub restarts: &'a ContainerRestarts,
    /// Whether it is a sidecar.
    pub sidecar: bool,
    /// Whether it runs and its startup probe, if any, passed (only read for sidecars).
    pub started: bool,
}

/// Where a pod's initialisation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitProgress {
    /// Init container number `index` should run now (start it or leave it running).
    Run(usize),
    /// Init container number `index` is backing off; start it at `until`.
    WaitUntil {
        /// Its position in `spec.initContainers`.
        index: usize,
        /// When its restart is due.
        until: Timestamp,
    },
    /// Every init container succeeded (or there are none): app containers may run.
    Done,
    /// Init container number `index` failed for good: the pod fails, app containers
    /// never start.
    Failed(usize),
}

/// The next step for `init_containers`, given in spec order, at `now`.
pub fn init_progress(init_containers: &[InitStep<'_>], now: Timestamp) -> InitProgress {
    for (index, step) in init_containers.iter().enumerate() {
        let container = step.restarts;
        if step.sidecar {
            if step.started {
                continue;
            }
            // Start it, or wait for it to start or for its restart to be due.
            return match container.decide(now) {
                Decision::RestartAt(until) => InitProgress::WaitUntil { index, until },
                Decision::Run | Decision::StayTerminated => InitProgress::Run(index),
            };
        }
        match (container.state(), container.decide(now)) {
            (RestartState::Terminated, _) => {
                let succeeded = container.last_exit().is_some_and(|e| e.status.succeeded());
                if !succeeded {
                    return InitProgress::Failed(index);
                }
            }
            (_, Decision::RestartAt(until)) => return InitProgress::WaitUntil { index, until },
            _ => return InitProgress::Run(index),
        }
    }
    InitProgress::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::restart::{Exit, ExitStatus, RestartPolicy, Role};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn init(policy: RestartPolicy) -> ContainerRestarts {
        ContainerRestarts::new("init", policy, Role::Init)
    }

    fn steps(inits: &[ContainerRestarts]) -> Vec<InitStep<'_>> {
        inits
            .iter()
            .map(|restarts| InitStep {
                restarts,
                sidecar: false,
                started: false,
            })
            .collect()
    }

    fn progress(inits: &[ContainerRestarts], now: Timestamp) -> InitProgress {
        init_progress(&steps(inits), now)
    }

    fn ran(policy: RestartPolicy, status: ExitStatus) -> ContainerRestarts {
        let mut c = init(policy);
        c.started(at(0)).unwrap();
        c.exited(Exit {
            status,
            started_at: at(0),
            finished_at: at(1),
        })
        .unwrap();
        c
    }

    #[test]
    fn no_init_containers_is_done() {
        assert_eq!(progress(&[], at(0)), InitProgress::Done);
    }

    #[test]
    fn first_init_container_runs_first() {
        let inits = [init(RestartPolicy::Always), init(RestartPolicy::Always)];
        assert_eq!(progress(&inits, at(0)), InitProgress::Run(0));
    }

    #[test]
    fn second_runs_after_first_succeeded() {
        let inits = [
            ran(RestartPolicy::Always, ExitStatus::Code(0)),
            init(RestartPolicy::Always),
        ];
        assert_eq!(progress(&inits, at(5)), InitProgress::Run(1));
    }

    #[test]
    fn running_init_container_blocks_the_next() {
        let mut first = init(RestartPolicy::Always);
        first.started(at(0)).unwrap();
        let inits = [first, init(RestartPolicy::Always)];
        assert_eq!(progress(&inits, at(5)), InitProgress::Run(0));
    }

    #[test]
    fn failed_init_container_backs_off_under_always() {
        let inits = [
            ran(RestartPolicy::Always, ExitStatus::Code(1)),
            init(RestartPolicy::Always),
        ];
        assert_eq!(
            progress(&inits, at(5)),
            InitProgress::WaitUntil {
                index: 0,
                until: at(11)
            }
        );
    }

    #[test]
    fn failed_init_container_reruns_once_due() {
        let inits = [ran(RestartPolicy::OnFailure, ExitStatus::Code(1))];
        assert_eq!(progress(&inits, at(11)), InitProgress::Run(0));
    }

    #[test]
    fn failed_init_container_under_never_fails_the_pod() {
        let inits = [
            ran(RestartPolicy::Never, ExitStatus::Signal(9)),
            init(RestartPolicy::Never),
        ];
        assert_eq!(progress(&inits, at(5)), InitProgress::Failed(0));
    }

    #[test]
    fn all_succeeded_is_done() {
        let inits = [
            ran(RestartPolicy::Never, ExitStatus::Code(0)),
            ran(RestartPolicy::Always, ExitStatus::Code(0)),
        ];
        assert_eq!(progress(&inits, at(5)), InitProgress::Done);
    }

    fn sidecar(restarts: &ContainerRestarts, started: bool) -> InitStep<'_> {
        InitStep {
            restarts,
            sidecar: true,
            started,
        }
    }

    fn regular(restarts: &ContainerRestarts) -> InitStep<'_> {
        InitStep {
            restarts,
            sidecar: false,
            started: false,
        }
    }

    fn proxy() -> ContainerRestarts {
        ContainerRestarts::new("proxy", RestartPolicy::Never, Role::Sidecar)
    }

    #[test]
    fn sidecar_starts_after_the_init_containers_before_it() {
        let setup = ran(RestartPolicy::Never, ExitStatus::Code(0));
        let (proxy, after) = (proxy(), init(RestartPolicy::Never));
        let steps = [regular(&setup), sidecar(&proxy, false), regular(&after)];
        assert_eq!(init_progress(&steps, at(5)), InitProgress::Run(1));
    }

    #[test]
    fn next_init_container_waits_until_the_sidecar_started() {
        let setup = ran(RestartPolicy::Never, ExitStatus::Code(0));
        let mut proxy = proxy();
        proxy.started(at(2)).unwrap();
        let after = init(RestartPolicy::Never);
        let waiting = [regular(&setup), sidecar(&proxy, false), regular(&after)];
        assert_eq!(init_progress(&waiting, at(5)), InitProgress::Run(1));
        let started = [regular(&setup), sidecar(&proxy, true), regular(&after)];
        assert_eq!(init_progress(&started, at(5)), InitProgress::Run(2));
    }

    #[test]
    fn running_sidecars_do_not_hold_initialisation_back() {
        let mut proxy = proxy();
        proxy.started(at(2)).unwrap();
        let done = ran(RestartPolicy::Never, ExitStatus::Code(0));
        let steps = [sidecar(&proxy, true), regular(&done)];
        assert_eq!(init_progress(&steps, at(5)), InitProgress::Done);
    }

    #[test]
    fn exited_sidecar_restarts_after_its_back_off_before_the_next() {
        let mut proxy = proxy();
        proxy.started(at(0)).unwrap();
        proxy
            .exited(Exit {
                status: ExitStatus::Code(0),
                started_at: at(0),
                finished_at: at(1),
            })
            .unwrap();
        let after = init(RestartPolicy::Never);
        let steps = [sidecar(&proxy, false), regular(&after)];
        assert_eq!(
            init_progress(&steps, at(5)),
            InitProgress::WaitUntil {
                index: 0,
                until: at(11)
            }
        );
        assert_eq!(init_progress(&steps, at(11)), InitProgress::Run(0));
    }
}
