//! How the pods of several sources become one set: each pod claims its UID and its
//! namespace/name, and in [`SourceId`] order (then UID order) the first claim wins
//! ([`crate::claims`]). Pure.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::{RejectReason, Rejected, SourceId};
use crate::claims::{Claims, Standing};

/// The namespace of a pod that names none, as the API server defaults it.
const DEFAULT_NAMESPACE: &str = "default";

/// Who claims: a source's pod, by UID.
pub(super) type Claim = (SourceId, String);

/// What a pod claims.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum DesiredKey {
    Uid(String),
    Name { namespace: String, name: String },
}

/// The pods each source wants, by UID.
type Wanted = BTreeMap<SourceId, HashMap<String, Arc<Pod>>>;

/// The pod's UID, when it has both a UID and a name.
pub(super) fn identity(pod: &Pod) -> Option<&str> {
    let meta = &pod.metadata;
    let uid = meta.uid.as_deref().filter(|uid| !uid.is_empty())?;
    meta.name.as_deref().filter(|name| !name.is_empty())?;
    Some(uid)
}

fn namespace_and_name(pod: &Pod) -> (String, String) {
    let meta = &pod.metadata;
    (
        meta.namespace
            .as_deref()
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_owned(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The keys a pod with an identity claims.
pub(super) fn keys_of(pod: &Pod) -> Vec<DesiredKey> {
    let (namespace, name) = namespace_and_name(pod);
    vec![
        DesiredKey::Uid(pod.metadata.uid.clone().unwrap_or_default()),
        DesiredKey::Name { namespace, name },
    ]
}

/// The rejection of a pod without a UID or a name.
pub(super) fn unidentified(source: SourceId, pod: &Pod) -> Rejected {
    let (namespace, name) = namespace_and_name(pod);
    Rejected {
        source,
        namespace,
        name,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        reason: RejectReason::MissingIdentity,
    }
}

/// The rejection of `claim`, when it is set aside.
pub(super) fn set_aside(
    claims: &Claims<Claim, DesiredKey>,
    wanted: &Wanted,
    claim: &Claim,
) -> Option<Rejected> {
    let Standing::SetAside { key, by } = claims.standing(claim)? else {
        return None;
    };
    let pod = wanted.get(&claim.0)?.get(&claim.1)?;
    let (namespace, name) = namespace_and_name(pod);
    let reason = match key {
        DesiredKey::Uid(_) => RejectReason::UidTaken { by: by.0 },
        DesiredKey::Name { .. } => RejectReason::NameTaken {
            by: by.0,
            uid: by.1.clone(),
        },
    };
    Some(Rejected {
        source: claim.0,
        namespace,
        name,
        uid: claim.1.clone(),
        reason,
    })
}

/// The pod holding `uid`, with its source; `None` when no source's pod does.
pub(super) fn holder(
    claims: &Claims<Claim, DesiredKey>,
    wanted: &Wanted,
    uid: &str,
) -> Option<(SourceId, Arc<Pod>)> {
    wanted.iter().find_map(|(source, pods)| {
        let pod = pods.get(uid)?;
        let claim = (*source, uid.to_owned());
        (claims.standing(&claim) == Some(&Standing::Holds)).then(|| (*source, Arc::clone(pod)))
    })
}
