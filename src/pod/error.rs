//! Errors of the pod layer (layer 4): illegal restart transitions, pod specs the status
//! mapping cannot read. Pure data; the reconciler decides what to log or report.

use k8s_openapi::jiff::Timestamp;

/// What went wrong in the pod layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}

impl Error {
    /// A CamelCase reason for pod status and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::IllegalTransition { .. } => "IllegalRestartTransition",
            Self::RestartNotDue { .. } => "RestartNotDue",
            Self::InvalidRestartPolicy { .. } => "InvalidRestartPolicy",
            Self::InvalidQuantity { .. } => "InvalidQuantity",
        }
    }

    /// None of these go away by retrying: they are bugs in the caller or invalid specs.
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// Result of the pod layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
