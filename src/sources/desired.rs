//! The merged desired state: every source's latest complete set, keyed by pod UID.
//! Layer 5, pure: no I/O and no clock, so the reconciler can drive it from its event loop and
//! tests can drive it with plain values.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::{SourceId, SourceUpdate};

/// The namespace of a pod that names none, as the API server defaults it.
const DEFAULT_NAMESPACE: &str = "default";

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
    merged: BTreeMap<String, (SourceId, Arc<Pod>)>,
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

type Merged = BTreeMap<String, (SourceId, Arc<Pod>)>;

/// Merges the sets in source order; the first claim on a UID or a namespace/name wins.
fn merge(by_source: &BTreeMap<SourceId, Vec<Arc<Pod>>>) -> (Merged, Vec<Rejected>) {
    let mut merged = Merged::new();
    let mut names: BTreeMap<(String, String), (SourceId, String)> = BTreeMap::new();
    let mut rejected = Vec::new();
    for (&source, pods) in by_source {
        for pod in pods {
            let meta = &pod.metadata;
            let namespace = meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            let name = meta.name.as_deref().unwrap_or_default();
            let uid = meta.uid.as_deref().unwrap_or_default();
            let reason = if name.is_empty() || uid.is_empty() {
                Some(RejectReason::MissingIdentity)
            } else if let Some((by, _)) = merged.get(uid) {
                Some(RejectReason::UidTaken { by: *by })
            } else if let Some((by, kept)) = names.get(&(namespace.to_owned(), name.to_owned())) {
                Some(RejectReason::NameTaken {
                    by: *by,
                    uid: kept.clone(),
                })
            } else {
                None
            };
            match reason {
                Some(reason) => rejected.push(Rejected {
                    source,
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    uid: uid.to_owned(),
                    reason,
                }),
                None => {
                    names.insert(
                        (namespace.to_owned(), name.to_owned()),
                        (source, uid.to_owned()),
                    );
                    merged.insert(uid.to_owned(), (source, Arc::clone(pod)));
                }
            }
        }
    }
    (merged, rejected)
}

/// UIDs present in only one of the two sets, or whose pod or source differs.
fn changed_uids(old: &Merged, new: &Merged) -> Vec<String> {
    let uids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    uids.into_iter()
        .filter(|uid| match (old.get(*uid), new.get(*uid)) {
            (Some((old_source, old_pod)), Some((new_source, new_pod))) => {
                old_source != new_source || !(Arc::ptr_eq(old_pod, new_pod) || old_pod == new_pod)
            }
            _ => true,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(namespace: &str, name: &str, uid: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                uid: Some(uid.to_owned()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        })
    }

    fn update(source: SourceId, pods: &[&Arc<Pod>]) -> SourceUpdate {
        SourceUpdate {
            source,
            pods: pods.iter().map(|pod| Arc::clone(pod)).collect(),
        }
    }

    fn with_label(pod: &Arc<Pod>, value: &str) -> Arc<Pod> {
        let mut changed = Pod::clone(pod);
        changed.metadata.labels = Some([("app".to_owned(), value.to_owned())].into());
        Arc::new(changed)
    }

    #[test]
    fn first_set_adds_every_pod() {
        let mut desired = DesiredPods::new([SourceId::File]);
        let (a, b) = (pod("default", "a", "uid-a"), pod("default", "b", "uid-b"));
        let applied = desired.apply(update(SourceId::File, &[&b, &a]));
        assert_eq!(applied.changed, ["uid-a", "uid-b"]);
        assert!(applied.rejected.is_empty());
        assert_eq!(desired.get("uid-a"), Some(&a));
        assert_eq!(desired.source_of("uid-b"), Some(SourceId::File));
        assert_eq!(desired.len(), 2);
    }

    #[test]
    fn identical_resend_changes_nothing() {
        let mut desired = DesiredPods::new([SourceId::File]);
        let a = pod("default", "a", "uid-a");
        desired.apply(update(SourceId::File, &[&a]));
        let copy = Arc::new(Pod::clone(&a));
        assert!(
            desired
                .apply(update(SourceId::File, &[&copy]))
                .changed
                .is_empty()
        );
    }

    #[test]
    fn changed_and_removed_pods_are_reported() {
        let mut desired = DesiredPods::new([SourceId::File]);
        let (a, b) = (pod("default", "a", "uid-a"), pod("default", "b", "uid-b"));
        desired.apply(update(SourceId::File, &[&a, &b]));
        let a2 = with_label(&a, "v2");
        let applied = desired.apply(update(SourceId::File, &[&a2]));
        assert_eq!(applied.changed, ["uid-a", "uid-b"]);
        assert_eq!(desired.get("uid-a"), Some(&a2));
        assert_eq!(desired.get("uid-b"), None);
    }

    #[test]
    fn sources_do_not_replace_each_other() {
        let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
        let (a, b) = (pod("default", "a", "uid-a"), pod("default", "b", "uid-b"));
        desired.apply(update(SourceId::File, &[&a]));
        let applied = desired.apply(update(SourceId::Api, &[&b]));
        assert_eq!(applied.changed, ["uid-b"]);
        assert_eq!(desired.len(), 2);
        let applied = desired.apply(update(SourceId::Api, &[]));
        assert_eq!(applied.changed, ["uid-b"]);
        assert!(desired.get("uid-a").is_some());
    }

    #[test]
    fn synced_only_after_every_expected_source_sent_a_set() {
        let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
        assert!(!desired.is_synced());
        desired.apply(update(SourceId::File, &[]));
        assert!(!desired.is_synced());
        desired.apply(update(SourceId::Api, &[]));
        assert!(desired.is_synced());
    }

    #[test]
    fn file_source_wins_a_name_clash_whatever_the_arrival_order() {
        let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
        let from_api = pod("default", "web", "uid-api");
        let from_file = pod("default", "web", "uid-file");
        desired.apply(update(SourceId::Api, &[&from_api]));
        let applied = desired.apply(update(SourceId::File, &[&from_file]));
        assert_eq!(applied.changed, ["uid-api", "uid-file"]);
        assert_eq!(
            applied.rejected[0].reason,
            RejectReason::NameTaken {
                by: SourceId::File,
                uid: "uid-file".to_owned()
            }
        );
        assert_eq!(desired.source_of("uid-file"), Some(SourceId::File));
        assert_eq!(desired.get("uid-api"), None);
    }

    #[test]
    fn uid_clash_keeps_the_first_source() {
        let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
        let from_file = pod("default", "a", "same");
        let from_api = pod("other", "b", "same");
        desired.apply(update(SourceId::File, &[&from_file]));
        let applied = desired.apply(update(SourceId::Api, &[&from_api]));
        assert!(applied.changed.is_empty());
        assert_eq!(
            applied.rejected[0].reason,
            RejectReason::UidTaken { by: SourceId::File }
        );
    }

    #[test]
    fn pod_without_uid_is_rejected() {
        let mut desired = DesiredPods::new([SourceId::Api]);
        let anonymous = pod("default", "a", "");
        let applied = desired.apply(update(SourceId::Api, &[&anonymous]));
        assert_eq!(applied.rejected[0].reason, RejectReason::MissingIdentity);
        assert!(desired.is_empty());
    }
}
