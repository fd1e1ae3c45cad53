//! The desired pods: the vocabulary every source of desired pods speaks ([`SourceId`],
//! [`SourceUpdate`]) and the merged state the reconciler works from ([`DesiredPods`]).
//! Layer 4, pure: no I/O and no clock, so the reconciler can drive it from its event loop
//! and tests can drive it with plain values. The sources (layer 5) import it from here.
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
//! use systemk::pod::{DesiredPods, SourceId};
//! use systemk::sources::manifests;
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

mod merge;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use merge::{Merged, changed_uids, merge};

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

/// The pods every source wants, merged and keyed by UID.
///
/// Two sources can claim the same UID or the same namespace/name (the unit names of two such
/// pods would collide); the source that sorts first in [`SourceId`] keeps the pod and the
/// other's is rejected for as long as the clash lasts.
#[derive(Debug, Default)]
pub struct DesiredPods {
    /// Sources that must have sent their first set before the merged set is complete.
    expected: BTreeSet<SourceId>,
    /// The latest set of each source that has sent one.
    by_source: BTreeMap<SourceId, Vec<Arc<Pod>>>,
    /// The merged set, by pod UID, with the source that won each pod.
    merged: Merged,
}

/// What one [`DesiredPods::apply`] changed.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// UIDs whose desired pod appeared, changed or disappeared, sorted. Look each up with
    /// [`DesiredPods::get`]: `None` means the pod is no longer wanted.
    pub changed: Vec<String>,
    /// Pods of any source currently set aside; repeated on every apply while they last.
    pub rejected: Vec<Rejected>,
}

/// A pod a source wants that is not in the merged set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The source that sent the pod.
    pub source: SourceId,
    /// The pod's namespace (`default` when it names none).
    pub namespace: String,
    /// The pod's name, empty when it has none.
    pub name: String,
    /// The pod's UID, empty when it has none.
    pub uid: String,
    /// Why it was set aside.
    pub reason: RejectReason,
}

/// Why a pod was set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The pod has no UID or no name, so it cannot be tracked.
    MissingIdentity,
    /// Another pod already has this UID.
    UidTaken {
        /// The source whose pod kept the UID.
        by: SourceId,
    },
    /// Another pod already has this namespace/name.
    NameTaken {
        /// The source whose pod kept the name.
        by: SourceId,
        /// The UID of the pod that kept the name.
        uid: String,
    },
}

impl DesiredPods {
    /// An empty desired state that counts as synced once each of `expected` has sent a set.
    pub fn new(expected: impl IntoIterator<Item = SourceId>) -> Self {
        DesiredPods {
            expected: expected.into_iter().collect(),
            ..DesiredPods::default()
        }
    }

    /// Replaces the set of `update.source` and reports which UIDs changed.
    pub fn apply(&mut self, update: SourceUpdate) -> Applied {
        self.by_source.insert(update.source, update.pods);
        let (merged, rejected) = merge(&self.by_source);
        let changed = changed_uids(&self.merged, &merged);
        self.merged = merged;
        Applied { changed, rejected }
    }

    /// The desired pod with this UID, if any source wants it.
    pub fn get(&self, uid: &str) -> Option<&Arc<Pod>> {
        self.merged.get(uid).map(|(_, pod)| pod)
    }

    /// The source that the desired pod with this UID came from.
    pub fn source_of(&self, uid: &str) -> Option<SourceId> {
        self.merged.get(uid).map(|(source, _)| *source)
    }

    /// Every desired pod with its UID, ordered by UID.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Pod>)> {
        self.merged
            .iter()
            .map(|(uid, (_, pod))| (uid.as_str(), pod))
    }

    /// Number of desired pods.
    pub fn len(&self) -> usize {
        self.merged.len()
    }

    /// Whether no source wants any pod.
    pub fn is_empty(&self) -> bool {
        self.merged.is_empty()
    }

    /// Whether every expected source has sent its first set. Only then may the reconciler
    /// treat a unit whose pod is not desired as an orphan and remove it.
    pub fn is_synced(&self) -> bool {
        self.expected
            .iter()
            .all(|source| self.by_source.contains_key(source))
    }
}

#[cfg(test)]
mod tests;
