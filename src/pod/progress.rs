//! What the reconciler reports about pods as it works on them: statuses, removals,
//! events and the first sync. The vocabulary shared by the passes that produce it, the
//! bounded channel that carries it and the agent that forwards it. Layer 4.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

/// What the reconciler tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Every source sent its first set and every pod had its first pass (for `READY=1`).
    /// A pass that failed counts too: it is retried on its back-off, and one pod that
    /// cannot be converged must not keep systemk from becoming ready.
    Synced,
    /// A pass computed this pod's status.
    Status(Arc<Pod>),
    /// A pod is gone: its units and directory are removed.
    Removed {
        /// The pod's UID.
        uid: String,
    },
    /// Something happened to a pod worth an Event (`kubectl describe pod`).
    Event {
        /// The pod it happened to.
        pod: Arc<Pod>,
        /// CamelCase reason, the kubelet's where one exists (`Pulling`, `Started`, ...).
        reason: &'static str,
        /// What happened, for people.
        message: String,
        /// Normal or Warning.
        type_: EventKind,
    },
}

/// Severity of a [`Progress::Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Part of normal operation.
    Normal,
    /// Something failed or waits.
    Warning,
}
