//! One value of every error variant of the layers below the pod, and of the pod layer,
//! with the waiting reason and retry each must get. Kept as tables, one line a variant.

use std::path::PathBuf;
use std::time::Duration;

use super::super::*;
use crate::unit::NameError;

use WaitingReason::{
    CreateContainerConfigError as Config, CreateContainerError as Create, ErrImagePull as Pull,
    InvalidImageName as InvalidName,
};

pub(super) fn io() -> std::io::Error {
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
#[rustfmt::skip]
pub(super) async fn package_cases() -> Vec<(package::Error, WaitingReason, bool)> {
    use package::Error as P;
    let s = String::new;
    vec![
        (P::InvalidImage { image: s(), why: s() }, InvalidName, false),
        (P::PackageNotFound { package: s(), version: None }, Pull, true),
        (P::InstallFailed { package: s(), stderr: s(), stdout: s() }, Pull, true),
        (P::QueryFailed { package: s(), program: "dpkg-query", stderr: s() }, Pull, true),
        (P::Spawn { program: "apt-get", source: io() }, Pull, false),
        (P::HttpsClient { why: s(), source: reqwest_error() }, Pull, false),
        (P::DownloadFailed { url: s(), source: reqwest_error() }, Pull, true),
        (P::DownloadStatus { url: s(), status: 503 }, Pull, true),
        (P::DownloadStatus { url: s(), status: 404 }, Pull, false),
        (P::DownloadTooLarge { url: s(), limit: 1 }, Pull, false),
        (P::DigestMismatch { url: s(), expected: s(), actual: s() }, Pull, false),
        (P::PackageNameMismatch { url: s(), expected: s(), found: s() }, Pull, false),
        (P::InvalidDeb { path: PathBuf::new(), why: s() }, Pull, false),
        (P::NotExecutable { path: PathBuf::new(), why: s() }, Pull, false),
        (P::AmbiguousVendorUnit { package: s(), candidates: vec![], annotation: "a" }, Pull, false),
        (P::NoSuchVendorUnit { package: s(), wanted: s(), candidates: vec![] }, Pull, false),
        (P::TemplateNeedsInstance { template: s(), package: s(), annotation: "a", instances: vec![] }, Pull, false),
        (P::InvalidVendorUnitName { wanted: s(), why: "w" }, Pull, false),
        (P::ImageRefused { image: s(), option: "o", why: s() }, Pull, false),
        (P::UnsafeImagePath { image: PathBuf::new(), offending: PathBuf::new(), why: s() }, Pull, false),
        (P::DpkgLocked { path: PathBuf::new(), waited_secs: 1 }, Pull, true),
        (P::InvalidPullPolicy { value: s() }, Pull, false),
        (P::NeverPull { image: s() }, WaitingReason::ErrImageNeverPull, false),
        (P::VersionHeld { package: s(), wanted: s(), holder: s(), held: s(), downgrade: false }, Pull, true),
        (P::Io { action: "writing", path: PathBuf::new(), source: io() }, Pull, true),
        (P::TaskFailed { what: "dpkg", source: join_error().await }, Pull, true),
    ]
}

/// Every variant of the unit layer: pure, so never transient.
#[rustfmt::skip]
pub(super) fn unit_cases() -> Vec<(unit::Error, WaitingReason)> {
    use unit::Error as U;
    let s = String::new;
    let name = NameError::InvalidUnitName { name: s(), why: "w" };
    vec![
        (U::Name(name), Config),
        (U::Syntax { line: 1, content: s(), why: "w" }, Create),
        (U::UnrenderableEntry { key: s(), value: s(), why: "w" }, Create),
        (U::Unpassable { what: s(), value: s(), why: "w" }, Config),
        (U::NoCommand { container: s(), why: "w" }, Config),
        (U::InvalidCommand { container: s(), field: "command", binary: s(), why: "w" }, Config),
        (U::InvalidVendorUnit { line: s(), why: "w" }, Config),
        (U::InvalidPath { what: s(), path: s(), why: "w" }, Config),
        (U::InvalidVolume { volume: s(), why: s() }, Config),
        (U::MountTarget { volume: s(), target: s(), why: s() }, Config),
        (U::Unsupported { what: s() }, Config),
        (U::InvalidResource { field: "limits", resource: s(), value: s(), why: s() }, Config),
        (U::InvalidIdentity { container: s(), why: s() }, Config),
        (U::MissingMeta { key: "Id" }, Create),
        (U::InvalidMeta { key: "Id", value: s(), why: "w" }, Create),
    ]
}

/// Every variant of the systemd layer, with its retry: creating the container failed.
#[rustfmt::skip]
pub(super) fn systemd_cases() -> Vec<(crate::systemd::Error, bool)> {
    use crate::systemd::Error as S;
    let s = String::new;
    let call = |name: &str| S::Call { operation: "StartUnit", unit: s(), name: name.into(), message: s() };
    vec![
        (call("org.freedesktop.DBus.Error.NoReply"), true),
        (call("org.freedesktop.systemd1.NoSuchUnit"), false),
        (S::Bus { operation: "connect", unit: s(), message: s() }, true),
        (S::MissingProperty { unit: s(), property: "MainPID" }, false),
        (S::JobWatchLost { operation: "stop", unit: s() }, true),
        (S::StopTimedOut { unit: s(), waited: Duration::from_secs(1) }, true),
        (S::Io { operation: "write unit file", path: PathBuf::new(), source: io() }, true),
        (S::UnitFile { path: PathBuf::new(), source: unit::Error::MissingMeta { key: "Id" } }, false),
        (S::InvalidUnitName { name: s(), why: "w" }, false),
    ]
}

/// The pod layer's own variants; a vendor unit's reason follows the unit error in it.
#[rustfmt::skip]
pub(super) fn pod_cases() -> Vec<(Error, WaitingReason, bool)> {
    use k8s_openapi::jiff::Timestamp;
    let s = String::new;
    let vendor = |source| Error::VendorUnit { path: PathBuf::new(), source };
    vec![
        (Error::IllegalTransition { container: s(), transition: "t", state: "s" }, Create, false),
        (Error::RestartNotDue { container: s(), started_at: Timestamp::UNIX_EPOCH, due: Timestamp::UNIX_EPOCH }, Create, false),
        (Error::InvalidRestartPolicy { value: s() }, Config, false),
        (Error::InvalidQuantity { container: s(), resource: s(), value: s() }, Config, false),
        (Error::InvalidPod { why: s() }, Config, false),
        (Error::HostPathType { volume: s(), path: PathBuf::new(), expected: s() }, Config, true),
        (Error::EnvConfig { container: s(), why: s() }, Config, true),
        (Error::ObjectLookup { object: s(), why: s() }, Config, true),
        (vendor(unit::Error::MissingMeta { key: "Id" }), Create, false),
        (vendor(unit::Error::InvalidVendorUnit { line: "ExecStartPre=+/bin/true".into(), why: "w" }), Config, false),
        (Error::Io { path: PathBuf::new(), source: io() }, Create, true),
    ]
}
