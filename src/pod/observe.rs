//! From what systemd reports about a container's unit to the restart state machine: which
//! run it saw, and whether it still runs. Pure: the unit status comes in as data, so the
//! reconciler and `systemk pods` read containers the same way (the container's status is
//! built from this in [`super::status`]). What systemd reports for a start that fails is
//! described in [`super::start_failure`]. Layer 4.

use k8s_openapi::jiff::Timestamp;

use super::restart::{ContainerRestarts, Exit, ExitStatus, RestartState, Role};
use super::start_failure::{START_ERROR_EXIT_CODE, ended, setup_step};
use crate::systemd::{ActiveState, UnitStatus};

/// Whether the unit's main process is alive.
pub fn is_running(unit: &UnitStatus) -> bool {
    unit.main_pid != 0
        && matches!(
            unit.active_state,
            ActiveState::Active
                | ActiveState::Reloading
                | ActiveState::Activating
                | ActiveState::Deactivating
        )
}

/// Whether the container serves, for its `ready` without a readiness probe: its main
/// process runs and systemd calls the unit `active` (or `reloading`, which an active unit
/// passes through). `activating` is not ready: a `Type=notify` daemon has not sent
/// `READY=1` yet, a `Type=forking` one's parent has not exited, `ExecStartPost=` still
/// runs. `deactivating` is not ready either: systemd is stopping it.
pub fn is_serving(unit: &UnitStatus) -> bool {
    is_running(unit)
        && matches!(
            unit.active_state,
            ActiveState::Active | ActiveState::Reloading
        )
}

/// The run of the unit's main process systemd last reported: when it started and, once
/// it ended, how.
fn last_run(unit: &UnitStatus) -> Option<(Timestamp, Option<Exit>)> {
    let started_at = timestamp(unit.exec_main_start_us)?;
    if is_running(unit) {
        return Some((started_at, None));
    }
    let status = ExitStatus::from_systemd(unit.exec_main_code, unit.exec_main_status)?;
    let finished_at = timestamp(unit.exec_main_exit_us).unwrap_or(started_at);
    Some((
        started_at,
        Some(Exit {
            status,
            started_at,
            finished_at,
        }),
    ))
}

/// Brings `restarts` up to date with `unit`: records a start and an exit it has not seen
/// yet. A start that failed before the program ran counts as a run that exited (see
/// [`failed_start`]), so it backs off like any exit. A run it cannot account for (the
/// unit was started behind systemk's back, e.g. at boot or by an admin) counts as a
/// restart. Returns whether anything changed.
pub fn observe_unit(restarts: &mut ContainerRestarts, unit: &UnitStatus) -> bool {
    let failed = failed_start(unit);
    let run = last_run(unit).or_else(|| {
        let exit = failed.as_ref()?.exit;
        Some((exit.started_at, Some(exit)))
    });
    let Some((started_at, exit)) = run else {
        return false;
    };
    let before = restarts.clone();
    let new_run = restarts
        .last_started_at()
        .is_none_or(|last| started_at > last);
    if new_run && restarts.started(started_at).is_err() {
        let mut adopted =
            ContainerRestarts::new(restarts.container(), restarts.policy(), Role::App)
                .with_restart_count(restarts.restart_count().saturating_add(1))
                .unwrap_or_else(|_| {
                    ContainerRestarts::new(restarts.container(), restarts.policy(), Role::App)
                });
        if adopted.started(started_at).is_ok() {
            *restarts = adopted;
        }
    }
    if let Some(exit) = exit {
        let running_this_run =
            matches!(restarts.state(), RestartState::Running { started_at: s } if s == started_at);
        if running_this_run {
            // Only Running may exit, and it is Running: this cannot be refused.
            let _ = match failed {
                Some(failed) if failed.exit == exit => restarts.start_failed(exit, failed.reason),
                _ => restarts.exited(exit),
            };
        }
    }
    *restarts != before
}

/// A start that failed before the container's program ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStart {
    /// The attempt, as an exit the restart state machine counts.
    pub exit: Exit,
    /// What failed, for humans, e.g. "ExecStartPre=/bin/mkdir exited with status 1".
    pub reason: String,
}

/// The start failure `unit` reports for its latest start, if it failed before its
/// program ran: a failed start command while the main process never started, or a main
/// process systemd could not set up (its exit codes 200–245).
pub fn failed_start(unit: &UnitStatus) -> Option<FailedStart> {
    if is_running(unit) {
        return None;
    }
    if unit.exec_main_start_us != 0 {
        return setup_failure(unit);
    }
    if unit.active_state != ActiveState::Failed {
        return None;
    }
    let started_at = timestamp(unit.inactive_exit_us)?;
    let command = unit.failed_command.as_ref();
    let status = command
        .and_then(|c| ExitStatus::from_systemd(c.code, c.status))
        .unwrap_or(ExitStatus::Code(START_ERROR_EXIT_CODE));
    let finished_at = timestamp(unit.inactive_enter_us)
        .or_else(|| command.and_then(|c| timestamp(c.exit_us)))
        .filter(|at| *at >= started_at)
        .unwrap_or(started_at);
    let how = match command {
        Some(command) => format!(
            "{}={} {}",
            command.kind,
            command.path,
            ended(ExitStatus::from_systemd(command.code, command.status))
        ),
        None => "the start failed".to_owned(),
    };
    Some(FailedStart {
        exit: Exit {
            status,
            started_at,
            finished_at,
        },
        reason: format!(
            "{how} before the container's program ran (systemd Result={})",
            unit.result
        ),
    })
}

/// A main process that ended with one of systemd's own exit codes: it never got to run
/// the container's program.
fn setup_failure(unit: &UnitStatus) -> Option<FailedStart> {
    let code = unit.exit_code()?;
    let what = setup_step(code)?;
    let started_at = timestamp(unit.exec_main_start_us)?;
    let finished_at = timestamp(unit.exec_main_exit_us).unwrap_or(started_at);
    Some(FailedStart {
        exit: Exit {
            status: ExitStatus::Code(code),
            started_at,
            finished_at,
        },
        reason: format!("exit code {code} is systemd's {what}"),
    })
}

/// systemd's realtime microseconds; 0 means "never".
pub fn timestamp(us: u64) -> Option<Timestamp> {
    if us == 0 {
        return None;
    }
    Timestamp::from_microsecond(i64::try_from(us).ok()?).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pod::restart::RestartPolicy;
    use crate::unit::UnitName;

    pub(crate) const T0: u64 = 1_800_000_000_000_000;
    pub(crate) const SECOND: u64 = 1_000_000;

    /// A unit status with the fields the observation reads.
    pub(crate) fn unit(
        active: ActiveState,
        pid: u32,
        code: i32,
        status: i32,
        start: u64,
        exit: u64,
    ) -> UnitStatus {
        UnitStatus {
            name: UnitName::for_container("default", "web", "app").unwrap(),
            active_state: active,
            sub_state: String::new(),
            result: "success".into(),
            main_pid: pid,
            exec_main_code: code,
            exec_main_status: status,
            exec_main_start_us: start,
            exec_main_exit_us: exit,
            active_enter_us: start,
            inactive_enter_us: 0,
            n_restarts: 0,
            inactive_exit_us: 0,
            invocation_id: String::new(),
            control_group: String::new(),
            failed_command: None,
        }
    }

    #[test]
    fn a_restart_behind_systemks_back_counts_as_a_restart() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        observe_unit(&mut restarts, &unit(ActiveState::Active, 42, 0, 0, T0, 0));
        observe_unit(
            &mut restarts,
            &unit(ActiveState::Active, 43, 0, 0, T0 + 5 * SECOND, 0),
        );
        assert_eq!(restarts.restart_count(), 1);
        assert!(matches!(restarts.state(), RestartState::Running { .. }));
    }
}
