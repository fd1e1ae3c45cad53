//! Mirror pods: a static pod shows in the API as a pod of the same namespace/name,
//! annotated `kubernetes.io/config.mirror=<config hash>` and owned by the Node, so the
//! cluster sees what runs on the machine. Created when the static pod first reports status,
//! recreated when its manifest changed (the hash differs), deleted when it goes. The API
//! copy is never run: the API source skips mirror pods. Layer 5.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use super::delete_at_once;
use super::pods::MIRROR_ANNOTATION;
use crate::sources::{CONFIG_HASH_ANNOTATION, Error, Result};

/// The mirror of `static_pod` on node `node_name` (UID `node_uid`).
pub fn mirror_of(static_pod: &Pod, node_name: &str, node_uid: &str) -> Pod {
    let meta = &static_pod.metadata;
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.insert(MIRROR_ANNOTATION.to_owned(), config_hash(static_pod));
    Pod {
        metadata: ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            labels: meta.labels.clone(),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_owned(),
                kind: "Node".to_owned(),
                name: node_name.to_owned(),
                uid: node_uid.to_owned(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        spec: static_pod.spec.clone(),
        status: None,
    }
}

/// The static pod's config hash (set by the manifest source).
pub fn config_hash(static_pod: &Pod) -> String {
    annotation(static_pod, CONFIG_HASH_ANNOTATION).unwrap_or_default()
}

/// Whether `mirror` mirrors the current configuration of `static_pod`.
pub fn is_current(mirror: &Pod, static_pod: &Pod) -> bool {
    annotation(mirror, MIRROR_ANNOTATION) == Some(config_hash(static_pod))
        && mirror.metadata.deletion_timestamp.is_none()
}

fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a: &BTreeMap<String, String>| a.get(key))
        .cloned()
}

/// Creates the mirror of `static_pod`; returns its UID.
pub async fn create(
    pods: &Api<Pod>,
    static_pod: &Pod,
    node_name: &str,
    node_uid: &str,
) -> Result<String> {
    let mirror = mirror_of(static_pod, node_name, node_uid);
    let name = mirror.metadata.name.clone().unwrap_or_default();
    let created = pods
        .create(&PostParams::default(), &mirror)
        .await
        .map_err(Error::api("create mirror pod", &name))?;
    tracing::info!(pod = %name, "mirror pod created");
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Deletes the mirror pod `name` with UID `uid` at once (it runs nothing).
pub async fn delete(pods: &Api<Pod>, name: &str, uid: &str) -> Result<()> {
    let params = delete_at_once(uid);
    match pods.delete(name, &params).await {
        Ok(_) => {
            tracing::info!(pod = %name, "mirror pod deleted");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(Error::api("delete mirror pod", name)(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn static_pod(hash: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-node-1".to_owned()),
                namespace: Some("default".to_owned()),
                uid: Some("static-uid".to_owned()),
                annotations: Some(BTreeMap::from([(
                    CONFIG_HASH_ANNOTATION.to_owned(),
                    hash.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn mirror_carries_hash_and_node_owner() {
        let mirror = mirror_of(&static_pod("abc"), "node-1", "node-uid");
        assert_eq!(
            mirror.metadata.annotations.as_ref().unwrap()[MIRROR_ANNOTATION],
            "abc"
        );
        assert_eq!(mirror.metadata.uid, None);
        let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Node", "node-uid")
        );
        assert!(is_current(&mirror, &static_pod("abc")));
        assert!(!is_current(&mirror, &static_pod("changed")));
    }
}
