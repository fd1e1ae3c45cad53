use super::*;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn exit(status: ExitStatus, started: i64, finished: i64) -> Exit {
    Exit {
        status,
        started_at: at(started),
        finished_at: at(finished),
    }
}

fn crash(started: i64, finished: i64) -> Exit {
    exit(ExitStatus::Code(1), started, finished)
}

fn running(policy: RestartPolicy, role: Role) -> ContainerRestarts {
    let mut c = ContainerRestarts::new("app", policy, role);
    c.started(at(0)).unwrap();
    c
}

/// Crashes the container right after each start and returns the restart delays in seconds.
fn crash_loop(c: &mut ContainerRestarts, times: usize) -> Vec<i64> {
    let mut delays = Vec::new();
    let mut started = c.last_started_at().unwrap().as_second() - at(0).as_second();
    for _ in 0..times {
        let finished = started + 1;
        let Decision::RestartAt(due) = c.exited(crash(started, finished)).unwrap() else {
            panic!("expected a restart");
        };
        delays.push(due.as_second() - at(finished).as_second());
        started = due.as_second() - at(0).as_second();
        c.started(due).unwrap();
    }
    delays
}

#[test]
fn policy_defaults_to_always() {
    assert_eq!(
        RestartPolicy::from_spec(None).unwrap(),
        RestartPolicy::Always
    );
}

#[test]
fn policy_parses_the_three_values() {
    assert_eq!(
        RestartPolicy::from_spec(Some("OnFailure")).unwrap(),
        RestartPolicy::OnFailure
    );
    assert_eq!(
        RestartPolicy::from_spec(Some("Never")).unwrap(),
        RestartPolicy::Never
    );
}

#[test]
fn policy_spelling_round_trips() {
    for policy in [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ] {
        assert_eq!(
            RestartPolicy::from_spec(Some(policy.as_str())).unwrap(),
            policy
        );
    }
}

#[test]
fn policy_rejects_other_values() {
    let err = RestartPolicy::from_spec(Some("always")).unwrap_err();
    assert_eq!(err.reason(), "InvalidRestartPolicy");
}

#[test]
fn init_container_under_always_follows_on_failure() {
    assert_eq!(
        RestartPolicy::Always.for_container(Role::Init),
        RestartPolicy::OnFailure
    );
    assert_eq!(
        RestartPolicy::Always.for_container(Role::App),
        RestartPolicy::Always
    );
    assert_eq!(
        RestartPolicy::Never.for_container(Role::Init),
        RestartPolicy::Never
    );
}

#[test]
fn retired_sidecar_stays_terminated() {
    let mut c = running(RestartPolicy::Never, Role::Sidecar);
    c.retire();
    assert_eq!(c.state(), RestartState::Running { started_at: at(0) });
    c.exited(exit(ExitStatus::Signal(15), 0, 1)).unwrap();
    c.retire();
    assert_eq!(c.state(), RestartState::Terminated);
    assert_eq!(c.decide(at(60)), Decision::StayTerminated);
}

#[test]
fn sidecar_always_restarts_whatever_the_pod_policy() {
    for policy in [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ] {
        assert_eq!(policy.for_container(Role::Sidecar), RestartPolicy::Always);
        let mut c = running(policy, Role::Sidecar);
        let decision = c.exited(exit(ExitStatus::Code(0), 0, 1)).unwrap();
        assert_eq!(decision, Decision::RestartAt(at(11)));
    }
}

#[test]
fn signal_exit_code_is_128_plus_signal() {
    assert_eq!(ExitStatus::Signal(9).exit_code(), 137);
    assert_eq!(ExitStatus::Signal(15).exit_code(), 143);
    assert_eq!(ExitStatus::Signal(9).signal(), Some(9));
}

#[test]
fn plain_exit_code_is_kept() {
    assert_eq!(ExitStatus::Code(3).exit_code(), 3);
    assert_eq!(ExitStatus::Code(3).signal(), None);
}

#[test]
fn only_code_zero_succeeds() {
    assert!(ExitStatus::Code(0).succeeded());
    assert!(!ExitStatus::Code(1).succeeded());
    assert!(!ExitStatus::Signal(15).succeeded());
}

#[test]
fn systemd_exec_main_codes_map_to_exit_status() {
    assert_eq!(ExitStatus::from_systemd(1, 2), Some(ExitStatus::Code(2)));
    assert_eq!(ExitStatus::from_systemd(2, 9), Some(ExitStatus::Signal(9)));
    assert_eq!(
        ExitStatus::from_systemd(3, 11),
        Some(ExitStatus::Signal(11))
    );
    assert_eq!(ExitStatus::from_systemd(0, 0), None);
}

#[test]
fn new_container_should_run() {
    let c = ContainerRestarts::new("app", RestartPolicy::Never, Role::App);
    assert_eq!(c.decide(at(0)), Decision::Run);
    assert_eq!(c.state(), RestartState::NotStarted);
}

#[test]
fn running_container_should_keep_running() {
    let c = running(RestartPolicy::Always, Role::App);
    assert_eq!(c.decide(at(5)), Decision::Run);
    assert_eq!(c.state(), RestartState::Running { started_at: at(0) });
}

#[test]
fn always_restarts_after_success() {
    let mut c = running(RestartPolicy::Always, Role::App);
    let decision = c.exited(exit(ExitStatus::Code(0), 0, 5)).unwrap();
    assert_eq!(decision, Decision::RestartAt(at(15)));
}

#[test]
fn on_failure_keeps_success_terminated() {
    let mut c = running(RestartPolicy::OnFailure, Role::App);
    let decision = c.exited(exit(ExitStatus::Code(0), 0, 5)).unwrap();
    assert_eq!(decision, Decision::StayTerminated);
    assert_eq!(c.decide(at(100)), Decision::StayTerminated);
}

#[test]
fn on_failure_restarts_after_failure() {
    let mut c = running(RestartPolicy::OnFailure, Role::App);
    assert_eq!(c.exited(crash(0, 5)).unwrap(), Decision::RestartAt(at(15)));
}

#[test]
fn on_failure_restarts_after_signal() {
    let mut c = running(RestartPolicy::OnFailure, Role::App);
    let decision = c.exited(exit(ExitStatus::Signal(9), 0, 5)).unwrap();
    assert_eq!(decision, Decision::RestartAt(at(15)));
}

#[test]
fn never_keeps_failure_terminated() {
    let mut c = running(RestartPolicy::Never, Role::App);
    assert_eq!(c.exited(crash(0, 5)).unwrap(), Decision::StayTerminated);
    assert_eq!(c.state(), RestartState::Terminated);
}

#[test]
fn init_container_under_always_stays_terminated_after_success() {
    let mut c = running(RestartPolicy::Always, Role::Init);
    let decision = c.exited(exit(ExitStatus::Code(0), 0, 5)).unwrap();
    assert_eq!(decision, Decision::StayTerminated);
}

#[test]
fn init_container_under_always_restarts_after_failure() {
    let mut c = running(RestartPolicy::Always, Role::Init);
    assert_eq!(c.exited(crash(0, 5)).unwrap(), Decision::RestartAt(at(15)));
}

#[test]
fn init_container_under_never_stays_failed() {
    let mut c = running(RestartPolicy::Never, Role::Init);
    assert_eq!(c.exited(crash(0, 5)).unwrap(), Decision::StayTerminated);
}

#[test]
fn backoff_doubles_from_10s_to_300s() {
    let mut c = running(RestartPolicy::Always, Role::App);
    assert_eq!(crash_loop(&mut c, 8), [10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(c.restart_count(), 8);
}

#[test]
fn backoff_resets_after_ten_minutes_of_running() {
    let mut c = running(RestartPolicy::Always, Role::App);
    crash_loop(&mut c, 4);
    let started = c.last_started_at().unwrap().as_second() - at(0).as_second();
    let decision = c.exited(crash(started, started + 600)).unwrap();
    assert_eq!(decision, Decision::RestartAt(at(started + 600 + 10)));
}

#[test]
fn backoff_keeps_growing_after_just_under_ten_minutes() {
    let mut c = running(RestartPolicy::Always, Role::App);
    crash_loop(&mut c, 1);
    let started = c.last_started_at().unwrap().as_second() - at(0).as_second();
    let decision = c.exited(crash(started, started + 599)).unwrap();
    assert_eq!(decision, Decision::RestartAt(at(started + 599 + 20)));
}

#[test]
fn backing_off_waits_until_due_then_runs() {
    let mut c = running(RestartPolicy::Always, Role::App);
    c.exited(crash(0, 5)).unwrap();
    assert_eq!(c.decide(at(14)), Decision::RestartAt(at(15)));
    assert_eq!(c.decide(at(15)), Decision::Run);
    assert_eq!(
        c.state(),
        RestartState::BackingOff {
            until: at(15),
            delay: Duration::from_secs(10)
        }
    );
}

#[test]
fn first_start_is_not_a_restart() {
    let c = running(RestartPolicy::Always, Role::App);
    assert_eq!(c.restart_count(), 0);
}

#[test]
fn restart_after_backoff_counts() {
    let mut c = running(RestartPolicy::Always, Role::App);
    c.exited(crash(0, 5)).unwrap();
    c.started(at(15)).unwrap();
    assert_eq!(c.restart_count(), 1);
    assert_eq!(c.last_exit(), Some(crash(0, 5)));
}

#[test]
fn carried_over_restart_count_is_kept() {
    let c = ContainerRestarts::new("app", RestartPolicy::Always, Role::App)
        .with_restart_count(7)
        .unwrap();
    assert_eq!(c.restart_count(), 7);
}

#[test]
fn restart_count_cannot_be_carried_over_while_running() {
    let c = running(RestartPolicy::Always, Role::App);
    assert!(matches!(
        c.with_restart_count(3),
        Err(Error::IllegalTransition { .. })
    ));
}

#[test]
fn start_before_backoff_runs_out_is_refused() {
    let mut c = running(RestartPolicy::Always, Role::App);
    c.exited(crash(0, 5)).unwrap();
    let err = c.started(at(14)).unwrap_err();
    assert_eq!(err.reason(), "RestartNotDue");
    assert_eq!(c.restart_count(), 0);
}

#[test]
fn start_while_running_is_illegal() {
    let mut c = running(RestartPolicy::Always, Role::App);
    let err = c.started(at(1)).unwrap_err();
    assert!(matches!(
        err,
        Error::IllegalTransition { ref container, transition: "record a start", state: "running" }
            if container == "app"
    ));
}

#[test]
fn start_after_terminated_is_illegal() {
    let mut c = running(RestartPolicy::Never, Role::App);
    c.exited(crash(0, 5)).unwrap();
    assert!(matches!(
        c.started(at(20)),
        Err(Error::IllegalTransition {
            state: "terminated",
            ..
        })
    ));
}

#[test]
fn exit_before_start_is_illegal() {
    let mut c = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
    assert!(matches!(
        c.exited(crash(0, 5)),
        Err(Error::IllegalTransition {
            state: "not started",
            ..
        })
    ));
}

#[test]
fn exit_while_backing_off_is_illegal() {
    let mut c = running(RestartPolicy::Always, Role::App);
    c.exited(crash(0, 5)).unwrap();
    assert!(c.exited(crash(0, 5)).is_err());
}

#[test]
fn exit_with_clock_gone_backwards_counts_as_short_run() {
    assert_eq!(crash(10, 5).ran_for(), Duration::ZERO);
}
