//! Phase, conditions and statuses of pods with sidecars (restartable init containers),
//! by the kubelet's `getPhase` and pkg/kubelet/status/generate.go.

use super::*;

fn sidecar(c: ContainerObservation) -> ContainerObservation {
    ContainerObservation { sidecar: true, ..c }
}

fn init_status(p: &PodObservation) -> ContainerStatus {
    status_of(p).init_container_statuses.unwrap().remove(0)
}

#[test]
fn sidecar_not_started_yet_keeps_the_pod_pending() {
    let p = pod(
        Always,
        vec![sidecar(initializing("proxy"))],
        vec![initializing("app")],
    );
    assert_eq!(pod_phase(&p), PodPhase::Pending);
    let starting = ContainerObservation {
        started: false,
        ..sidecar(running("proxy"))
    };
    let p = pod(Always, vec![starting], vec![initializing("app")]);
    assert_eq!(pod_phase(&p), PodPhase::Pending);
    assert_eq!(condition(&status_of(&p), "Initialized").status, "False");
}

#[test]
fn started_sidecar_initializes_the_pod() {
    let p = pod(
        Always,
        vec![exited("setup", 0), sidecar(running("proxy"))],
        vec![initializing("app")],
    );
    let s = status_of(&p);
    assert_eq!(condition(&s, "Initialized").status, "True");
    assert_eq!(s.phase.as_deref(), Some("Pending"));
}

#[test]
fn sidecar_and_app_running_is_running_and_ready() {
    let p = pod(Never, vec![sidecar(running("proxy"))], vec![running("app")]);
    let s = status_of(&p);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "ContainersReady").status, "True");
    let proxy = init_status(&p);
    assert!(proxy.ready);
    assert_eq!(proxy.started, Some(true));
}

#[test]
fn unready_sidecar_makes_the_pod_unready() {
    let unready = ContainerObservation {
        ready: false,
        ..sidecar(running("proxy"))
    };
    let p = pod(Always, vec![unready], vec![running("app")]);
    let s = status_of(&p);
    let ready = condition(&s, "ContainersReady");
    assert_eq!(ready.status, "False");
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [proxy]")
    );
    assert!(!init_status(&p).ready);
}

#[test]
fn running_sidecar_keeps_a_finished_pod_running() {
    let p = pod(
        Never,
        vec![sidecar(running("proxy"))],
        vec![exited("app", 0)],
    );
    assert_eq!(pod_phase(&p), PodPhase::Running);
}

#[test]
fn stopped_sidecar_does_not_count_for_completion() {
    for policy in [Never, OnFailure] {
        let p = pod(
            policy,
            vec![sidecar(killed("proxy", 15))],
            vec![exited("app", 0)],
        );
        assert_eq!(pod_phase(&p), PodPhase::Succeeded, "{policy:?}");
    }
    let p = pod(
        Never,
        vec![sidecar(exited("proxy", 0))],
        vec![exited("app", 3)],
    );
    assert_eq!(pod_phase(&p), PodPhase::Failed);
}

#[test]
fn restarting_sidecar_leaves_the_pod_running_and_initialized() {
    let p = pod(
        Always,
        vec![sidecar(backing_off("proxy", 1))],
        vec![running("app")],
    );
    let s = status_of(&p);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Initialized").status, "True");
    assert_eq!(condition(&s, "ContainersReady").status, "False");
}
