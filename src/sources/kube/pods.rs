//! The API source of desired pods: a watch on the pods bound to this node
//! (`spec.nodeName=<node>`, kube-runtime's watcher with its default back-off, cached in a
//! reflector store), sent to the reconciler as complete snapshots (`SourceId::Api`, see
//! the source contract in [`crate::sources`]). Mirror pods are static pods' copies and are
//! left out. Pods being deleted stay in the set with their `deletionTimestamp` and
//! `deletionGracePeriodSeconds`: the reconciler stops them within that grace, and the status
//! reporter deletes them once their units are gone. Layer 5.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::{self, Event, watcher};
use tokio::sync::{mpsc, watch};

use crate::sources::{CONFIG_SOURCE_ANNOTATION, SourceId, SourceUpdate};

/// Annotation marking a mirror pod; its value is the static pod's config hash.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Watches the pods bound to `node_name` into `store` and sends a snapshot whenever the
/// desired set changes, until `shutdown` or until the receiver is gone. `changed` ticks
/// after every change of the store (for the status reporter). API server outages are
/// retried with back-off; the reconciler keeps the last set meanwhile.
pub async fn run(
    client: Client,
    node_name: String,
    store: Writer<Pod>,
    updates: mpsc::Sender<SourceUpdate>,
    changed: watch::Sender<()>,
    shutdown: impl Future<Output = ()>,
) {
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
    let reader = store.as_reader();
    let mut warned = false;
    let bound_here = node_name.clone();
    let stream = watcher(Api::<Pod>::all(client), config)
        .default_backoff()
        .filter(move |event| {
            let keep = event
                .as_ref()
                .map_or(true, |event| concerns_node(event, &bound_here));
            if !keep && !std::mem::replace(&mut warned, true) {
                tracing::warn!(
                    node = %bound_here,
                    "the API server sent pods bound to other nodes despite the field selector; \
                     ignoring them"
                );
            }
            std::future::ready(keep)
        })
        .reflect(store);
    tokio::pin!(stream);
    tokio::pin!(shutdown);
    let mut listed = false;
    let mut last: Option<Vec<Arc<Pod>>> = None;
    loop {
        let event = tokio::select! {
            () = &mut shutdown => return,
            event = stream.next() => event,
        };
        match event {
            None => return,
            Some(Err(err)) => {
                tracing::warn!(node = %node_name, error = %crate::error_chain::Chain(&err), "pod watch failed; retrying");
                continue;
            }
            Some(Ok(Event::InitDone)) => listed = true,
            Some(Ok(Event::Apply(_) | Event::Delete(_))) if listed => {}
            Some(Ok(_)) => continue,
        }
        changed.send_replace(());
        let pods = desired_pods(&reader.state());
        if last.as_ref() == Some(&pods) {
            continue;
        }
        last = Some(pods.clone());
        tracing::debug!(pods = pods.len(), "API pods changed");
        let update = SourceUpdate {
            source: SourceId::Api,
            pods,
        };
        if updates.send(update).await.is_err() {
            return;
        }
    }
}

/// The pods the reconciler should run (or stop, when being deleted), from the watch
/// cache: not mirror pods, with an identity. Each is stripped of what changes without the spec changing
/// (status, resourceVersion, managedFields), so a status patch is no new desired pod, and
/// marked `kubernetes.io/config.source=api`, ordered by UID.
pub fn desired_pods(cached: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let mut pods: Vec<Arc<Pod>> = cached
        .iter()
        .filter(|pod| !is_mirror(pod))
        .filter(|pod| pod.metadata.uid.is_some() && pod.metadata.name.is_some())
        .map(|pod| {
            let mut pod = Pod::clone(pod);
            pod.status = None;
            pod.metadata.resource_version = None;
            pod.metadata.managed_fields = None;
            pod.metadata
                .namespace
                .get_or_insert_with(|| "default".to_owned());
            pod.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(
                    CONFIG_SOURCE_ANNOTATION.to_owned(),
                    SourceId::Api.as_str().to_owned(),
                );
            Arc::new(pod)
        })
        .collect();
    pods.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    pods
}

/// Whether a watch event is about this node's pods. The watch asks the API server for
/// exactly these with a field selector, but a server may ignore it (some third-party
/// control planes do), and running another node's pod is never right. `spec.nodeName` is
/// immutable once set, so a pod never moves between nodes.
fn concerns_node(event: &Event<Pod>, node_name: &str) -> bool {
    match event {
        Event::Apply(pod) | Event::InitApply(pod) | Event::Delete(pod) => {
            is_bound_to(pod, node_name)
        }
        Event::Init | Event::InitDone => true,
    }
}

/// Whether `pod` is bound to the node `node_name`.
pub fn is_bound_to(pod: &Pod, node_name: &str) -> bool {
    pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()) == Some(node_name)
}

/// Whether `pod` is a static pod's mirror.
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|annotations| annotations.contains_key(MIRROR_ANNOTATION))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn pod(name: &str, uid: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("default".to_owned()),
                uid: Some(uid.to_owned()),
                resource_version: Some("7".to_owned()),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".to_owned()),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn mirror_pods_are_not_desired_and_deleted_ones_stay() {
        let mut mirror = pod("static-node", "m");
        mirror.metadata.annotations = Some(BTreeMap::from([(
            MIRROR_ANNOTATION.to_owned(),
            "hash".to_owned(),
        )]));
        let mut deleted = pod("going", "d");
        deleted.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        let cached: Vec<Arc<Pod>> = [pod("web", "w"), mirror, deleted]
            .into_iter()
            .map(Arc::new)
            .collect();
        let desired = desired_pods(&cached);
        let names: Vec<_> = desired
            .iter()
            .map(|pod| pod.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["going", "web"]);
        assert!(desired[0].metadata.deletion_timestamp.is_some());
    }

    #[test]
    fn only_events_of_this_nodes_pods_are_kept() {
        let bound = |node: Option<&str>| {
            let mut pod = pod("web", "w");
            pod.spec = Some(PodSpec {
                node_name: node.map(str::to_owned),
                ..PodSpec::default()
            });
            pod
        };
        assert!(concerns_node(&Event::Apply(bound(Some("n1"))), "n1"));
        assert!(concerns_node(&Event::Delete(bound(Some("n1"))), "n1"));
        assert!(!concerns_node(&Event::Apply(bound(Some("n2"))), "n1"));
        assert!(!concerns_node(&Event::InitApply(bound(Some("n2"))), "n1"));
        assert!(!concerns_node(&Event::Delete(bound(Some("n2"))), "n1"));
        assert!(
            !concerns_node(&Event::Apply(bound(None)), "n1"),
            "unscheduled"
        );
        assert!(
            !concerns_node(&Event::Apply(pod("web", "w")), "n1"),
            "no spec"
        );
        assert!(concerns_node(&Event::Init, "n1"));
        assert!(concerns_node(&Event::InitDone, "n1"));
    }

    #[test]
    fn status_and_resource_version_do_not_make_a_new_pod() {
        let first = desired_pods(&[Arc::new(pod("web", "w"))]);
        let mut patched = pod("web", "w");
        patched.metadata.resource_version = Some("8".to_owned());
        patched.status = None;
        assert_eq!(first, desired_pods(&[Arc::new(patched)]));
        let annotations = first[0].metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[CONFIG_SOURCE_ANNOTATION], "api");
    }
}
