use k8s_openapi::api::core::v1::Probe;
use serde_json::json;

use super::*;
use crate::pod::probe::plan::plan;

fn verdict(kind: Kind, extra: serde_json::Value) -> Verdict {
    let mut spec = json!({"tcpSocket": {"port": 80}});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let probe: Probe = serde_json::from_value(spec).unwrap();
    Verdict::new(&plan(kind, &probe, &[]).unwrap())
}

fn running(seconds: u64, started: bool) -> Seen {
    Seen {
        running_for: Some(Duration::from_secs(seconds)),
        started,
    }
}

#[test]
fn readiness_is_false_until_the_first_success_then_follows_the_thresholds() {
    let mut v = verdict(
        Kind::Readiness,
        json!({"successThreshold": 2, "failureThreshold": 2}),
    );
    assert_eq!(v.reported(), Some(false));
    assert_eq!(v.record(true), Change::None);
    assert_eq!(v.record(true), Change::Became(true));
    assert_eq!(v.record(true), Change::None);
    assert_eq!(v.record(false), Change::None);
    assert_eq!(
        v.record(true),
        Change::None,
        "a success breaks the failure run"
    );
    assert_eq!(v.record(false), Change::None);
    assert_eq!(v.record(false), Change::Became(false));
    assert_eq!(v.reported(), Some(false));
}

#[test]
fn initial_delay_and_startup_gate_the_attempts() {
    let mut v = verdict(Kind::Readiness, json!({"initialDelaySeconds": 5}));
    assert_eq!(v.due(running(4, true)), (false, Change::None));
    assert_eq!(v.due(running(5, true)), (true, Change::None));
    assert!(
        !v.due(running(10, false)).0,
        "readiness waits for the startup probe"
    );
    let mut startup = verdict(Kind::Startup, json!({}));
    assert_eq!(startup.reported(), None);
    assert!(startup.due(running(0, false)).0);
    assert!(
        !startup.due(running(0, true)).0,
        "a started container is not probed again"
    );
    let mut liveness = verdict(Kind::Liveness, json!({}));
    assert!(!liveness.due(running(100, false)).0);
    assert_eq!(liveness.reported(), Some(true));
}

#[test]
fn a_stopped_container_is_unready() {
    let mut v = verdict(Kind::Readiness, json!({}));
    assert_eq!(v.record(true), Change::Became(true));
    let stopped = Seen {
        running_for: None,
        started: true,
    };
    assert_eq!(v.due(stopped), (false, Change::Became(false)));
    assert_eq!(v.due(stopped), (false, Change::None));
}

#[test]
fn liveness_failure_kills_once_and_holds_until_the_restart() {
    let mut v = verdict(Kind::Liveness, json!({}));
    assert_eq!(v.record(false), Change::None);
    assert_eq!(v.record(false), Change::None);
    assert_eq!(v.record(false), Change::Kill);
    assert!(
        !v.due(running(100, true)).0,
        "on hold until the container runs again"
    );
    v.restarted();
    assert_eq!(v.reported(), Some(true));
    assert!(v.due(running(0, true)).0);
    assert_eq!(
        v.record(false),
        Change::None,
        "the failure run starts again"
    );
}

#[test]
fn startup_success_reports_started_and_failure_kills() {
    let mut v = verdict(Kind::Startup, json!({"failureThreshold": 1}));
    assert_eq!(v.record(true), Change::Became(true));
    let mut failing = verdict(Kind::Startup, json!({"failureThreshold": 1}));
    assert_eq!(failing.record(false), Change::Kill);
    assert_eq!(failing.reported(), Some(false));
}
