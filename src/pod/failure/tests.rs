//! Each error variant's waiting reason and retry, the retry schedules, the back-off
//! problem and the events.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::error_chain::repeats_its_source;
use crate::unit::NameError;

use WaitingReason::{
    CreateContainerConfigError as Config, CreateContainerError as Create, ErrImagePull as Pull,
    InvalidImageName as InvalidName,
};

fn io() -> std::io::Error {
    std::io::Error::other("disk on fire")
}

fn reqwest_error() -> reqwest::Error {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
        .get("not a url")
        .build()
        .expect_err("an invalid URL is refused")
}

async fn join_error() -> tokio::task::JoinError {
    let task = tokio::spawn(std::future::pending::<()>());
    task.abort();
    task.await.expect_err("an aborted task fails")
}

/// Every variant of the package layer, with the reason and retry it must get.
async fn package_cases() -> Vec<(package::Error, WaitingReason, bool)> {
    use package::Error as P;
    let s = String::new;
    vec![
        (
            P::InvalidImage {
                image: s(),
                why: s(),
            },
            InvalidName,
            false,
        ),
        (
            P::PackageNotFound {
                package: s(),
                version: None,
            },
            Pull,
            true,
        ),
        (
            P::InstallFailed {
                package: s(),
                stderr: s(),
                stdout: s(),
            },
            Pull,
            true,
        ),
        (
            P::QueryFailed {
                package: s(),
                program: "dpkg-query",
                stderr: s(),
            },
            Pull,
            true,
        ),
        (
            P::Spawn {
                program: "apt-get",
                source: io(),
            },
            Pull,
            false,
        ),
        (
            P::HttpsClient {
                why: s(),
                source: reqwest_error(),
            },
            Pull,
            false,
        ),
        (
            P::DownloadFailed {
                url: s(),
                source: reqwest_error(),
            },
            Pull,
            true,
        ),
        (
            P::DownloadStatus {
                url: s(),
                status: 503,
            },
            Pull,
            true,
        ),
        (
            P::DownloadStatus {
                url: s(),
                status: 404,
            },
            Pull,
            false,
        ),
        (P::DownloadTooLarge { url: s(), limit: 1 }, Pull, false),
        (
            P::DigestMismatch {
                url: s(),
                expected: s(),
                actual: s(),
            },
            Pull,
            false,
        ),
        (
            P::PackageNameMismatch {
                url: s(),
                expected: s(),
                found: s(),
            },
            Pull,
            false,
        ),
        (
            P::InvalidDeb {
                path: PathBuf::new(),
                why: s(),
            },
            Pull,
            false,
        ),
        (
            P::NotExecutable {
                path: PathBuf::new(),
                why: s(),
            },
            Pull,
            false,
        ),
        (
            P::AmbiguousVendorUnit {
                package: s(),
                candidates: vec![],
                annotation: "a",
            },
            Pull,
            false,
        ),
        (
            P::NoSuchVendorUnit {
                package: s(),
                wanted: s(),
                candidates: vec![],
            },
            Pull,
            false,
        ),
        (
            P::ImageRefused {
                image: s(),
                option: "o",
                why: s(),
            },
            Pull,
            false,
        ),
        (
            P::UnsafeImagePath {
                image: PathBuf::new(),
                offending: PathBuf::new(),
                why: s(),
            },
            Pull,
            false,
        ),
        (
            P::DpkgLocked {
                path: PathBuf::new(),
                waited_secs: 1,
            },
            Pull,
            true,
        ),
        (
            P::Io {
                action: "writing",
                path: PathBuf::new(),
                source: io(),
            },
            Pull,
            true,
        ),
        (
            P::TaskFailed {
                what: "dpkg",
                source: join_error().await,
            },
            Pull,
            true,
        ),
    ]
}

/// Every variant of the unit layer: pure, so never transient.
fn unit_cases() -> Vec<(unit::Error, WaitingReason)> {
    use unit::Error as U;
    let s = String::new;
    let name = NameError::InvalidUnitName {
        name: s(),
        why: "w",
    };
    vec![
        (U::Name(name), Config),
        (
            U::Syntax {
                line: 1,
                content: s(),
                why: "w",
            },
            Create,
        ),
        (
            U::UnrenderableEntry {
                key: s(),
                value: s(),
                why: "w",
            },
            Create,
        ),
        (
            U::Unpassable {
                what: s(),
                value: s(),
                why: "w",
            },
            Config,
        ),
        (
            U::NoCommand {
                container: s(),
                why: "w",
            },
            Config,
        ),
        (
            U::InvalidCommand {
                container: s(),
                field: "command",
                binary: s(),
                why: "w",
            },
            Config,
        ),
        (
            U::InvalidVendorUnit {
                line: s(),
                why: "w",
            },
            Config,
        ),
        (
            U::InvalidPath {
                what: s(),
                path: s(),
                why: "w",
            },
            Config,
        ),
        (
            U::InvalidVolume {
                volume: s(),
                why: s(),
            },
            Config,
        ),
        (
            U::MountTarget {
                volume: s(),
                target: s(),
                why: s(),
            },
            Config,
        ),
        (U::Unsupported { what: s() }, Config),
        (
            U::InvalidResource {
                field: "limits",
                resource: s(),
                value: s(),
                why: s(),
            },
            Config,
        ),
        (
            U::InvalidIdentity {
                container: s(),
                why: s(),
            },
            Config,
        ),
        (U::MissingMeta { key: "Id" }, Create),
        (
            U::InvalidMeta {
                key: "Id",
                value: s(),
                why: "w",
            },
            Create,
        ),
    ]
}

/// Every variant of the systemd layer: creating the container failed.
fn systemd_cases() -> Vec<(crate::systemd::Error, bool)> {
    use crate::systemd::Error as S;
    let s = String::new;
    let call = |name: &str| S::Call {
        operation: "StartUnit",
        unit: s(),
        name: name.into(),
        message: s(),
    };
    vec![
        (call("org.freedesktop.DBus.Error.NoReply"), true),
        (call("org.freedesktop.systemd1.NoSuchUnit"), false),
        (
            S::Bus {
                operation: "connect",
                unit: s(),
                message: s(),
            },
            true,
        ),
        (
            S::MissingProperty {
                unit: s(),
                property: "MainPID",
            },
            false,
        ),
        (
            S::JobWatchLost {
                operation: "stop",
                unit: s(),
            },
            true,
        ),
        (
            S::StopTimedOut {
                unit: s(),
                waited: Duration::from_secs(1),
            },
            true,
        ),
        (
            S::Io {
                operation: "write unit file",
                path: PathBuf::new(),
                source: io(),
            },
            true,
        ),
        (
            S::UnitFile {
                path: PathBuf::new(),
                source: unit::Error::MissingMeta { key: "Id" },
            },
            false,
        ),
        (
            S::InvalidUnitName {
                name: s(),
                why: "w",
            },
            false,
        ),
    ]
}

/// The pod layer's own variants.
fn pod_cases() -> Vec<(Error, WaitingReason, bool)> {
    let s = String::new;
    vec![
        (
            Error::IllegalTransition {
                container: s(),
                transition: "t",
                state: "s",
            },
            Create,
            false,
        ),
        (
            Error::RestartNotDue {
                container: s(),
                started_at: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                due: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            },
            Create,
            false,
        ),
        (Error::InvalidRestartPolicy { value: s() }, Config, false),
        (
            Error::InvalidQuantity {
                container: s(),
                resource: s(),
                value: s(),
            },
            Config,
            false,
        ),
        (Error::InvalidPod { why: s() }, Config, false),
        (
            Error::HostPathType {
                volume: s(),
                path: PathBuf::new(),
                expected: s(),
            },
            Config,
            true,
        ),
        (
            Error::EnvConfig {
                container: s(),
                why: s(),
            },
            Config,
            true,
        ),
        (
            Error::ObjectLookup {
                object: s(),
                why: s(),
            },
            Config,
            true,
        ),
        (
            Error::VendorUnit {
                path: PathBuf::new(),
                source: unit::Error::MissingMeta { key: "Id" },
            },
            Create,
            false,
        ),
        (
            Error::VendorUnit {
                path: PathBuf::new(),
                source: unit::Error::InvalidVendorUnit {
                    line: "ExecStartPre=+/bin/true".into(),
                    why: "w",
                },
            },
            Config,
            false,
        ),
        (
            Error::Io {
                path: PathBuf::new(),
                source: io(),
            },
            Create,
            true,
        ),
    ]
}

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
    assert_eq!(pass_retry(&transient, 1), Some(Duration::from_secs(10)));
    assert_eq!(pass_retry(&transient, 3), Some(Duration::from_secs(40)));
    assert_eq!(pass_retry(&Error::InvalidPod { why: "x".into() }, 1), None);
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
    assert_eq!(
        reasons(&problem(Config, false)),
        [(
            EventKind::Warning,
            "Failed",
            "Error: apt said no".to_owned()
        )]
    );
}
