//! Errors of the pod layer. Each names what failed for which pod so it can become the
//! waiting reason and message in the pod's status.

use std::path::PathBuf;

/// What went wrong while turning a pod into units.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// A file or directory of the pod could not be created, read or removed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The reason shown in the container's waiting state and in events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidPod { .. } | Self::HostPathType { .. } => "CreateContainerConfigError",
            Self::Io { .. } => "CreateContainerError",
        }
    }

    /// Whether trying again later may succeed without the pod changing.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::HostPathType { .. })
    }
}

/// Results of the pod layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
