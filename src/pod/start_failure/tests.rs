//! Start failures as systemd 252 reports them (field values copied from the sandbox),
//! counted and backed off like exits, and their bounded messages.

use std::time::Duration;

use super::*;
use crate::pod::observe::tests::{SECOND, T0, unit};
use crate::pod::observe::{failed_start, observe_unit};
use crate::pod::restart::{ContainerRestarts, RestartPolicy, RestartState, Role};
use crate::pod::status::{ContainerFacts, ContainerState, WaitingReason, container_observation};
use crate::systemd::{ActiveState, FailedCommand, UnitStatus};

/// A unit whose `ExecStartPre=` exited 3 in a start that began at `start` µs: what
/// systemd 252 reports (`ExecMain*` all 0, the exit only in `ExecStartPre`).
fn pre_failed(start: u64) -> UnitStatus {
    UnitStatus {
        result: "exit-code".into(),
        inactive_exit_us: start,
        inactive_enter_us: start + 2_000,
        invocation_id: "473f400effaf4d29aaa7c6c9f29e37ee".into(),
        control_group: String::new(),
        failed_command: Some(FailedCommand {
            kind: "ExecStartPre",
            path: "/bin/sh".into(),
            code: 1,
            status: 3,
            start_us: start + 500,
            exit_us: start + 1_500,
        }),
        ..unit(ActiveState::Failed, 0, 0, 0, 0, 0)
    }
}

#[test]
fn a_failed_exec_start_pre_is_a_counted_exit() {
    let failed = failed_start(&pre_failed(T0)).unwrap();
    assert_eq!(failed.exit.status, ExitStatus::Code(3));
    assert_eq!(failed.exit.started_at.as_microsecond(), T0 as i64);
    assert_eq!(
        failed.exit.finished_at.as_microsecond(),
        (T0 + 2_000) as i64
    );
    assert_eq!(
        failed.reason,
        "ExecStartPre=/bin/sh exited with status 3 before the container's program ran (systemd Result=exit-code)"
    );
}

#[test]
fn start_failures_back_off_10_20_40_seconds_and_count_restarts() {
    let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
    let mut start = T0;
    let mut delays = Vec::new();
    for attempt in 0..4u32 {
        let status = pre_failed(start);
        assert!(observe_unit(&mut restarts, &status), "attempt {attempt}");
        assert!(
            !observe_unit(&mut restarts, &status),
            "the same failed start is not counted twice"
        );
        assert_eq!(restarts.restart_count(), attempt);
        let RestartState::BackingOff { until, delay } = restarts.state() else {
            panic!("expected a back-off, got {:?}", restarts.state());
        };
        delays.push(delay);
        assert!(restarts.last_start_error().is_some());
        // The next start begins once the back-off has run out.
        start = u64::try_from(until.as_microsecond()).unwrap() + SECOND / 10;
    }
    let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [10, 20, 40, 80]);
}

#[test]
fn a_start_that_succeeds_after_failing_forgets_the_start_error() {
    let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
    observe_unit(&mut restarts, &pre_failed(T0));
    let RestartState::BackingOff { until, .. } = restarts.state() else {
        panic!("expected a back-off");
    };
    let later = u64::try_from(until.as_microsecond()).unwrap() + SECOND;
    observe_unit(
        &mut restarts,
        &unit(ActiveState::Active, 42, 0, 0, later, 0),
    );
    observe_unit(
        &mut restarts,
        &unit(ActiveState::Failed, 0, 1, 1, later, later + SECOND),
    );
    assert_eq!(restarts.restart_count(), 1);
    assert_eq!(restarts.last_start_error(), None, "an ordinary exit now");
}

#[test]
fn a_missing_program_or_user_is_a_start_error_of_the_main_process() {
    for (code, step) in [(203, "EXEC"), (217, "USER")] {
        let status = unit(ActiveState::Failed, 0, 1, code, T0, T0 + 1_000);
        let failed = failed_start(&status).unwrap();
        assert_eq!(failed.exit.status, ExitStatus::Code(code));
        assert!(failed.reason.contains(step), "{}", failed.reason);
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        observe_unit(&mut restarts, &status);
        assert!(matches!(restarts.state(), RestartState::BackingOff { .. }));
        assert!(restarts.last_start_error().is_some());
    }
    let crashed = unit(ActiveState::Failed, 0, 1, 1, T0, T0 + SECOND);
    assert_eq!(failed_start(&crashed), None, "exit 1 is the program's own");
}

#[test]
fn a_start_that_failed_without_a_failed_command_shows_128() {
    let status = UnitStatus {
        result: "protocol".into(),
        failed_command: None,
        ..pre_failed(T0)
    };
    let failed = failed_start(&status).unwrap();
    assert_eq!(failed.exit.status, ExitStatus::Code(START_ERROR_EXIT_CODE));
    assert!(
        failed.reason.contains("Result=protocol"),
        "{}",
        failed.reason
    );
}

#[test]
fn running_starting_and_condition_skipped_units_are_no_failed_start() {
    let starting = UnitStatus {
        active_state: ActiveState::Activating,
        ..pre_failed(T0)
    };
    assert_eq!(failed_start(&starting), None);
    // ConditionPathExists= not met: inactive, Result=success, never left inactive.
    let skipped = unit(ActiveState::Inactive, 0, 0, 0, 0, 0);
    assert_eq!(failed_start(&skipped), None);
    assert_eq!(
        failed_start(&unit(ActiveState::Active, 42, 0, 0, T0, 0)),
        None
    );
}

#[test]
fn the_status_shows_crash_loop_back_off_and_the_start_error() {
    let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
    let status = pre_failed(T0);
    observe_unit(&mut restarts, &status);
    restarts.attach_start_log(vec![
        "pre says hi".into(),
        "systemk.default.web.app.service: Control process exited, code=exited, status=3/n/a".into(),
    ]);
    let facts = ContainerFacts {
        name: "app",
        image: "/bin/sh",
        image_id: "",
        restarts: &restarts,
        unit: Some(&status),
        problem: None,
        probed: crate::pod::probe::Probed::default(),
        sidecar: false,
        pod_has_init_containers: false,
        pod: ("web", "default", "u-1"),
    };
    let observation = container_observation(&facts);
    assert_eq!(
        observation.state,
        ContainerState::Waiting {
            reason: WaitingReason::CrashLoopBackOff,
            message: Some(
                "back-off 10s restarting failed container=app pod=web_default(u-1)".into()
            ),
        }
    );
    let last = observation.last_termination.unwrap();
    assert_eq!(last.reason(), "StartError");
    assert_eq!(last.exit.exit_code(), 3);
    assert_eq!(
        last.start_error.as_deref(),
        Some(
            "ExecStartPre=/bin/sh exited with status 3 before the container's program ran (systemd Result=exit-code); last log lines:\npre says hi\nsystemk.default.web.app.service: Control process exited, code=exited, status=3/n/a"
        )
    );
}

#[test]
fn the_journal_is_attached_once_per_failed_start() {
    let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
    observe_unit(&mut restarts, &pre_failed(T0));
    restarts.attach_start_log(vec!["first".into()]);
    restarts.attach_start_log(vec!["second".into()]);
    assert_eq!(restarts.last_start_error().unwrap().log, ["first"]);
}

#[test]
fn messages_are_bounded_and_control_characters_cannot_forge_lines() {
    let hostile: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "line {i}\n\u{1b}[2Jfake: \"quoted\"\r\t\0{}",
                "é".repeat(400)
            )
        })
        .collect();
    let message = start_error_message(&"r".repeat(5000), &hostile);
    assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
    let lines: Vec<&str> = message.split('\n').collect();
    assert!(lines.len() <= LOG_LINES + 1, "{} lines", lines.len());
    assert!(
        !message.chars().any(|c| c.is_control() && c != '\n'),
        "no control characters but the separators: {message:?}"
    );
    for line in &lines {
        assert!(
            line.len() <= MAX_LINE_BYTES + "; last log lines:".len(),
            "{line}"
        );
    }
    // The last lines are kept, not the first, and each is cut with a mark.
    assert!(
        lines[1].starts_with("line 44\u{fffd}\u{fffd}[2Jfake"),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with('…'));
    // It is plain data in JSON: quotes are escaped, nothing else is needed.
    let json = serde_json::to_string(&message).unwrap();
    assert_eq!(serde_json::from_str::<String>(&json).unwrap(), message);
}

#[test]
fn a_message_without_log_lines_is_the_reason() {
    assert_eq!(start_error_message("it failed", &[]), "it failed");
    assert_eq!(cut("ab€".into(), 4), "a…", "never splits a character");
    assert_eq!(cut("a€€".into(), 6), "a…", "never splits a character");
}
