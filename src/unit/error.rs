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

    /// A container with nothing to run.
    #[error("container {container} has nothing to run: {why}")]
    NoCommand {
        /// The container name.
        container: String,
        /// Why, and what would fix it.
        why: &'static str,
    },

    /// A container `command[0]` (or `args[0]`) that systemd would not run as meant.
    #[error("container {container}: {field}[0] {binary:?} cannot be run: {why}")]
    InvalidCommand {
        /// The container name.
        container: String,
        /// "command" or "args".
        field: &'static str,
        /// The offending word.
        binary: String,
        /// What rule it breaks.
        why: &'static str,
    },

    /// A vendor unit directive that systemk cannot take over safely.
    #[error("vendor unit {line:?} cannot be used: {why}")]
    InvalidVendorUnit {
        /// The vendor's line(s), `Key=value`.
        line: String,
        /// What rule it breaks.
        why: &'static str,
    },

    /// A path from the pod spec or the configuration that cannot be used safely.
    #[error("{what} {path:?} cannot be used: {why}")]
    InvalidPath {
        /// Which path, e.g. "mountPath of volume data".
        what: String,
        /// The path as given.
        path: String,
        /// What rule it breaks.
        why: &'static str,
    },

    /// A volume or volume mount that cannot be set up.
    #[error("volume {volume:?}: {why}")]
    InvalidVolume {
        /// The volume name.
        volume: String,
        /// What is wrong.
        why: String,
    },

    /// A mount target that systemd would have to create, or could not bind, on the
    /// host (see `mount_target.rs`).
    #[error("volume {volume:?} cannot be mounted at {target}: {why}")]
    MountTarget {
        /// The volume name.
        volume: String,
        /// The normalised `mountPath`.
        target: String,
        /// Why, naming the host path involved.
        why: String,
    },

    /// A pod feature systemk does not implement (yet).
    #[error("{what} is not supported yet")]
    Unsupported {
        /// The feature, naming the pod field, e.g. "env FOO with valueFrom".
        what: String,
    },

    /// A resource request or limit that cannot be applied.
    #[error("resources.{field}.{resource} = {value:?}: {why}")]
    InvalidResource {
        /// "limits" or "requests".
        field: &'static str,
        /// The resource name, e.g. "memory".
        resource: String,
        /// The quantity as given.
        value: String,
        /// What is wrong.
        why: String,
    },

    /// The user or group the pod asks for cannot be resolved.
    #[error("container {container}: {why}")]
    InvalidIdentity {
        /// The container name.
        container: String,
        /// What is wrong, naming the user or id.
        why: String,
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
            Self::Name(_)
            | Self::Unpassable { .. }
            | Self::NoCommand { .. }
            | Self::InvalidCommand { .. }
            | Self::InvalidPath { .. }
            | Self::InvalidVolume { .. }
            | Self::MountTarget { .. }
            | Self::Unsupported { .. }
            | Self::InvalidResource { .. }
            | Self::InvalidIdentity { .. }
            | Self::InvalidVendorUnit { .. } => "CreateContainerConfigError",
            Self::Syntax { .. } | Self::UnrenderableEntry { .. } => "CreateContainerError",
            Self::MissingMeta { .. } | Self::InvalidMeta { .. } => "InvalidUnitMetadata",
        }
    }

    /// Always false: the unit layer is pure, the same input fails the same way again.
    pub fn is_transient(&self) -> bool {
        false
    }
}
