//! The one error type of the `unit` layer. Everything here comes from a pod spec, a
//! vendor unit file or a unit file systemk wrote, never from I/O, so nothing is
//! transient: retrying the same input gives the same error.

use super::name::NameError;

/// What went wrong while parsing, reading or building a unit file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A namespace, pod or container name that cannot become a unit name.
    #[error(transparent)]
    Name(#[from] NameError),

    /// A unit file that does not follow systemd's syntax.
    #[error("unit file line {line}: {why}: {content:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        content: String,
        /// What rule it breaks.
        why: &'static str,
    },

    /// A key or value that cannot be written into a unit file as it is.
    #[error("cannot write {key}={value:?} into a unit file: {why}")]
    UnrenderableEntry {
        /// The directive name.
        key: String,
        /// The value as given.
        value: String,
        /// What rule it breaks.
        why: &'static str,
    },

    /// A string from the pod spec that cannot reach the process at all.
    #[error("{what} {value:?} cannot be passed to a process: {why}")]
    Unpassable {
        /// What the string is, e.g. "argument 2 of container web".
        what: String,
        /// The value as given.
        value: String,
        /// What rule it breaks.
        why: &'static str,
    },

    /// The `[X-Kubernetes]` section of a unit lacks a key systemk always writes.
    #[error("unit has no {key}= in its [X-Kubernetes] section")]
    MissingMeta {
        /// The missing key.
        key: &'static str,
    },

    /// The `[X-Kubernetes]` section of a unit holds a value systemk never writes.
    #[error("[X-Kubernetes] {key}={value:?} is invalid: {why}")]
    InvalidMeta {
        /// The key.
        key: &'static str,
        /// The raw value in the file.
        value: String,
        /// What rule it breaks.
        why: &'static str,
    },
}

/// Result with the unit layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The CamelCase reason shown in pod status and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Name(_) | Self::Unpassable { .. } => "CreateContainerConfigError",
            Self::Syntax { .. } | Self::UnrenderableEntry { .. } => "CreateContainerError",
            Self::MissingMeta { .. } | Self::InvalidMeta { .. } => "InvalidUnitMetadata",
        }
    }

    /// Always false: the unit layer is pure, the same input fails the same way again.
    pub fn is_transient(&self) -> bool {
        false
    }
}
