//! Errors of the pod layer (layer 4): illegal restart transitions, pod specs systemk
//! cannot run, pod directories that cannot be prepared. Each names what failed for which
//! pod so it can become the waiting reason and message in the pod's status.

use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;

/// What went wrong in the pod layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A restart state machine was asked for a transition its current state forbids.
    #[error("container {container:?}: cannot {transition} while {state}")]
    IllegalTransition {
        /// The container whose state machine refused.
        container: String,
        /// The transition asked for, e.g. "record a start".
        transition: &'static str,
        /// The state it was in, e.g. "running".
        state: &'static str,
    },
    /// A container was started before its back-off delay ran out.
    #[error("container {container:?}: started at {started_at} but its restart is due at {due}")]
    RestartNotDue {
        /// The container that started early.
        container: String,
        /// When it was started.
        started_at: Timestamp,
        /// When the back-off allows it to start.
        due: Timestamp,
    },
    /// A pod's `restartPolicy` is none of Always, OnFailure, Never.
    #[error("restartPolicy {value:?} is not one of Always, OnFailure, Never")]
    InvalidRestartPolicy {
        /// The value found in the spec.
        value: String,
    },
    /// A resource quantity in a container's requests or limits cannot be read.
    #[error("container {container:?}: {resource} quantity {value:?} is not a valid quantity")]
    InvalidQuantity {
        /// The container whose resources hold it.
        container: String,
        /// The resource name, e.g. "memory".
        resource: String,
        /// The value found in the spec.
        value: String,
    },
    /// The pod spec asks for something systemk cannot do.
    #[error("invalid pod: {why}")]
    InvalidPod {
        /// What is wrong with it.
        why: String,
    },
    /// A hostPath exists but is not of the `type` the volume asks for.
    #[error("hostPath volume {volume:?}: {path} is not {expected}")]
    HostPathType {
        /// The volume's name.
        volume: String,
        /// The host path.
        path: PathBuf,
        /// What the volume's type requires.
        expected: String,
    },
    /// A container's environment cannot be resolved: a missing configMap, secret or
    /// key, an unsupported field, or a secret value that is not text.
    #[error("container {container:?}: {why}")]
    EnvConfig {
        /// The container whose environment it is.
        container: String,
        /// What is missing or wrong, in the kubelet's words where it has some.
        why: String,
    },
    /// A configMap or secret the environment names could not be read from the API.
    #[error("cannot read {object}: {why}")]
    ObjectLookup {
        /// The object, e.g. "configmap default/settings".
        object: String,
        /// What the API client said.
        why: String,
    },
    /// The image could not be resolved or installed.
    #[error(transparent)]
    Image(#[from] crate::package::Error),
    /// The container cannot become a unit.
    #[error(transparent)]
    Unit(#[from] crate::unit::Error),
    /// systemd refused or failed a request.
    #[error(transparent)]
    Systemd(#[from] crate::systemd::Error),
    /// The package's own unit file cannot be read as a unit.
    #[error("vendor unit {path}")]
    VendorUnit {
        /// The vendor unit file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::unit::Error,
    },
    /// A file or directory of the pod could not be created, read or removed.
    #[error("{path}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A CamelCase reason for pod status and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::IllegalTransition { .. } => "IllegalRestartTransition",
            Self::RestartNotDue { .. } => "RestartNotDue",
            Self::InvalidRestartPolicy { .. } => "InvalidRestartPolicy",
            Self::InvalidQuantity { .. } => "InvalidQuantity",
            Self::InvalidPod { .. }
            | Self::HostPathType { .. }
            | Self::EnvConfig { .. }
            | Self::ObjectLookup { .. } => "CreateContainerConfigError",
            Self::Io { .. } => "CreateContainerError",
            Self::Image(err) => err.reason(),
            Self::Unit(err) => err.reason(),
            Self::VendorUnit { .. } => "CreateContainerConfigError",
            Self::Systemd(err) => err.reason(),
        }
    }

    /// Whether trying again later may succeed without the pod changing: a missing
    /// hostPath, configMap or secret may appear, a full disk may drain, the API may
    /// answer again; bugs and invalid specs stay.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Io { .. }
            | Self::HostPathType { .. }
            | Self::EnvConfig { .. }
            | Self::ObjectLookup { .. } => true,
            Self::Image(err) => err.is_transient(),
            Self::Systemd(err) => err.is_transient(),
            Self::Unit(err) => err.is_transient(),
            Self::IllegalTransition { .. }
            | Self::RestartNotDue { .. }
            | Self::InvalidRestartPolicy { .. }
            | Self::InvalidQuantity { .. }
            | Self::InvalidPod { .. }
            | Self::VendorUnit { .. } => false,
        }
    }

    /// Whether the pass failed because systemd could not be reached over D-Bus.
    pub fn is_systemd_unreachable(&self) -> bool {
        matches!(self, Self::Systemd(err) if err.is_unreachable())
    }
}

/// Result of the pod layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
