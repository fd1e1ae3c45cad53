//! The one error type of the `package` layer. Every variant says what failed and carries
//! the data needed to act on it; `reason()` feeds pod status and events, `is_transient()`
//! decides whether retrying can help. Layer 1: knows nothing of pods or units.

use std::path::PathBuf;

/// Bytes of an external program's stderr kept in an error: enough for apt's last
/// messages, small enough for a pod status message.
pub const STDERR_TAIL_BYTES: usize = 4096;

/// Bytes of apt-get's stdout kept in an error, for its dependency problem report.
pub const STDOUT_TAIL_BYTES: usize = 2048;

/// Result of the `package` layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong turning an image reference into an installed package.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image reference is not one of the accepted forms.
    #[error("invalid image {image:?}: {why}")]
    InvalidImage {
        /// The reference as given.
        image: String,
        /// What is wrong and what is accepted.
        why: String,
    },
    /// apt knows no such package (or no such version) in lists no older than
    /// `--apt-lists-max-age`.
    #[error("package {package}{} not found in the apt sources (whose lists are refreshed when older than --apt-lists-max-age)", version.as_deref().map(|v| format!(" version {v}")).unwrap_or_default())]
    PackageNotFound {
        /// The package name.
        package: String,
        /// The pinned version, if any.
        version: Option<String>,
    },
    /// `apt-get` (install or update) ran and failed.
    #[error("installing {package} failed: {stderr}{}", if stdout.is_empty() { String::new() } else { format!("; apt-get output ends: {stdout}") })]
    InstallFailed {
        /// The package (or `.deb` file) being installed.
        package: String,
        /// The last bytes of apt-get's stderr.
        stderr: String,
        /// The last bytes of apt-get's stdout, where apt explains unmet dependencies.
        stdout: String,
    },
    /// `dpkg-query` or `apt-cache` failed in a way that is not "not found".
    #[error("querying {package} with {program} failed: {stderr}")]
    QueryFailed {
        /// The package asked about.
        package: String,
        /// The program that failed.
        program: &'static str,
        /// The last bytes of its stderr.
        stderr: String,
    },
    /// An external program could not be started at all.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: &'static str,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },
    /// The HTTPS client could not be built (bad extra CA certificate, no TLS provider).
    #[error("cannot set up the HTTPS client: {why}")]
    HttpsClient {
        /// What was wrong.
        why: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// Downloading a `.deb` failed on the network or in TLS.
    #[error("downloading {url} failed")]
    DownloadFailed {
        /// The URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success HTTP status.
    #[error("downloading {url} failed: HTTP status {status}")]
    DownloadStatus {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The server sent more than systemk accepts for one `.deb`.
    #[error("downloading {url} stopped: larger than {limit} bytes")]
    DownloadTooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The downloaded file does not have the pinned sha256.
    #[error("{url} has sha256 {actual}, but the image pins {expected}")]
    DigestMismatch {
        /// The URL.
        url: String,
        /// The pinned digest.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// The `.deb` contains another package than its file name says.
    #[error("{url} contains package {found:?}, but its file name says {expected:?}")]
    PackageNameMismatch {
        /// The URL.
        url: String,
        /// The name cut from the file name.
        expected: String,
        /// The `Package:` field of the control file.
        found: String,
    },
    /// The file is not a readable Debian binary package.
    #[error("{path} is not a valid .deb: {why}")]
    InvalidDeb {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A path image that does not exist or is not an executable regular file.
    #[error("{path} is not an executable file: {why}")]
    NotExecutable {
        /// The path from the image reference.
        path: PathBuf,
        /// What was found instead.
        why: String,
    },
    /// The package ships several service units and the pod did not say which one to use.
    #[error("package {package} ships several service units ({}); name one with the pod annotation {annotation}<container>", candidates.join(", "))]
    AmbiguousVendorUnit {
        /// The package.
        package: String,
        /// Its service units and the packages (of the same source) shipping them,
        /// `name (package)`.
        candidates: Vec<String>,
        /// The annotation prefix to set.
        annotation: &'static str,
    },
    /// The pod named a vendor unit that neither the package nor the packages searched with
    /// it ship.
    #[error("no package searched for image package {package} ships the service unit {wanted:?}; they ship: {}", if candidates.is_empty() { "none".to_owned() } else { candidates.join(", ") })]
    NoSuchVendorUnit {
        /// The package.
        package: String,
        /// The unit the pod asked for.
        wanted: String,
        /// The units it and the other searched packages ship, `name (package)`.
        candidates: Vec<String>,
    },
    /// The only unit is a template (or the pod named the template itself): an instance
    /// must be named.
    #[error("{template} of package {package} is a template unit: name an instance with the pod annotation {annotation}<container>: {}@<instance>.service; {}", template.trim_end_matches("@.service"), if instances.is_empty() { "the package shows no existing instance".to_owned() } else { format!("existing instances: {}", instances.join(", ")) })]
    TemplateNeedsInstance {
        /// The template's file name, e.g. `postgresql@.service`.
        template: String,
        /// The package that ships it.
        package: String,
        /// The annotation prefix to set.
        annotation: &'static str,
        /// Instances that exist, as unit names (from the template's condition paths).
        instances: Vec<String>,
    },
    /// The pod's vendor-unit annotation is no acceptable unit name.
    #[error("vendor unit annotation {wanted:?} is not a valid unit name: {why}")]
    InvalidVendorUnitName {
        /// The annotation value.
        wanted: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// The node's image policy does not allow this image.
    #[error("image {image:?} refused by the node option {option}: {why}")]
    ImageRefused {
        /// The image as the pod wrote it.
        image: String,
        /// The node option (flag and variable) that refuses it.
        option: &'static str,
        /// Why.
        why: String,
    },
    /// A path image, or a directory or symlink on its way, that a non-root user could
    /// change: not owned by root, or writable by group or others.
    #[error(
        "path image {image} refused: {offending} {why}; a path image must be owned by root and not writable by group or others along its whole path"
    )]
    UnsafeImagePath {
        /// The path from the image reference.
        image: PathBuf,
        /// The file, directory or symlink that fails the check.
        offending: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// `imagePullPolicy` is none of Always, IfNotPresent, Never.
    #[error("imagePullPolicy {value:?} is not supported: expected Always, IfNotPresent or Never")]
    InvalidPullPolicy {
        /// The value as given.
        value: String,
    },
    /// `imagePullPolicy: Never` and the image is not present (the kubelet's message).
    #[error("Container image {image:?} is not present with pull policy of Never")]
    NeverPull {
        /// The image as the pod wrote it.
        image: String,
    },
    /// Another holder (a pod) uses another version of the package: one host has one
    /// version of a package, and systemk does not change it under a pod that uses it.
    #[error(
        "package {package} version {wanted} cannot be installed: pod {holder} uses version {held}{}; one host holds one version of a package",
        if *downgrade { " and it would be a downgrade under it" } else { "" }
    )]
    VersionHeld {
        /// The package.
        package: String,
        /// The version this image asks for.
        wanted: String,
        /// How the holder of the other version is named (`namespace/name`).
        holder: String,
        /// The version it holds.
        held: String,
        /// The holder has no pin; only the downgrade under it is refused.
        downgrade: bool,
    },
    /// Another program held the dpkg frontend lock for too long.
    #[error("the dpkg frontend lock {path} stayed held by another program for {waited_secs} s")]
    DpkgLocked {
        /// The lock file.
        path: PathBuf,
        /// How long systemk waited.
        waited_secs: u64,
    },
    /// `apt-get remove` of a package garbage collection chose failed.
    #[error("removing {package} failed: {stderr}{}", if stdout.is_empty() { String::new() } else { format!("; apt-get output ends: {stdout}") })]
    RemoveFailed {
        /// The package being removed.
        package: String,
        /// The last bytes of apt-get's stderr.
        stderr: String,
        /// The last bytes of apt-get's stdout.
        stdout: String,
    },
    /// A local file operation failed.
    #[error("{action} {path} failed")]
    Io {
        /// What was being done, e.g. "writing".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking helper task died (panicked or was cancelled).
    #[error("background task for {what} did not finish")]
    TaskFailed {
        /// What the task was doing.
        what: &'static str,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// A CamelCase reason for pod status and events. Image problems use the kubelet's own
    /// reasons so that tools that know the kubelet understand them.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidImage { .. } => "InvalidImageName",
            Self::PackageNotFound { .. }
            | Self::InstallFailed { .. }
            | Self::DownloadFailed { .. }
            | Self::DownloadStatus { .. }
            | Self::DownloadTooLarge { .. }
            | Self::ImageRefused { .. }
            | Self::UnsafeImagePath { .. }
            | Self::InvalidPullPolicy { .. }
            | Self::VersionHeld { .. }
            | Self::DpkgLocked { .. } => "ErrImagePull",
            Self::NeverPull { .. } => "ErrImageNeverPull",
            Self::DigestMismatch { .. } => "ImageDigestMismatch",
            Self::PackageNameMismatch { .. } | Self::InvalidDeb { .. } => "InvalidImagePackage",
            Self::NotExecutable { .. } => "ImageNotExecutable",
            Self::AmbiguousVendorUnit { .. } => "AmbiguousVendorUnit",
            Self::NoSuchVendorUnit { .. } => "NoSuchVendorUnit",
            Self::TemplateNeedsInstance { .. } => "TemplateNeedsInstance",
            Self::InvalidVendorUnitName { .. } => "InvalidVendorUnitName",
            Self::QueryFailed { .. }
            | Self::Spawn { .. }
            | Self::HttpsClient { .. }
            | Self::Io { .. }
            | Self::RemoveFailed { .. }
            | Self::TaskFailed { .. } => "PackageManagerError",
        }
    }

    /// Whether the same call may succeed later without the image reference changing:
    /// network, mirror, lock and local I/O trouble. A bad reference, a wrong digest or a
    /// wrong package never heal by themselves.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::DownloadStatus { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            Self::PackageNotFound { .. }
            | Self::InstallFailed { .. }
            | Self::QueryFailed { .. }
            | Self::DownloadFailed { .. }
            | Self::Io { .. }
            | Self::DpkgLocked { .. }
            | Self::RemoveFailed { .. }
            // Heals when the holder goes away or changes its pin.
            | Self::VersionHeld { .. }
            | Self::TaskFailed { .. } => true,
            Self::InvalidImage { .. }
            | Self::Spawn { .. }
            | Self::HttpsClient { .. }
            | Self::DigestMismatch { .. }
            | Self::DownloadTooLarge { .. }
            | Self::PackageNameMismatch { .. }
            | Self::InvalidDeb { .. }
            | Self::NotExecutable { .. }
            | Self::AmbiguousVendorUnit { .. }
            | Self::NoSuchVendorUnit { .. }
            | Self::TemplateNeedsInstance { .. }
            | Self::InvalidVendorUnitName { .. }
            | Self::ImageRefused { .. }
            | Self::InvalidPullPolicy { .. }
            // As the kubelet: nothing installs it, so nothing changes until the pod does.
            | Self::NeverPull { .. }
            | Self::UnsafeImagePath { .. } => false,
        }
    }

    /// An `Io` error for `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_image_is_permanent_with_kubelet_reason() {
        let e = Error::InvalidImage {
            image: "x".into(),
            why: "y".into(),
        };
        assert_eq!(e.reason(), "InvalidImageName");
        assert!(!e.is_transient());
    }

    #[test]
    fn server_errors_are_transient_client_errors_are_not() {
        let status = |status| Error::DownloadStatus {
            url: "u".into(),
            status,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(404).is_transient());
    }

    #[test]
    fn not_found_message_names_the_version() {
        let e = Error::PackageNotFound {
            package: "foo".into(),
            version: Some("1.0".into()),
        };
        assert!(e.to_string().contains("foo version 1.0"), "{e}");
    }

    #[test]
    fn ambiguous_unit_names_the_annotation() {
        let e = Error::AmbiguousVendorUnit {
            package: "p".into(),
            candidates: vec!["a.service".into(), "b.service".into()],
            annotation: "systemk.io/vendor-unit.",
        };
        let text = e.to_string();
        assert!(text.contains("a.service, b.service"), "{text}");
        assert!(
            text.contains("systemk.io/vendor-unit.<container>"),
            "{text}"
        );
    }
}
