//! Init container sequencing: init containers run one at a time, in spec order, each to
//! success before the next, and app containers only after all of them; a failed init
//! container that may not restart (restartPolicy Never) fails the pod. Pure: reads the
//! restart state machines and the time passed in. Layer 4.

use k8s_openapi::jiff::Timestamp;

use super::restart::{ContainerRestarts, Decision, RestartState};

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
pub fn init_progress(init_containers: &[ContainerRestarts], now: Timestamp) -> InitProgress {
    for (index, container) in init_containers.iter().enumerate() {
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
    use crate::pod::restart::{Exit, ExitStatus, RestartPolicy};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn init(policy: RestartPolicy) -> ContainerRestarts {
        ContainerRestarts::new("init", policy, true)
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
        assert_eq!(init_progress(&[], at(0)), InitProgress::Done);
    }

    #[test]
    fn first_init_container_runs_first() {
        let inits = [init(RestartPolicy::Always), init(RestartPolicy::Always)];
        assert_eq!(init_progress(&inits, at(0)), InitProgress::Run(0));
    }

    #[test]
    fn second_runs_after_first_succeeded() {
        let inits = [
            ran(RestartPolicy::Always, ExitStatus::Code(0)),
            init(RestartPolicy::Always),
        ];
        assert_eq!(init_progress(&inits, at(5)), InitProgress::Run(1));
    }

    #[test]
    fn running_init_container_blocks_the_next() {
        let mut first = init(RestartPolicy::Always);
        first.started(at(0)).unwrap();
        let inits = [first, init(RestartPolicy::Always)];
        assert_eq!(init_progress(&inits, at(5)), InitProgress::Run(0));
    }

    #[test]
    fn failed_init_container_backs_off_under_always() {
        let inits = [
            ran(RestartPolicy::Always, ExitStatus::Code(1)),
            init(RestartPolicy::Always),
        ];
        assert_eq!(
            init_progress(&inits, at(5)),
            InitProgress::WaitUntil {
                index: 0,
                until: at(11)
            }
        );
    }

    #[test]
    fn failed_init_container_reruns_once_due() {
        let inits = [ran(RestartPolicy::OnFailure, ExitStatus::Code(1))];
        assert_eq!(init_progress(&inits, at(11)), InitProgress::Run(0));
    }

    #[test]
    fn failed_init_container_under_never_fails_the_pod() {
        let inits = [
            ran(RestartPolicy::Never, ExitStatus::Signal(9)),
            init(RestartPolicy::Never),
        ];
        assert_eq!(init_progress(&inits, at(5)), InitProgress::Failed(0));
    }

    #[test]
    fn all_succeeded_is_done() {
        let inits = [
            ran(RestartPolicy::Never, ExitStatus::Code(0)),
            ran(RestartPolicy::Always, ExitStatus::Code(0)),
        ];
        assert_eq!(init_progress(&inits, at(5)), InitProgress::Done);
    }
}
