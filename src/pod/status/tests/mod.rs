//! Phase rules per restartPolicy, and the builders the other status tests share.

use super::*;
use RestartPolicy::{Always, Never, OnFailure};
use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition};

mod fields;
mod sidecars;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn container(name: &str, state: ContainerState) -> ContainerObservation {
    ContainerObservation {
        name: name.into(),
        image: "/bin/sleep".into(),
        image_id: "sha256:ab".into(),
        container_id: Some(format!("systemd://systemk.default.web.{name}.service")),
        state,
        last_termination: None,
        restart_count: 0,
        ready: true,
        started: true,
        sidecar: false,
    }
}

fn termination(exit: ExitStatus) -> Termination {
    Termination {
        exit,
        oom_killed: false,
        started_at: at(0),
        finished_at: at(5),
        start_error: None,
        message: None,
    }
}

fn creating(name: &str) -> ContainerObservation {
    container(name, ContainerState::not_created(false))
}

fn initializing(name: &str) -> ContainerObservation {
    container(name, ContainerState::not_created(true))
}

fn running(name: &str) -> ContainerObservation {
    container(name, ContainerState::Running { started_at: at(0) })
}

fn exited(name: &str, code: i32) -> ContainerObservation {
    container(
        name,
        ContainerState::Terminated(termination(ExitStatus::Code(code))),
    )
}

fn killed(name: &str, signal: i32) -> ContainerObservation {
    container(
        name,
        ContainerState::Terminated(termination(ExitStatus::Signal(signal))),
    )
}

fn backing_off(name: &str, code: i32) -> ContainerObservation {
    ContainerObservation {
        last_termination: Some(termination(ExitStatus::Code(code))),
        restart_count: 1,
        ..container(
            name,
            ContainerState::Waiting {
                reason: WaitingReason::CrashLoopBackOff,
                message: None,
            },
        )
    }
}

fn pod(
    policy: RestartPolicy,
    init_containers: Vec<ContainerObservation>,
    containers: Vec<ContainerObservation>,
) -> PodObservation {
    PodObservation {
        restart_policy: policy,
        init_containers,
        containers,
        start_time: Some(at(-10)),
        host_ips: vec!["192.0.2.7".parse().unwrap()],
        qos_class: QosClass::BestEffort,
        deleted: false,
        readiness_gates: ReadinessGates::default(),
    }
}

fn phase(policy: RestartPolicy, apps: Vec<ContainerObservation>) -> PodPhase {
    pod_phase(&pod(policy, vec![], apps))
}

fn init_phase(policy: RestartPolicy, inits: Vec<ContainerObservation>) -> PodPhase {
    pod_phase(&pod(policy, inits, vec![initializing("app")]))
}

fn condition<'a>(status: &'a PodStatus, type_: &str) -> &'a PodCondition {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .unwrap()
}

fn status_of(p: &PodObservation) -> PodStatus {
    pod_status(p, None, at(100))
}

fn app_status(p: &PodObservation) -> ContainerStatus {
    status_of(p).container_statuses.unwrap().remove(0)
}

// Phase, restartPolicy Always.

#[test]
fn always_all_running_is_running() {
    assert_eq!(
        phase(Always, vec![running("a"), running("b")]),
        PodPhase::Running
    );
}

#[test]
fn always_container_being_created_is_pending() {
    assert_eq!(
        phase(Always, vec![running("a"), creating("b")]),
        PodPhase::Pending
    );
}

#[test]
fn always_all_exited_zero_is_still_running() {
    assert_eq!(phase(Always, vec![exited("a", 0)]), PodPhase::Running);
}

#[test]
fn always_crash_looping_is_running() {
    assert_eq!(phase(Always, vec![backing_off("a", 1)]), PodPhase::Running);
}

#[test]
fn always_deleted_and_all_succeeded_is_succeeded() {
    let p = PodObservation {
        deleted: true,
        ..pod(Always, vec![], vec![exited("a", 0)])
    };
    assert_eq!(pod_phase(&p), PodPhase::Succeeded);
}

#[test]
fn always_deleted_and_killed_is_failed() {
    let p = PodObservation {
        deleted: true,
        ..pod(Always, vec![], vec![killed("a", 15)])
    };
    assert_eq!(pod_phase(&p), PodPhase::Failed);
}

#[test]
fn deleted_but_still_running_is_running() {
    let p = PodObservation {
        deleted: true,
        ..pod(Always, vec![], vec![running("a")])
    };
    assert_eq!(pod_phase(&p), PodPhase::Running);
}

// Phase, restartPolicy OnFailure.

#[test]
fn on_failure_all_exited_zero_is_succeeded() {
    assert_eq!(
        phase(OnFailure, vec![exited("a", 0), exited("b", 0)]),
        PodPhase::Succeeded
    );
}

#[test]
fn on_failure_one_restarting_is_running() {
    assert_eq!(
        phase(OnFailure, vec![exited("a", 0), backing_off("b", 2)]),
        PodPhase::Running
    );
}

#[test]
fn on_failure_running_is_running() {
    assert_eq!(phase(OnFailure, vec![running("a")]), PodPhase::Running);
}

// Phase, restartPolicy Never.

#[test]
fn never_all_exited_zero_is_succeeded() {
    assert_eq!(phase(Never, vec![exited("a", 0)]), PodPhase::Succeeded);
}

#[test]
fn never_one_failed_is_failed() {
    assert_eq!(
        phase(Never, vec![exited("a", 0), exited("b", 3)]),
        PodPhase::Failed
    );
}

#[test]
fn never_killed_is_failed() {
    assert_eq!(phase(Never, vec![killed("a", 9)]), PodPhase::Failed);
}

#[test]
fn never_mixed_failed_and_running_is_running_not_unknown() {
    assert_eq!(
        phase(Never, vec![exited("a", 1), running("b")]),
        PodPhase::Running
    );
}

#[test]
fn never_mixed_succeeded_and_running_is_running() {
    assert_eq!(
        phase(Never, vec![exited("a", 0), running("b")]),
        PodPhase::Running
    );
}

// Phase with init containers.

#[test]
fn init_not_started_is_pending() {
    assert_eq!(
        init_phase(Always, vec![creating("init")]),
        PodPhase::Pending
    );
}

#[test]
fn init_running_is_pending() {
    assert_eq!(init_phase(Always, vec![running("init")]), PodPhase::Pending);
}

#[test]
fn init_crash_looping_is_pending() {
    assert_eq!(
        init_phase(Always, vec![backing_off("init", 1)]),
        PodPhase::Pending
    );
}

#[test]
fn init_failed_under_never_fails_the_pod() {
    assert_eq!(init_phase(Never, vec![exited("init", 1)]), PodPhase::Failed);
}

#[test]
fn init_done_and_apps_created_is_pending() {
    assert_eq!(
        init_phase(Never, vec![exited("init", 0)]),
        PodPhase::Pending
    );
}

#[test]
fn init_done_and_apps_running_is_running() {
    let p = pod(Always, vec![exited("init", 0)], vec![running("app")]);
    assert_eq!(pod_phase(&p), PodPhase::Running);
}
