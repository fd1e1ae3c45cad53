//! The restart state machine of one container: what the kubelet decides when a container
//! exits, with the counters (restart count, back-off step, last start and exit) inside.
//!
//! systemd 252 has no `RestartSteps=`/`RestartMaxDelaySec=`, and its start limit (5 starts
//! in 10 s) leaves a crash-looping unit `failed` with `Result=start-limit-hit`, so systemk
//! restarts containers itself on the kubelet's schedule
//! ([`crate::backoff::CONTAINER_RESTART`]), counted from the moment the run ended. One
//! deliberate difference: the kubelet restarts after the first crash at once, systemk
//! waits the first 10 s too (issue 3). Pure: times are passed in, nothing here reads a
//! clock, sleeps or talks to systemd. Layer 4.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::error::{Error, Result};
use crate::backoff::{CONTAINER_RESTART, CONTAINER_RESTART_RESET_AFTER};

/// A pod's `spec.restartPolicy`: the unit layer's type, which `[X-Kubernetes]` also
/// carries.
pub use crate::unit::RestartPolicy;

impl RestartPolicy {
    /// Reads the spec's value; absent means `Always`, as the API server defaults it.
    pub fn from_spec(value: Option<&str>) -> Result<Self> {
        value.map_or(Ok(Self::Always), |text| {
            text.parse().map_err(|_| Error::InvalidRestartPolicy {
                value: text.to_owned(),
            })
        })
    }

    /// The policy of `pod`. One the unit layer refuses reads as `Always`: such a pod never
    /// gets a unit, so nothing restarts by it.
    pub fn of_pod(pod: &Pod) -> Self {
        let policy = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.restart_policy.as_deref());
        Self::from_spec(policy).unwrap_or(Self::Always)
    }

    /// The policy one container follows: init containers must run to completion, so
    /// under `Always` they restart only on failure, as the kubelet does; a sidecar
    /// restarts whenever it exits, whatever the pod's policy.
    pub fn for_container(self, role: Role) -> Self {
        match (self, role) {
            (_, Role::Sidecar) => Self::Always,
            (Self::Always, Role::Init) => Self::OnFailure,
            (policy, _) => policy,
        }
    }
}

/// What part a container plays in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One of `containers`.
    App,
    /// One of `initContainers` that runs to completion.
    Init,
    /// One of `initContainers` with `restartPolicy: Always` (a native sidecar): it runs
    /// beside the app containers.
    Sidecar,
}

/// How a main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// From systemd's `ExecMainCode`/`ExecMainStatus` (a `waitid` `si_code`:
    /// 1 `CLD_EXITED`, 2 `CLD_KILLED`, 3 `CLD_DUMPED`); `None` when the process has not
    /// ended (code 0) or the code is unknown.
    pub fn from_systemd(exec_main_code: i32, exec_main_status: i32) -> Option<Self> {
        match exec_main_code {
            1 => Some(Self::Code(exec_main_status)),
            2 | 3 => Some(Self::Signal(exec_main_status)),
            _ => None,
        }
    }

    /// The container exit code the API shows: 128 + N for signal N, as a shell and
    /// container runtimes report it.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Code(code) => code,
            Self::Signal(signal) => signal.saturating_add(128),
        }
    }

    /// The killing signal, if any.
    pub fn signal(self) -> Option<i32> {
        match self {
            Self::Code(_) => None,
            Self::Signal(signal) => Some(signal),
        }
    }

    /// Exit code 0; any signal is a failure.
    pub fn succeeded(self) -> bool {
        self == Self::Code(0)
    }
}

/// One observed end of a container's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// How it ended.
    pub status: ExitStatus,
    /// When that run started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
}

impl Exit {
    /// How long that run lasted; zero if the clock went backwards.
    pub fn ran_for(&self) -> Duration {
        Duration::try_from(self.finished_at.duration_since(self.started_at)).unwrap_or_default()
    }
}

/// Why the latest run never got the container's program running, and what its journal
/// said (see `pod::start_failure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// What failed, e.g. "ExecStartPre=/bin/mkdir exited with status 1 …".
    pub reason: String,
    /// The last journal lines of that run, oldest first, once read.
    pub log: Vec<String>,
    /// Whether the journal was read (it is read once per failed start).
    pub log_read: bool,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartState {
    /// Never started yet.
    NotStarted,
    /// Running since this time.
    Running {
        /// When the current run started.
        started_at: Timestamp,
    },
    /// Exited, and will be started again at `until` (the kubelet's CrashLoopBackOff).
    BackingOff {
        /// When the restart is due.
        until: Timestamp,
        /// The delay that was chosen, for messages like "back-off 20s".
        delay: Duration,
    },
    /// Exited for good, under its restart policy.
    Terminated,
}

impl RestartState {
    fn name(self) -> &'static str {
        match self {
            Self::NotStarted => "not started",
            Self::Running { .. } => "running",
            Self::BackingOff { .. } => "backing off",
            Self::Terminated => "terminated",
        }
    }
}

/// What the reconciler should do with a container now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It should be running: start it, or leave it running.
    Run,
    /// Start it again at this time, not before.
    RestartAt(Timestamp),
    /// Leave it stopped.
    StayTerminated,
}

/// The restart state machine of one container. Allowed transitions; anything else is an
/// [`Error::IllegalTransition`]:
///
/// ```text
/// NotStarted ──started──▶ Running ──exited──▶ BackingOff ──started (once due)──▶ Running
///                                 └──exited──▶ Terminated
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRestarts {
    container: String,
    policy: RestartPolicy,
    state: RestartState,
    restart_count: u32,
    backoff_step: u32,
    last_started_at: Option<Timestamp>,
    last_exit: Option<Exit>,
    last_start_error: Option<StartError>,
    /// The termination message of `last_exit` (`pod::termination_message`), once read.
    last_message: Option<String>,
    /// A liveness or startup probe stopped the current run: its exit restarts the
    /// container unless the policy is `Never`, whatever the exit code.
    killed_by_probe: bool,
}

impl ContainerRestarts {
    /// A container that has not started, following `pod_policy` as adjusted for its
    /// role by [`RestartPolicy::for_container`].
    pub fn new(container: impl Into<String>, pod_policy: RestartPolicy, role: Role) -> Self {
        Self {
            container: container.into(),
            policy: pod_policy.for_container(role),
            state: RestartState::NotStarted,
            restart_count: 0,
            backoff_step: 0,
            last_started_at: None,
            last_exit: None,
            last_start_error: None,
            last_message: None,
            killed_by_probe: false,
        }
    }

    /// The machine of a container of a pod under `pod_policy`: `record` (as kept before)
    /// when it was kept under that same policy, else a fresh one, so a changed policy
    /// starts over.
    pub fn resumed(
        container: impl Into<String>,
        pod_policy: RestartPolicy,
        role: Role,
        record: Option<Self>,
    ) -> Self {
        record
            .filter(|record| record.policy == pod_policy.for_container(role))
            .unwrap_or_else(|| Self::new(container, pod_policy, role))
    }

    /// Carries over a restart count known from before (e.g. when systemk adopts units
    /// after its own restart); only before the first start.
    pub fn with_restart_count(mut self, restart_count: u32) -> Result<Self> {
        self.expect("carry over a restart count", |s| {
            matches!(s, RestartState::NotStarted)
        })?;
        self.restart_count = restart_count;
        Ok(self)
    }

    /// A machine that has not started the container yet, for which every run that began
    /// by `at` (of the container's earlier spec) is already seen: none is one of its runs.
    pub fn after_run_at(mut self, at: Timestamp) -> Self {
        self.last_started_at = Some(at);
        self
    }

    /// The container's name.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The policy this container follows.
    pub fn policy(&self) -> RestartPolicy {
        self.policy
    }

    /// Where it is now.
    pub fn state(&self) -> RestartState {
        self.state
    }

    /// How many times it was started again after exiting.
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// When its latest run started.
    pub fn last_started_at(&self) -> Option<Timestamp> {
        self.last_started_at
    }

    /// How its latest finished run ended.
    pub fn last_exit(&self) -> Option<Exit> {
        self.last_exit
    }

    /// Why its latest finished run never got its program running, if so.
    pub fn last_start_error(&self) -> Option<&StartError> {
        self.last_start_error.as_ref()
    }

    /// The termination message of its latest finished run, if it left one.
    pub fn last_message(&self) -> Option<&str> {
        self.last_message.as_deref()
    }

    /// Keeps the termination message of the latest finished run.
    pub fn attach_message(&mut self, message: Option<String>) {
        self.last_message = message;
    }

    /// Records that the latest start failed before the program ran: an exit like any
    /// other (counted, backed off), remembered with `reason` for the status.
    pub fn start_failed(&mut self, exit: Exit, reason: String) -> Result<Decision> {
        let decision = self.exited(exit)?;
        self.last_start_error = Some(StartError {
            reason,
            log: Vec::new(),
            log_read: false,
        });
        Ok(decision)
    }

    /// Keeps the journal lines of the latest failed start; only the first time.
    pub fn attach_start_log(&mut self, lines: Vec<String>) {
        if let Some(error) = self.last_start_error.as_mut().filter(|e| !e.log_read) {
            error.log = lines;
            error.log_read = true;
        }
    }

    /// Records that it started at `at`: the first start, or a restart once the back-off
    /// has run out (which counts as a restart).
    pub fn started(&mut self, at: Timestamp) -> Result<()> {
        match self.state {
            RestartState::NotStarted => {}
            RestartState::BackingOff { until, .. } if at >= until => {
                self.restart_count = self.restart_count.saturating_add(1);
            }
            RestartState::BackingOff { until, .. } => {
                return Err(Error::RestartNotDue {
                    container: self.container.clone(),
                    started_at: at,
                    due: until,
                });
            }
            state => return Err(self.illegal("record a start", state)),
        }
        self.state = RestartState::Running { started_at: at };
        self.last_started_at = Some(at);
        Ok(())
    }

    /// A probe stops the current run: like the kubelet, its exit is followed by a
    /// restart under `Always` and `OnFailure` alike.
    pub fn killed_by_probe(&mut self) {
        self.killed_by_probe = true;
    }

    /// Records that the running container ended, and decides what follows: a restart at
    /// `finished_at` + the next back-off delay, or nothing more. A run of at least
    /// [`CONTAINER_RESTART_RESET_AFTER`] starts the back-off over at its first delay.
    pub fn exited(&mut self, exit: Exit) -> Result<Decision> {
        self.expect("record an exit", |s| {
            matches!(s, RestartState::Running { .. })
        })?;
        self.last_exit = Some(exit);
        self.last_start_error = None;
        self.last_message = None;
        let killed_by_probe = std::mem::take(&mut self.killed_by_probe);
        let restart = match self.policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => killed_by_probe || !exit.status.succeeded(),
            RestartPolicy::Never => false,
        };
        if !restart {
            self.state = RestartState::Terminated;
            return Ok(Decision::StayTerminated);
        }
        if exit.ran_for() >= CONTAINER_RESTART_RESET_AFTER {
            self.backoff_step = 0;
        }
        let delay = CONTAINER_RESTART.delay(self.backoff_step);
        self.backoff_step = self.backoff_step.saturating_add(1);
        let until = exit
            .finished_at
            .saturating_add(delay)
            .unwrap_or(Timestamp::MAX);
        self.state = RestartState::BackingOff { until, delay };
        Ok(Decision::RestartAt(until))
    }

    /// Ends a container waiting for its restart for good: a sidecar of a pod whose app
    /// containers are done is not restarted. Does nothing in any other state.
    pub fn retire(&mut self) {
        if matches!(self.state, RestartState::BackingOff { .. }) {
            self.state = RestartState::Terminated;
        }
    }

    /// What should happen at `now`, without changing anything.
    pub fn decide(&self, now: Timestamp) -> Decision {
        match self.state {
            RestartState::NotStarted | RestartState::Running { .. } => Decision::Run,
            RestartState::BackingOff { until, .. } if now >= until => Decision::Run,
            RestartState::BackingOff { until, .. } => Decision::RestartAt(until),
            RestartState::Terminated => Decision::StayTerminated,
        }
    }

    fn expect(&self, transition: &'static str, allowed: fn(&RestartState) -> bool) -> Result<()> {
        if allowed(&self.state) {
            Ok(())
        } else {
            Err(self.illegal(transition, self.state))
        }
    }

    fn illegal(&self, transition: &'static str, state: RestartState) -> Error {
        Error::IllegalTransition {
            container: self.container.clone(),
            transition,
            state: state.name(),
        }
    }
}

mod record;

pub use record::RestartRecord;

#[cfg(test)]
mod tests;
