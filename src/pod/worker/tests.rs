//! Tests of the worker's pure decisions.

use super::stop::parse_seconds;
use super::*;

fn pod(image: &str) -> Arc<Pod> {
    let container = k8s_openapi::api::core::v1::Container {
        name: "main".into(),
        image: Some(image.into()),
        ..Default::default()
    };
    Arc::new(Pod {
        spec: Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![container],
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

#[test]
fn a_new_pod_is_prepared() {
    assert_eq!(
        prepare_decision(None, None, &pod("a"), at(0)),
        PrepareDecision::Prepare
    );
}

#[test]
fn an_applied_pod_is_not_prepared_again() {
    let applied = pod("a");
    assert_eq!(
        prepare_decision(Some(&pod("a")), None, &applied, at(0)),
        PrepareDecision::UpToDate
    );
    assert_eq!(
        prepare_decision(Some(&pod("a")), None, &pod("b"), at(0)),
        PrepareDecision::Prepare
    );
}

#[test]
fn a_failed_preparation_waits_for_its_retry() {
    let failed = (pod("bad"), at(10));
    assert_eq!(
        prepare_decision(None, Some(&failed), &pod("bad"), at(5)),
        PrepareDecision::RetryAt(at(10))
    );
    assert_eq!(
        prepare_decision(None, Some(&failed), &pod("bad"), at(10)),
        PrepareDecision::Prepare
    );
}

#[test]
fn a_changed_pod_does_not_wait_for_the_failed_ones_retry() {
    let failed = (pod("bad"), at(10));
    assert_eq!(
        prepare_decision(None, Some(&failed), &pod("fixed"), at(5)),
        PrepareDecision::Prepare
    );
}

#[test]
fn a_permanent_failure_stays_failed_until_the_pod_changes() {
    let failed = (pod("bad name"), NEVER);
    assert_eq!(
        prepare_decision(None, Some(&failed), &pod("bad name"), at(1_000_000)),
        PrepareDecision::StayFailed
    );
    assert_eq!(
        prepare_decision(None, Some(&failed), &pod("fixed"), at(5)),
        PrepareDecision::Prepare
    );
}

#[test]
fn a_written_grace_period_is_read_back() {
    assert_eq!(parse_seconds("2s"), Some(Duration::from_secs(2)));
    assert_eq!(parse_seconds("120s"), Some(Duration::from_secs(120)));
}

#[test]
fn other_stop_timeouts_are_not_guessed() {
    for value in ["", "s", "2", "2min", "infinity", "-1s"] {
        assert_eq!(parse_seconds(value), None, "{value:?}");
    }
}
