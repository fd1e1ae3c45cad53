//! Layer 5: sources of desired pods — static manifests ([`manifests`]) and the Kubernetes API
//! ([`kube`]) — and the one interface through which every source feeds the reconciler.
//!
//! # The source contract
//!
//! A source runs as its own task and sends [`SourceUpdate`]s over a
//! `tokio::sync::mpsc::Sender<SourceUpdate>`. Each update is the **complete** desired set of
//! that source at that moment (level-triggered, like a kubelet `SET`), never a delta, so a
//! lost or coalesced update can never leave a pod behind:
//!
//! - the first update is sent as soon as the source knows its initial set, even when it is
//!   empty: until a source has sent one, the reconciler must not remove units of pods that
//!   may belong to it ([`DesiredPods::is_synced`]);
//! - every pod has `metadata.uid`, `metadata.namespace` and `metadata.name` set and
//!   `spec.nodeName` naming this node; the UID is the pod's identity across updates, so a
//!   source keeps it stable for as long as the pod is meant to keep running;
//! - a source may resend an unchanged set; [`DesiredPods::apply`] reports no change then;
//! - dropping the sender ends the source; the reconciler keeps its last set.
//!
//! The reconciler merges the sets with [`DesiredPods`] and never needs to know which kinds
//! of source exist: a new source only adds a [`SourceId`] and a task that sends updates.
//!
//! ```no_run
//! use systemk::sources::{DesiredPods, SourceId, manifests};
//!
//! async fn run(shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
//!     let (updates, mut received) = tokio::sync::mpsc::channel(16);
//!     let dir = "/etc/systemk/manifests".into();
//!     tokio::spawn(manifests::watch(dir, "node1".to_owned(), updates, shutdown));
//!     let mut desired = DesiredPods::new([SourceId::File]);
//!     while let Some(update) = received.recv().await {
//!         for uid in desired.apply(update).changed {
//!             match desired.get(&uid) {
//!                 Some(pod) => { /* converge the units of `pod` */ }
//!                 None => { /* stop and remove the units of `uid` */ }
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! Sources describe what is wanted, never what runs: `manifests` imports neither `pod` nor
//! `systemd`. Only `kube` reads the reconciler's `pod::Progress` (a lower layer), to report
//! status back to the API; it never touches units.

mod desired;
mod error;
pub mod kube;
pub mod manifests;

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

pub use desired::{Applied, DesiredPods, RejectReason, Rejected};
pub use error::{Error, Result};

/// Which source a set of desired pods came from. The order is the precedence when two
/// sources claim the same pod UID or the same namespace/name: static manifests are the
/// machine's own configuration and win over the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceId {
    /// Static pod manifests read from a directory (`kubernetes.io/config.source=file`).
    File,
    /// Pods bound to this node by the Kubernetes API server (`kubernetes.io/config.source=api`).
    Api,
}

impl SourceId {
    /// The kubelet's name for this source, as used in the `kubernetes.io/config.source`
    /// annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceId::File => "file",
            SourceId::Api => "api",
        }
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The complete desired set of pods of one source (see the module's contract).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceUpdate {
    /// The source that sent this set.
    pub source: SourceId,
    /// Every pod the source wants on this node now; pods absent here are no longer wanted
    /// by this source.
    pub pods: Vec<Arc<Pod>>,
}

/// The kubelet's annotation naming the source of a pod (`file`, `api`).
pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";

/// The kubelet's annotation carrying a hash of a pod's configuration as its source read it.
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
