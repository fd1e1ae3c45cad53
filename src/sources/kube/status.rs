//! Reports what the reconciler did back to the API: pod status patched to `/status` only
//! when it differs from what the API holds, with the pod's UID as precondition; pods whose
//! deletion was requested (`deletionTimestamp`) deleted with grace 0 once their units are
//! gone; static pods mirrored (see `mirror.rs`). Failed calls stay pending and are
//! retried with the API back-off, so an outage only delays reports. Layer 5: reads the
//! reconciler's [`Progress`] (layer 4) and the pod watch's cache, writes only to the API.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;

use super::delete_at_once;
use super::events::EventPublisher;
use super::mirror;
use super::pod_changes::{Changes, ChangesReceiver};
use super::pods::is_mirror;
use super::status_patch::status_patch;
use crate::backoff::{API_SERVER, Retry};
use crate::pod::status::{ReadinessGates, gate_ready};
use crate::pod::{Progress, ProgressReceiver};
use crate::sources::{CONFIG_SOURCE_ANNOTATION, Error, Result, SourceId};

/// What the reporter needs from the rest of the kube source.
pub struct Reporter {
    /// Pods, cluster-wide (namespaced calls pick the namespace per pod).
    pub client: kube::Client,
    /// The pod watch's cache.
    pub store: Store<Pod>,
    /// This node's name.
    pub node_name: String,
    /// This node's UID once registered (mirror pods' owner).
    pub node_uid: watch::Receiver<Option<String>>,
    /// Publishes pod events.
    pub events: EventPublisher,
}

/// Consumes `progress` until it ends or `shutdown`; `store_changed` tells which pods of the
/// cache changed.
pub async fn run(
    reporter: Reporter,
    mut progress: ProgressReceiver,
    mut store_changed: ChangesReceiver,
    shutdown: impl Future<Output = ()>,
) {
    let mut state = State::default();
    let mut watching = true;
    tokio::pin!(shutdown);
    loop {
        let retry = state.retry_in();
        tokio::select! {
            () = &mut shutdown => return,
            event = progress.recv() => match event {
                Some(event) => state.record(&reporter, event).await,
                None => return,
            },
            changed = store_changed.changed(), if watching => {
                // The watch is gone (it stops before the reporter at shutdown): nothing
                // more will change, but statuses still come in.
                watching = changed.is_ok();
                state.garbage.merge(store_changed.take());
                // Another writer may have set a readiness gate's condition.
                state.requeue_gated();
            }
            () = sleep(retry) => {}
        }
        state.flush(&reporter).await;
    }
}

async fn sleep(delay: Option<Duration>) {
    match delay {
        Some(delay) => tokio::time::sleep(delay).await,
        None => std::future::pending().await,
    }
}

struct State {
    /// API pods the reconciler runs (reported a status, not removed since), by UID, with
    /// their namespace and name.
    running: HashMap<String, (String, String)>,
    /// Static pods by UID: the latest pod with status, for their mirrors.
    statics: HashMap<String, Arc<Pod>>,
    /// The UIDs of the static pods of each namespace/name, to find a mirror's static pod
    /// without a walk over every static pod.
    static_names: HashMap<(String, String), Vec<String>>,
    /// Statuses not yet in the API, by pod UID.
    pending: BTreeMap<String, Arc<Pod>>,
    /// The latest status of API pods with readiness gates, by UID: sent again whenever
    /// the API's pods change, since their `Ready` follows conditions others write.
    gated: HashMap<String, Arc<Pod>>,
    /// Cached pods the next garbage pass looks at: those that changed since the last.
    garbage: Changes,
    /// Whether the reconciler finished its first sync.
    synced: bool,
    /// Failed flushes in a row, for the back-off.
    retry: Retry,
}

impl Default for State {
    fn default() -> Self {
        Self {
            running: HashMap::new(),
            statics: HashMap::new(),
            static_names: HashMap::new(),
            pending: BTreeMap::new(),
            gated: HashMap::new(),
            garbage: Changes::default(),
            synced: false,
            retry: Retry::new(API_SERVER),
        }
    }
}

impl State {
    async fn record(&mut self, reporter: &Reporter, event: Progress) {
        match event {
            Progress::Synced => {
                self.synced = true;
                self.garbage.everything = true;
            }
            Progress::Status(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                match source_of(&pod) {
                    Some(SourceId::File) => {
                        if self.statics.insert(uid.clone(), pod.clone()).is_none() {
                            self.static_names
                                .entry(namespace_and_name(&pod))
                                .or_default()
                                .push(uid.clone());
                        }
                        // Its mirror may be stale now.
                        self.garbage.add(namespace_and_name(&pod));
                    }
                    _ => {
                        self.running.insert(uid.clone(), namespace_and_name(&pod));
                        if has_readiness_gates(&pod) {
                            self.gated.insert(uid.clone(), pod.clone());
                        }
                    }
                }
                self.pending.insert(uid, pod);
            }
            Progress::Removed { uid } => {
                if let Some(name) = self.running.remove(&uid) {
                    // Deleted in the API, it waited for its units to go.
                    self.garbage.add(name);
                }
                self.pending.remove(&uid);
                if let Some(pod) = self.statics.remove(&uid) {
                    let name = namespace_and_name(&pod);
                    self.garbage.add(name.clone());
                    if let Some(uids) = self.static_names.get_mut(&name) {
                        uids.retain(|other| *other != uid);
                        if uids.is_empty() {
                            self.static_names.remove(&name);
                        }
                    }
                }
                self.gated.remove(&uid);
            }
            Progress::Event {
                pod,
                reason,
                message,
                type_,
            } => reporter.events.publish(&pod, type_, reason, &message).await,
        }
    }

    /// Queues the latest status of every pod with readiness gates: it is patched only if
    /// `Ready` changed with the API's conditions.
    fn requeue_gated(&mut self) {
        for (uid, pod) in &self.gated {
            self.pending
                .entry(uid.clone())
                .or_insert_with(|| pod.clone());
        }
    }

    fn retry_in(&self) -> Option<Duration> {
        self.retry.pending_delay()
    }

    /// Sends what is pending, deletes what finished terminating and mirrors that are
    /// stale; remembers failures for a retry.
    async fn flush(&mut self, reporter: &Reporter) {
        let mut failed = false;
        let pending = std::mem::take(&mut self.pending);
        for (uid, pod) in pending {
            let report = async {
                match source_of(&pod) {
                    Some(SourceId::File) => report_static(reporter, &pod).await,
                    _ => patch_status(reporter, &uid, &pod).await,
                }
            };
            let result = super::bounded("report status of pod", name_of(&pod), report).await;
            if let Err(err) = result {
                tracing::warn!(pod_uid = %uid, error = %crate::error_chain::Chain(&err), "cannot report pod status");
                if err.is_transient() {
                    failed = true;
                    self.pending.insert(uid, pod);
                }
            }
        }
        if self.synced {
            failed |= self.collect_garbage(reporter).await.is_err();
        }
        if failed {
            self.retry.failed();
        } else {
            self.retry.succeeded();
        }
    }

    /// Deletes (grace 0) API pods being deleted that no longer run here, and mirror pods
    /// whose static pod is gone or changed, among the cached pods that changed (in the
    /// cache or here) since the last pass; every cached pod after a relist, the first
    /// sync, or a failed pass.
    async fn collect_garbage(&mut self, reporter: &Reporter) -> Result<()> {
        let garbage = std::mem::take(&mut self.garbage);
        let candidates: Vec<Arc<Pod>> = if garbage.everything {
            reporter.store.state()
        } else {
            garbage
                .names
                .iter()
                .filter_map(|(namespace, name)| {
                    reporter.store.get(&ObjectRef::new(name).within(namespace))
                })
                .collect()
        };
        let result = self.delete_garbage(reporter, candidates).await;
        if result.is_err() {
            self.garbage.everything = true;
        }
        result
    }

    async fn delete_garbage(&self, reporter: &Reporter, candidates: Vec<Arc<Pod>>) -> Result<()> {
        let mut result = Ok(());
        for pod in candidates {
            let uid = pod.metadata.uid.as_deref().unwrap_or_default();
            let outcome = if is_mirror(&pod) {
                let current = self
                    .static_names
                    .get(&namespace_and_name(&pod))
                    .into_iter()
                    .flatten()
                    .filter_map(|uid| self.statics.get(uid))
                    .any(|s| mirror::is_current(&pod, s));
                if current {
                    continue;
                }
                let api = pods_in(reporter, &pod);
                let delete = mirror::delete(&api, name_of(&pod), uid);
                super::bounded("delete mirror pod", name_of(&pod), delete).await
            } else if pod.metadata.deletion_timestamp.is_some() && !self.running.contains_key(uid) {
                let delete = delete_terminated(reporter, &pod, uid);
                super::bounded("delete pod", name_of(&pod), delete).await
            } else {
                continue;
            };
            if let Err(err) = outcome {
                tracing::warn!(pod = %name_of(&pod), error = %crate::error_chain::Chain(&err), "cannot delete a pod");
                result = Err(err);
            }
        }
        result
    }
}

fn source_of(pod: &Pod) -> Option<SourceId> {
    let annotations = pod.metadata.annotations.as_ref()?;
    match annotations.get(CONFIG_SOURCE_ANNOTATION)?.as_str() {
        "file" => Some(SourceId::File),
        "api" => Some(SourceId::Api),
        _ => None,
    }
}

fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

fn pods_in(reporter: &Reporter, pod: &Pod) -> Api<Pod> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    Api::namespaced(reporter.client.clone(), namespace)
}

/// The cached API pod named like `pod`, if it is (or is not) a mirror pod: one lookup by
/// namespace/name, which the API keeps unique.
fn cached(reporter: &Reporter, pod: &Pod, mirror: bool) -> Option<Arc<Pod>> {
    let mut key = ObjectRef::new(name_of(pod));
    if let Some(namespace) = &pod.metadata.namespace {
        key = key.within(namespace);
    }
    reporter
        .store
        .get(&key)
        .filter(|candidate| is_mirror(candidate) == mirror)
}

/// A pod's namespace (`default` when it names none) and name.
fn namespace_and_name(pod: &Pod) -> (String, String) {
    (
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        name_of(pod).to_owned(),
    )
}

/// Patches the status of API pod `uid` unless the API already shows it.
async fn patch_status(reporter: &Reporter, uid: &str, pod: &Pod) -> Result<()> {
    let Some(current) = cached(reporter, pod, false) else {
        return Ok(());
    };
    if current.metadata.uid.as_deref() != Some(uid) {
        return Ok(());
    }
    send_status(reporter, &current, pod.status.as_ref(), true).await
}

/// Makes sure the static pod's mirror exists and is current, then reports its status.
async fn report_static(reporter: &Reporter, pod: &Pod) -> Result<()> {
    let Some(node_uid) = reporter.node_uid.borrow().clone() else {
        return Err(not_registered(pod));
    };
    let api = pods_in(reporter, pod);
    let mirror = match cached(reporter, pod, true) {
        Some(mirror) if mirror::is_current(&mirror, pod) => mirror,
        stale => {
            if let Some(stale) = stale {
                let uid = stale.metadata.uid.as_deref().unwrap_or_default();
                mirror::delete(&api, name_of(&stale), uid).await?;
            }
            let uid = mirror::create(&api, pod, &reporter.node_name, &node_uid).await?;
            let mut created = mirror::mirror_of(pod, &reporter.node_name, &node_uid);
            created.metadata.uid = Some(uid);
            Arc::new(created)
        }
    };
    send_status(reporter, &mirror, pod.status.as_ref(), false).await
}

fn not_registered(pod: &Pod) -> Error {
    Error::NodeNotRegistered {
        pod: name_of(pod).to_owned(),
    }
}

/// Patches `target`'s status towards `status` (see [`status_patch`]) when they differ.
/// For an API pod (`gated`) `Ready` is first held to its readiness gates, checked against
/// the conditions the API holds (other writers set them); a mirror pod's gates were
/// already checked against its static pod's conditions, which are none.
async fn send_status(
    reporter: &Reporter,
    target: &Pod,
    status: Option<&PodStatus>,
    gated: bool,
) -> Result<()> {
    let Some(status) = status else {
        return Ok(());
    };
    let status = if gated {
        with_readiness_gates(target, status, crate::clock::now())
    } else {
        status.clone()
    };
    let uid = target.metadata.uid.as_deref().unwrap_or_default();
    let name = name_of(target);
    let Some(patch) = status_patch(uid, target.status.as_ref(), &status) else {
        return Ok(());
    };
    match pods_in(reporter, target)
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        // Gone or replaced by a pod with another UID: nothing to report to.
        Err(kube::Error::Api(answer)) if matches!(answer.code, 404 | 409) => Ok(()),
        Err(err) => Err(Error::api("patch status of pod", name)(err)),
    }
}

/// `status` with `Ready` held to the readiness gates of the API pod `api`, whose
/// conditions say whether they are met.
fn with_readiness_gates(api: &Pod, status: &PodStatus, now: Timestamp) -> PodStatus {
    let conditions = api
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let gates = ReadinessGates::with_conditions(api, conditions);
    let previous_ready = conditions.iter().find(|c| c.type_ == "Ready");
    gate_ready(status, &gates, previous_ready, now)
}

/// Whether `pod` has readiness gates, so a change of its API conditions can change its
/// `Ready`.
fn has_readiness_gates(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.readiness_gates.as_ref())
        .is_some_and(|gates| !gates.is_empty())
}

/// Deletes with grace 0 a pod whose deletion was requested and whose units are gone.
async fn delete_terminated(reporter: &Reporter, pod: &Pod, uid: &str) -> Result<()> {
    let name = name_of(pod);
    let params = delete_at_once(uid);
    match pods_in(reporter, pod).delete(name, &params).await {
        Ok(_) => {
            tracing::info!(pod = %name, pod_uid = %uid, "pod deleted after its containers stopped");
            Ok(())
        }
        Err(kube::Error::Api(answer)) if matches!(answer.code, 404 | 409) => Ok(()),
        Err(err) => Err(Error::api("delete pod", name)(err)),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodReadinessGate, PodSpec};

    use super::*;

    #[test]
    fn issue_14_the_api_conditions_open_a_readiness_gate() {
        let condition = |type_: &str, status: &str| PodCondition {
            type_: type_.into(),
            status: status.into(),
            ..PodCondition::default()
        };
        let api = Pod {
            spec: Some(PodSpec {
                readiness_gates: Some(vec![PodReadinessGate {
                    condition_type: "example.com/lb".into(),
                }]),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                conditions: Some(vec![condition("example.com/lb", "True")]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        assert!(has_readiness_gates(&api));
        let computed = PodStatus {
            conditions: Some(vec![
                condition("Ready", "False"),
                condition("ContainersReady", "True"),
            ]),
            ..PodStatus::default()
        };
        let status = with_readiness_gates(&api, &computed, crate::clock::now());
        assert_eq!(status.conditions.unwrap()[0].status, "True");
    }
}
