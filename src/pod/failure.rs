//! What a failure of a container means to the pod: the kubelet's waiting reason it shows,
//! whether retrying can heal it, when the retry comes, and the events that tell of it.
//! Pure: errors and counts in, reasons, delays and event texts out. Layer 4.
//!
//! The kubelet's semantics (pkg/kubelet/images/image_manager.go, kuberuntime_container.go):
//! an unparsable image is `InvalidImageName`; the sync whose pull failed shows
//! `ErrImagePull` (events `Failed` "Failed to pull image …" and `Failed` "Error:
//! ErrImagePull"), the syncs during the pull back-off (10 s doubling to 300 s) show
//! `ImagePullBackOff` with "Back-off pulling image …" (events `BackOff` and `Failed`
//! "Error: ImagePullBackOff"); a container config that cannot be generated (a missing
//! configMap key, a refused field) is `CreateContainerConfigError`, a runtime that
//! cannot create the container `CreateContainerError`, one that cannot start it
//! `RunContainerError`, each with a `Failed` "Error: <message>" event. systemk adds one
//! rule of its own: a failure that cannot heal by itself is not retried at all until the
//! pod's spec, or an object it names, changes.

use std::time::Duration;

use super::EventKind;
use super::error::Error;
use super::status::Problem;
use super::status::WaitingReason;
use crate::backoff::{Backoff, CONTAINER_RESTART, CONTAINER_RESTART_INITIAL};
use crate::error_chain::chain;
use crate::{package, unit};

/// Retries of a failed preparation (the image pull back-off) and of a failed pass: the
/// kubelet's image back-off, 10 s doubling to 300 s (`backOffPeriod`,
/// `MaxImageBackOff`, pkg/kubelet/kubelet.go).
pub const RETRY: Backoff = CONTAINER_RESTART;

/// How long after a failed pull the status turns from `ErrImagePull` to
/// `ImagePullBackOff`. The kubelet shows the first on the sync that pulled and the second
/// on its later syncs during the back-off; systemk passes only on events, so it asks for
/// one pass this long after the failure (half the first retry delay, so both are seen).
pub const BACK_OFF_SHOWN_AFTER: Duration =
    Duration::from_secs(CONTAINER_RESTART_INITIAL.as_secs() / 2);

/// A failure as the pod shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The container's waiting reason.
    pub reason: WaitingReason,
    /// Whether the same attempt may succeed later without the pod changing.
    pub transient: bool,
}

impl Failure {
    /// Preparing a container failed: resolving or installing its image, resolving its
    /// environment, building or writing its unit.
    pub fn of_prepare(err: &Error) -> Self {
        let reason = match err {
            Error::Image(err) => image_reason(err),
            Error::Unit(err) | Error::VendorUnit { source: err, .. } => unit_reason(err),
            Error::InvalidPod { .. }
            | Error::InvalidRestartPolicy { .. }
            | Error::InvalidQuantity { .. }
            | Error::HostPathType { .. }
            | Error::EnvConfig { .. }
            | Error::ObjectLookup { .. } => WaitingReason::CreateContainerConfigError,
            Error::Systemd(_)
            | Error::Io { .. }
            | Error::IllegalTransition { .. }
            | Error::RestartNotDue { .. } => WaitingReason::CreateContainerError,
        };
        Self {
            reason,
            transient: err.is_transient(),
        }
    }

    /// systemd refused to start the container's unit.
    pub fn of_start(err: &Error) -> Self {
        Self {
            reason: WaitingReason::RunContainerError,
            transient: err.is_transient(),
        }
    }

    /// The container's waiting state for this failure: the reason and the whole cause
    /// chain of `err`.
    pub fn problem(self, err: &Error) -> Problem {
        Problem {
            reason: self.reason,
            message: chain(err),
            transient: self.transient,
        }
    }
}

/// The kubelet's reason for a failed image: an unparsable reference is
/// `InvalidImageName`, everything else (not found, refused by policy, a wrong digest, a
/// broken package) `ErrImagePull`.
fn image_reason(err: &package::Error) -> WaitingReason {
    match err {
        package::Error::InvalidImage { .. } => WaitingReason::InvalidImageName,
        package::Error::NeverPull { .. } => WaitingReason::ErrImageNeverPull,
        package::Error::PackageNotFound { .. }
        | package::Error::InstallFailed { .. }
        | package::Error::QueryFailed { .. }
        | package::Error::Spawn { .. }
        | package::Error::HttpsClient { .. }
        | package::Error::DownloadFailed { .. }
        | package::Error::DownloadStatus { .. }
        | package::Error::DownloadTooLarge { .. }
        | package::Error::DigestMismatch { .. }
        | package::Error::PackageNameMismatch { .. }
        | package::Error::InvalidDeb { .. }
        | package::Error::NotExecutable { .. }
        | package::Error::AmbiguousVendorUnit { .. }
        | package::Error::NoSuchVendorUnit { .. }
        | package::Error::TemplateNeedsInstance { .. }
        | package::Error::InvalidVendorUnitName { .. }
        | package::Error::ImageRefused { .. }
        | package::Error::UnsafeImagePath { .. }
        | package::Error::DpkgLocked { .. }
        | package::Error::InvalidPullPolicy { .. }
        | package::Error::VersionHeld { .. }
        | package::Error::Io { .. }
        | package::Error::RemoveFailed { .. }
        | package::Error::TaskFailed { .. } => WaitingReason::ErrImagePull,
    }
}

/// The kubelet's reason for a container that cannot become a unit: what the pod asks
/// for (including a vendor unit it would run that systemk refuses to take over) is a
/// config error; a unit text systemd would not read is the runtime failing to create
/// the container.
fn unit_reason(err: &unit::Error) -> WaitingReason {
    match err {
        unit::Error::Name(_)
        | unit::Error::Unpassable { .. }
        | unit::Error::NoCommand { .. }
        | unit::Error::InvalidCommand { .. }
        | unit::Error::InvalidPath { .. }
        | unit::Error::InvalidVolume { .. }
        | unit::Error::MountTarget { .. }
        | unit::Error::Unsupported { .. }
        | unit::Error::InvalidResource { .. }
        | unit::Error::InvalidIdentity { .. }
        | unit::Error::InvalidVendorUnit { .. } => WaitingReason::CreateContainerConfigError,
        unit::Error::Syntax { .. }
        | unit::Error::UnrenderableEntry { .. }
        | unit::Error::MissingMeta { .. }
        | unit::Error::InvalidMeta { .. } => WaitingReason::CreateContainerError,
    }
}

/// When a preparation that left `problems` is tried again, as its `failures`-th failure
/// in a row (1 for the first): after the back-off while any problem may heal by itself;
/// `None` when none can — it waits for the pod or an object it names to change.
pub fn prepare_retry<'a>(
    problems: impl IntoIterator<Item = &'a Problem>,
    failures: u32,
) -> Option<Duration> {
    problems
        .into_iter()
        .any(|problem| problem.transient)
        .then(|| RETRY.delay(failures.saturating_sub(1)))
}

/// Whether `problems` hold a failed pull that will be retried: its pass is followed by
/// one after [`BACK_OFF_SHOWN_AFTER`] that shows the back-off.
pub fn shows_back_off<'a>(problems: impl IntoIterator<Item = &'a Problem>) -> bool {
    problems
        .into_iter()
        .any(|problem| problem.reason == WaitingReason::ErrImagePull && problem.transient)
}

/// The problem shown while the retry of a failed pull of `image` waits, if `problem` is
/// such a pull: `ImagePullBackOff`, keeping why the last pull failed, as the kubelet's
/// "Back-off pulling image …: ErrImagePull: …".
pub fn backing_off(problem: &Problem, image: &str) -> Option<Problem> {
    (problem.reason == WaitingReason::ErrImagePull && problem.transient).then(|| Problem {
        reason: WaitingReason::ImagePullBackOff,
        message: format!(
            "Back-off pulling image \"{image}\": {}: {}",
            WaitingReason::ErrImagePull.as_str(),
            problem.message
        ),
        transient: true,
    })
}

/// An event to record about a pod: its type, reason and message.
pub type EventText = (EventKind, &'static str, String);

/// The events the kubelet records when a container of `image` fails with `problem`.
pub fn failure_events(problem: &Problem, image: &str) -> Vec<EventText> {
    let error = |text: &str| (EventKind::Warning, "Failed", format!("Error: {text}"));
    match problem.reason {
        WaitingReason::InvalidImageName => vec![
            (
                EventKind::Warning,
                "InspectFailed",
                format!(
                    "Failed to apply default image tag \"{image}\": {}",
                    problem.message
                ),
            ),
            error(problem.reason.as_str()),
        ],
        WaitingReason::ErrImagePull => vec![
            (
                EventKind::Warning,
                "Failed",
                format!("Failed to pull image \"{image}\": {}", problem.message),
            ),
            error(problem.reason.as_str()),
        ],
        // The kubelet's image manager: one Warning event with the reason and its message.
        WaitingReason::ErrImageNeverPull => vec![
            (
                EventKind::Warning,
                "ErrImageNeverPull",
                problem.message.clone(),
            ),
            error(problem.reason.as_str()),
        ],
        WaitingReason::ImagePullBackOff => vec![
            (
                EventKind::Normal,
                "BackOff",
                format!("Back-off pulling image \"{image}\""),
            ),
            error(problem.reason.as_str()),
        ],
        _ => vec![error(&problem.message)],
    }
}

#[cfg(test)]
mod tests;
