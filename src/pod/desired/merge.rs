//! How the sets of several sources become one: the first claim on a UID or a
//! namespace/name wins, in [`SourceId`] order, and which UIDs an update changed. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::{RejectReason, Rejected, SourceId};

/// The namespace of a pod that names none, as the API server defaults it.
const DEFAULT_NAMESPACE: &str = "default";

/// The merged set: by pod UID, the source that won the pod and the pod.
pub(super) type Merged = BTreeMap<String, (SourceId, Arc<Pod>)>;

/// Merges the sets in source order; the first claim on a UID or a namespace/name wins.
pub(super) fn merge(by_source: &BTreeMap<SourceId, Vec<Arc<Pod>>>) -> (Merged, Vec<Rejected>) {
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
pub(super) fn changed_uids(old: &Merged, new: &Merged) -> Vec<String> {
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
