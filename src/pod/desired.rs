//! The desired pods: the vocabulary every source of desired pods speaks ([`SourceId`],
//! [`SourceUpdate`]) and the merged state the reconciler works from ([`DesiredPods`]).
//! Layer 4, pure: no I/O and no clock, so the reconciler can drive it from its event loop
//! and tests can drive it with plain values. The sources (layer 5) import it from here.
//!
//! # The source contract
//!
//! A source runs as its own task and sends [`SourceUpdate`]s over a
//! `tokio::sync::mpsc::Sender<SourceUpdate>`, as the kubelet's sources send `SET`, `ADD`,
//! `UPDATE` and `REMOVE`: either its **complete** desired set ([`SourceChange::Set`]), or
//! what changed since its last update ([`SourceChange::Changed`]: pods added or changed, and
//! the UIDs of pods gone), so that one pod more costs one pod's work however many the node
//! runs. The channel loses nothing, and a source sends every change it makes, in order:
//!
//! - the first update is a `Set`, sent as soon as the source knows its initial set, even
//!   when it is empty: until a source has sent one, the reconciler must not remove units of
//!   pods that may belong to it ([`DesiredPods::is_synced`]); a source that may have missed
//!   changes sends a `Set` again (the API watch after a relist), or reads everything again
//!   and sends the difference from what it sent (the manifest watch after lost inotify
//!   events);
//! - every pod has `metadata.uid`, `metadata.namespace` and `metadata.name` set and
//!   `spec.nodeName` naming this node; the UID is the pod's identity across updates, so a
//!   source keeps it stable for as long as the pod is meant to keep running;
//! - a source may resend unchanged pods; [`DesiredPods::apply`] reports no change then;
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::claims::Claims;
use merge::{Claim, DesiredKey};

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

/// A change of the desired pods of one source (see the module's contract).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceUpdate {
    /// The source that sent it.
    pub source: SourceId,
    /// What changed.
    pub change: SourceChange,
}

/// What a source's update says.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceChange {
    /// Every pod the source wants on this node now; pods absent here are no longer wanted
    /// by this source.
    Set(Vec<Arc<Pod>>),
    /// Pods the source now wants, new or changed (by UID), and the UIDs of pods it no
    /// longer wants; its other pods stay as they were.
    Changed {
        /// Pods added or changed.
        pods: Vec<Arc<Pod>>,
        /// UIDs of pods no longer wanted.
        gone: Vec<String>,
    },
}

impl SourceUpdate {
    /// The complete set `pods` of `source`.
    pub fn set(source: SourceId, pods: Vec<Arc<Pod>>) -> Self {
        SourceUpdate {
            source,
            change: SourceChange::Set(pods),
        }
    }

    /// `pods` added or changed and `gone` removed, in `source`'s set.
    pub fn changed(source: SourceId, pods: Vec<Arc<Pod>>, gone: Vec<String>) -> Self {
        SourceUpdate {
            source,
            change: SourceChange::Changed { pods, gone },
        }
    }
}

/// The kubelet's annotation naming the source of a pod (`file`, `api`).
pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";

/// The kubelet's annotation carrying a hash of a pod's configuration as its source read it.
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";

/// The pods every source wants, merged and keyed by UID.
///
/// Two sources can claim the same UID or the same namespace/name (the unit names of two such
/// pods would collide); the source that sorts first in [`SourceId`] keeps the pod and the
/// other's is rejected for as long as the clash lasts (within one source, the lower UID).
/// An update decides again only the pods it touches and those they clash with.
#[derive(Debug, Default)]
pub struct DesiredPods {
    /// Sources that must have sent their first set before the merged set is complete.
    expected: BTreeSet<SourceId>,
    /// Sources that have sent their first set.
    synced: BTreeSet<SourceId>,
    /// Every pod with an identity that each source wants, by UID.
    wanted: BTreeMap<SourceId, HashMap<String, Arc<Pod>>>,
    /// Each wanted pod's claim on its UID and namespace/name.
    claims: Claims<Claim, DesiredKey>,
    /// The merged set, by pod UID, with the source that won each pod.
    merged: BTreeMap<String, (SourceId, Arc<Pod>)>,
}

/// What one [`DesiredPods::apply`] changed.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// UIDs whose desired pod appeared, changed or disappeared, sorted. Look each up with
    /// [`DesiredPods::get`]: `None` means the pod is no longer wanted.
    pub changed: Vec<String>,
    /// Pods this update set aside, or left set aside when it touched them or what they
    /// clash with.
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

    /// Applies the change of `update.source` and reports which UIDs changed.
    pub fn apply(&mut self, update: SourceUpdate) -> Applied {
        let source = update.source;
        let wanted = self.wanted.entry(source).or_default();
        let (pods, gone) = match update.change {
            SourceChange::Set(pods) => {
                self.synced.insert(source);
                let kept: std::collections::HashSet<&str> = pods
                    .iter()
                    .filter_map(|pod| pod.metadata.uid.as_deref())
                    .collect();
                let gone: Vec<String> = wanted
                    .keys()
                    .filter(|uid| !kept.contains(uid.as_str()))
                    .cloned()
                    .collect();
                (pods, gone)
            }
            SourceChange::Changed { pods, gone } => (pods, gone),
        };
        let mut rejected = Vec::new();
        let mut claims = Vec::new();
        for pod in pods {
            let Some(uid) = merge::identity(&pod) else {
                rejected.push(merge::unidentified(source, &pod));
                continue;
            };
            if wanted
                .get(uid)
                .is_some_and(|old| Arc::ptr_eq(old, &pod) || **old == *pod)
            {
                continue;
            }
            claims.push(((source, uid.to_owned()), Some(merge::keys_of(&pod))));
            wanted.insert(uid.to_owned(), pod);
        }
        for uid in gone {
            if wanted.remove(&uid).is_some() {
                claims.push(((source, uid), None));
            }
        }
        let mut uids: BTreeSet<String> = claims.iter().map(|((_, uid), _)| uid.clone()).collect();
        for claim in self.claims.update(claims) {
            if let Some(set_aside) = merge::set_aside(&self.claims, &self.wanted, &claim) {
                rejected.push(set_aside);
            }
            uids.insert(claim.1);
        }
        let changed = uids
            .into_iter()
            .filter(|uid| self.merge_again(uid))
            .collect();
        Applied { changed, rejected }
    }

    /// Puts in the merged set the pod that now holds `uid`, if any; whether that changed it.
    fn merge_again(&mut self, uid: &str) -> bool {
        let winner = merge::holder(&self.claims, &self.wanted, uid);
        let before = self.merged.get(uid);
        let same = match (before, &winner) {
            (None, None) => true,
            (Some((old_source, old)), Some((new_source, new))) => {
                old_source == new_source && (Arc::ptr_eq(old, new) || old == new)
            }
            _ => false,
        };
        match winner {
            Some(winner) => self.merged.insert(uid.to_owned(), winner),
            None => self.merged.remove(uid),
        };
        !same
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
        self.expected.is_subset(&self.synced)
    }
}

#[cfg(test)]
mod tests;
