//! The API source of desired pods: a watch on the pods bound to this node
//! (`spec.nodeName=<node>`, kube-runtime's watcher with its default back-off, cached in a
//! reflector store), sent to the reconciler as a complete set after each (re)list and as
//! one pod's change after each watch event (`SourceId::Api`, see the source contract in
//! [`crate::sources`]). Mirror pods are static pods' copies and are
//! left out. Pods being deleted stay in the set with their `deletionTimestamp` and
//! `deletionGracePeriodSeconds`: the reconciler stops them within that grace, and the status
//! reporter deletes them once their units are gone. Layer 5.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::{self, Event, watcher};
use tokio::sync::mpsc;

use super::pod_changes::ChangesSender;

use crate::sources::{CONFIG_SOURCE_ANNOTATION, SourceId, SourceUpdate};

/// Annotation marking a mirror pod; its value is the static pod's config hash.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Watches the pods bound to `node_name` into `store` and sends the desired set after each
/// (re)list, and each change of a desired pod after that, until `shutdown` or until the
/// receiver is gone. `changed` records each pod of the store that changed (for the status
/// reporter). API server outages are
/// retried with back-off; the reconciler keeps the last set meanwhile.
pub async fn run(
    client: Client,
    node_name: String,
    store: Writer<Pod>,
    updates: mpsc::Sender<SourceUpdate>,
    changed: ChangesSender,
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
    let mut sent = SentPods::default();
    loop {
        let event = tokio::select! {
            () = &mut shutdown => return,
            event = stream.next() => event,
        };
        let update = match event {
            None => return,
            Some(Err(err)) => {
                tracing::warn!(node = %node_name, error = %crate::error_chain::Chain(&err), "pod watch failed; retrying");
                continue;
            }
            Some(Ok(Event::InitDone)) => {
                changed.relisted();
                sent.listed(&reader.state())
            }
            Some(Ok(Event::Apply(pod))) if sent.is_listed() => {
                changed.changed(&pod);
                sent.applied(&pod)
            }
            Some(Ok(Event::Delete(pod))) if sent.is_listed() => {
                changed.changed(&pod);
                sent.deleted(&pod)
            }
            Some(Ok(_)) => continue,
        };
        let Some(update) = update else {
            continue;
        };
        tracing::debug!(pods = sent.len(), "API pods changed");
        if updates.send(update).await.is_err() {
            return;
        }
    }
}

/// The desired pods last sent to the reconciler, by UID, to send only what changed.
#[derive(Debug, Default)]
struct SentPods {
    /// `None` until the first list completed.
    pods: Option<HashMap<String, Arc<Pod>>>,
}

impl SentPods {
    fn is_listed(&self) -> bool {
        self.pods.is_some()
    }

    fn len(&self) -> usize {
        self.pods.as_ref().map_or(0, HashMap::len)
    }

    /// A (re)list completed with `cached`: the whole set, unless a relist found it as sent.
    fn listed(&mut self, cached: &[Arc<Pod>]) -> Option<SourceUpdate> {
        let pods = desired_pods(cached);
        let same = self.pods.as_ref().is_some_and(|sent| {
            sent.len() == pods.len()
                && pods
                    .iter()
                    .all(|pod| sent.get(uid_of(pod)).is_some_and(|old| old == pod))
        });
        if same {
            return None;
        }
        let by_uid = pods
            .iter()
            .map(|pod| (uid_of(pod).to_owned(), Arc::clone(pod)))
            .collect();
        self.pods = Some(by_uid);
        Some(SourceUpdate::set(SourceId::Api, pods))
    }

    /// The watch says `pod` was added or changed: its desired form, if that changed.
    fn applied(&mut self, pod: &Pod) -> Option<SourceUpdate> {
        let Some(desired) = desired_pod(pod) else {
            // A mirror pod, or one without an identity: never desired.
            return self.deleted(pod);
        };
        let sent = self.pods.as_mut()?;
        let uid = uid_of(&desired).to_owned();
        if sent.get(&uid).is_some_and(|old| *old == desired) {
            return None;
        }
        sent.insert(uid, Arc::clone(&desired));
        Some(SourceUpdate::changed(
            SourceId::Api,
            vec![desired],
            Vec::new(),
        ))
    }

    /// The watch says `pod` is gone from the API.
    fn deleted(&mut self, pod: &Pod) -> Option<SourceUpdate> {
        let uid = pod.metadata.uid.as_deref()?;
        self.pods.as_mut()?.remove(uid)?;
        Some(SourceUpdate::changed(
            SourceId::Api,
            Vec::new(),
            vec![uid.to_owned()],
        ))
    }
}

/// The UID of a desired pod (which always has one).
fn uid_of(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// The pods the reconciler should run (or stop, when being deleted), from the watch
/// cache: not mirror pods, with an identity. Each is stripped of what changes without the spec changing
/// (status, resourceVersion, managedFields), so a status patch is no new desired pod, and
/// marked `kubernetes.io/config.source=api`, ordered by UID.
pub fn desired_pods(cached: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let mut pods: Vec<Arc<Pod>> = cached.iter().filter_map(|pod| desired_pod(pod)).collect();
    pods.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
    pods
}

/// One cached pod as [`desired_pods`] has it; `None` for a mirror pod or one without an
/// identity.
fn desired_pod(pod: &Pod) -> Option<Arc<Pod>> {
    if is_mirror(pod) || pod.metadata.uid.is_none() || pod.metadata.name.is_none() {
        return None;
    }
    let mut pod = Pod {
        metadata: pod.metadata.clone(),
        spec: pod.spec.clone(),
        status: None,
    };
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
    Some(Arc::new(pod))
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
    use crate::sources::SourceChange;

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
    fn after_the_list_each_event_sends_only_the_pod_it_changed() {
        let mut sent = SentPods::default();
        assert_eq!(sent.applied(&pod("early", "e")), None, "not listed yet");
        let listed = sent.listed(&[Arc::new(pod("web", "w"))]);
        let Some(SourceUpdate {
            change: SourceChange::Set(pods),
            ..
        }) = listed
        else {
            panic!("a complete set first: {listed:?}");
        };
        assert_eq!(pods.len(), 1);
        // A status patch or a resync of the same pod changes nothing.
        let mut patched = pod("web", "w");
        patched.metadata.resource_version = Some("9".to_owned());
        assert_eq!(sent.applied(&patched), None);
        assert_eq!(sent.listed(&[Arc::new(patched)]), None);
        // A new pod, a changed one, a deleted one: each alone.
        let Some(SourceUpdate {
            change: SourceChange::Changed { pods, gone },
            ..
        }) = sent.applied(&pod("db", "d"))
        else {
            panic!("one pod more");
        };
        assert_eq!((pods.len(), gone.len()), (1, 0));
        assert_eq!(pods[0].metadata.uid.as_deref(), Some("d"));
        let mut labelled = pod("db", "d");
        labelled.metadata.labels = Some(BTreeMap::from([("a".to_owned(), "b".to_owned())]));
        assert!(sent.applied(&labelled).is_some());
        assert_eq!(
            sent.deleted(&labelled),
            Some(SourceUpdate::changed(
                SourceId::Api,
                Vec::new(),
                vec!["d".to_owned()]
            ))
        );
        assert_eq!(sent.deleted(&labelled), None, "gone already");
        // A relist that misses a pod sends the set without it.
        let relisted = sent.listed(&[]);
        assert_eq!(relisted, Some(SourceUpdate::set(SourceId::Api, Vec::new())));
        assert_eq!(sent.len(), 0);
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
