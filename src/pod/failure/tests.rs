//! Each error variant's waiting reason and retry, the retry schedules, the back-off
//! problem and the events.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::error_chain::repeats_its_source;

use WaitingReason::{
    CreateContainerConfigError as Config, CreateContainerError as Create, ErrImagePull as Pull,
    InvalidImageName as InvalidName,
};

mod cases;

use cases::{io, package_cases, pod_cases, systemd_cases, unit_cases};

#[tokio::test]
async fn every_image_error_has_the_kubelets_reason_and_its_retry() {
    for (err, reason, transient) in package_cases().await {
        let text = format!("{err:?}");
        let failure = Failure::of_prepare(&Error::Image(err));
        assert_eq!(failure, Failure { reason, transient }, "{text}");
    }
}

#[test]
fn every_unit_error_is_a_permanent_config_or_create_error() {
    for (err, reason) in unit_cases() {
        let text = format!("{err:?}");
        let failure = Failure::of_prepare(&Error::Unit(err));
        assert_eq!(
            failure,
            Failure {
                reason,
                transient: false
            },
            "{text}"
        );
    }
}

#[test]
fn every_systemd_error_while_preparing_is_a_create_error() {
    for (err, transient) in systemd_cases() {
        let text = format!("{err:?}");
        let failure = Failure::of_prepare(&Error::Systemd(err));
        assert_eq!(
            failure,
            Failure {
                reason: Create,
                transient
            },
            "{text}"
        );
    }
}

#[test]
fn every_pod_error_has_its_reason_and_retry() {
    for (err, reason, transient) in pod_cases() {
        let text = format!("{err:?}");
        assert_eq!(
            Failure::of_prepare(&err),
            Failure { reason, transient },
            "{text}"
        );
    }
}

#[test]
fn a_refused_start_is_a_run_container_error() {
    let err = Error::Systemd(crate::systemd::Error::JobWatchLost {
        operation: "start",
        unit: "u".into(),
    });
    assert_eq!(
        Failure::of_start(&err),
        Failure {
            reason: WaitingReason::RunContainerError,
            transient: true
        }
    );
}

#[tokio::test]
async fn no_error_message_repeats_its_source() {
    let mut errors: Vec<Box<dyn std::error::Error>> = Vec::new();
    for (err, ..) in package_cases().await {
        errors.push(Box::new(err));
    }
    for (err, _) in unit_cases() {
        errors.push(Box::new(err));
    }
    for (err, _) in systemd_cases() {
        errors.push(Box::new(err));
    }
    for (err, ..) in pod_cases() {
        errors.push(Box::new(err));
    }
    for err in &errors {
        assert!(!repeats_its_source(err.as_ref()), "{err:?} prints {err}");
    }
}

#[test]
fn the_problem_carries_the_whole_cause_chain_once() {
    let err = Error::Systemd(crate::systemd::Error::Io {
        operation: "write unit file",
        path: "/etc/systemd/system/x.service".into(),
        source: io(),
    });
    let problem = Failure::of_prepare(&err).problem(&err);
    assert_eq!(
        problem.message,
        "write unit file /etc/systemd/system/x.service: disk on fire"
    );
    assert_eq!(problem.reason, Create);
    assert!(problem.transient);
}

fn problem(reason: WaitingReason, transient: bool) -> Problem {
    Problem {
        reason,
        message: "apt said no".into(),
        transient,
    }
}

#[test]
fn a_transient_problem_retries_with_a_growing_delay() {
    let problems = [problem(Config, false), problem(Pull, true)];
    let delays: Vec<_> = (1..=7).map(|n| prepare_retry(&problems, n)).collect();
    let secs = |s| Some(Duration::from_secs(s));
    assert_eq!(
        delays,
        [
            secs(10),
            secs(20),
            secs(40),
            secs(80),
            secs(160),
            secs(300),
            secs(300)
        ]
    );
}

#[test]
fn permanent_problems_are_not_retried() {
    let problems = [problem(InvalidName, false), problem(Config, false)];
    assert_eq!(prepare_retry(&problems, 1), None);
    assert_eq!(prepare_retry(&problems, 9), None);
}

#[test]
fn a_failed_pass_retries_only_when_it_may_heal() {
    let transient = Error::Io {
        path: PathBuf::new(),
        source: io(),
    };
    // The reconciler retries a failed pass on `RETRY` only when it may heal.
    assert!(transient.is_transient());
    assert!(!Error::InvalidPod { why: "x".into() }.is_transient());
}

#[test]
fn a_failed_pull_backs_off_keeping_why() {
    let pull = problem(Pull, true);
    assert!(shows_back_off([&pull]));
    let backing = backing_off(&pull, "apt:nope").unwrap();
    assert_eq!(backing.reason, WaitingReason::ImagePullBackOff);
    assert_eq!(
        backing.message,
        "Back-off pulling image \"apt:nope\": ErrImagePull: apt said no"
    );
    // A pull that is never retried, and every other problem, stays as it is.
    assert_eq!(backing_off(&problem(Pull, false), "i"), None);
    assert_eq!(backing_off(&problem(InvalidName, false), "i"), None);
    assert_eq!(backing_off(&backing, "i"), None);
    assert!(!shows_back_off([
        &problem(Pull, false),
        &problem(Config, true)
    ]));
}

#[test]
fn events_follow_the_kubelet() {
    let reasons = |problem: &Problem| -> Vec<(EventKind, &str, String)> {
        failure_events(problem, "apt:nope")
    };
    assert_eq!(
        reasons(&problem(Pull, true)),
        [
            (
                EventKind::Warning,
                "Failed",
                "Failed to pull image \"apt:nope\": apt said no".to_owned()
            ),
            (
                EventKind::Warning,
                "Failed",
                "Error: ErrImagePull".to_owned()
            ),
        ]
    );
    assert_eq!(
        reasons(&problem(InvalidName, false)),
        [
            (
                EventKind::Warning,
                "InspectFailed",
                "Failed to apply default image tag \"apt:nope\": apt said no".to_owned()
            ),
            (
                EventKind::Warning,
                "Failed",
                "Error: InvalidImageName".to_owned()
            ),
        ]
    );
    let backing = backing_off(&problem(Pull, true), "apt:nope").unwrap();
    assert_eq!(
        reasons(&backing),
        [
            (
                EventKind::Normal,
                "BackOff",
                "Back-off pulling image \"apt:nope\"".to_owned()
            ),
            (
                EventKind::Warning,
                "Failed",
                "Error: ImagePullBackOff".to_owned()
            ),
        ]
    );
    let never = Problem {
        reason: WaitingReason::ErrImageNeverPull,
        message: "Container image \"apt:nope\" is not present with pull policy of Never".into(),
        transient: false,
    };
    assert_eq!(
        reasons(&never),
        [
            (
                EventKind::Warning,
                "ErrImageNeverPull",
                "Container image \"apt:nope\" is not present with pull policy of Never".to_owned()
            ),
            (
                EventKind::Warning,
                "Failed",
                "Error: ErrImageNeverPull".to_owned()
            ),
        ]
    );
    assert_eq!(backing_off(&never, "apt:nope"), None, "not retried");
    assert_eq!(
        reasons(&problem(Config, false)),
        [(
            EventKind::Warning,
            "Failed",
            "Error: apt said no".to_owned()
        )]
    );
}
