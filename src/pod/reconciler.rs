//! The reconciler: one loop, keyed by pod UID, driven by events — updates from the
//! sources of desired pods, systemd's unit signals, and timers for back-offs. Each dirty
//! pod gets a pass ([`super::reconcile`] or [`super::cleanup`]) in its own task, at most
//! one at a time per pod and [`MAX_CONCURRENT_PASSES`] overall, so a slow package install
//! never holds up other pods. Nothing is found by scanning periodically. Layer 4.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::container_unit::{containers, unit_name};
use super::context::Context;
use super::desired::{DesiredPods, SourceId, SourceUpdate};
use super::error::Result;
use super::failure;
use super::objects::{ObjectChange, pod_uses};
use super::progress::Progress;
use super::progress_channel::ProgressSender;
use super::worker::{self, Pass, PodState};
use crate::backoff::Retry;
use crate::error_chain::Chain;
use crate::package::{Holder, ImageRef};
use crate::unit::UnitName;

/// Pod passes running at once. Installs are serialised by the package layer anyway; this
/// bounds the D-Bus traffic of a burst of new pods.
pub const MAX_CONCURRENT_PASSES: usize = 16;

/// Keeps the machine equal to the desired pods until `shutdown` completes (or the sources
/// are gone), then lets the passes in flight finish. Pods keep running when it returns:
/// their units are independent of systemk.
pub async fn run(
    ctx: Arc<Context>,
    sources: Vec<SourceId>,
    mut updates: mpsc::Receiver<SourceUpdate>,
    progress: ProgressSender,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut events = ctx.systemd.subscribe().await?;
    let mut object_changes = ctx.objects.as_ref().map(|objects| objects.changes());
    let mut reconciler = Reconciler::new(ctx.clone(), sources, progress);
    reconciler.adopt().await?;
    tokio::pin!(shutdown);
    loop {
        reconciler.dispatch();
        let next_wake = reconciler.next_wake();
        tokio::select! {
            () = &mut shutdown => break,
            update = updates.recv() => match update {
                Some(update) => reconciler.apply(update),
                None => break,
            },
            event = events.next() => match event {
                Some(event) => reconciler.unit_changed(&event.name),
                None => {
                    tracing::warn!("the systemd signal stream ended; subscribing again");
                    events = ctx.systemd.subscribe().await?;
                    reconciler.mark_all_dirty();
                }
            },
            change = next_change(&mut object_changes) => match change {
                Ok(change) => reconciler.object_changed(&change),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "missed changes of configMaps and secrets; resyncing every pod");
                    reconciler.mark_all_dirty();
                }
                Err(broadcast::error::RecvError::Closed) => object_changes = None,
            },
            Some(done) = reconciler.passes.join_next_with_id() => reconciler.finished(done),
            () = sleep_until(next_wake) => reconciler.wake_due(),
        }
    }
    // No new passes from here on; the ones in flight finish, so their statuses and events
    // still go out. The owner's grace period bounds this: it aborts the task, and dropping
    // the `JoinSet` aborts the passes.
    while let Some(done) = reconciler.passes.join_next_with_id().await {
        reconciler.finished(done);
    }
    Ok(())
}

/// The next announced change of a configMap or secret; never, without an API server.
async fn next_change(
    changes: &mut Option<broadcast::Receiver<ObjectChange>>,
) -> Result<ObjectChange, broadcast::error::RecvError> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A finished pass: the pod, its state, what the pass found (`None` for a cleanup).
type PassResult = (String, PodState, Result<Option<Pass>>);

struct Reconciler {
    ctx: Arc<Context>,
    desired: DesiredPods,
    /// Pods with units or a pass behind them, by UID; taken out while a pass runs.
    states: HashMap<String, PodState>,
    /// Which pod a unit belongs to.
    owners: HashMap<UnitName, String>,
    /// Pods that need a pass.
    dirty: BTreeSet<String>,
    /// Pods whose pass is running.
    running: HashSet<String>,
    /// Units that changed while a pass ran but that no pod owned yet: a pass that creates
    /// units learns of them only when it finishes, and must not miss their first change.
    unowned_changes: HashSet<UnitName>,
    /// When pods want their next pass.
    wakes: HashMap<String, Instant>,
    /// Pods whose last pass failed, with their growing retry delay.
    retries: HashMap<String, Retry>,
    passes: JoinSet<PassResult>,
    /// Which pod each running pass works on, to recover from a pass that panicked.
    pass_pods: HashMap<tokio::task::Id, String>,
    progress: ProgressSender,
    /// Whether `Progress::Synced` was sent.
    synced: bool,
}

impl Reconciler {
    fn new(ctx: Arc<Context>, sources: Vec<SourceId>, progress: ProgressSender) -> Self {
        Self {
            ctx,
            desired: DesiredPods::new(sources),
            states: HashMap::new(),
            owners: HashMap::new(),
            dirty: BTreeSet::new(),
            running: HashSet::new(),
            unowned_changes: HashSet::new(),
            wakes: HashMap::new(),
            retries: HashMap::new(),
            passes: JoinSet::new(),
            pass_pods: HashMap::new(),
            progress,
            synced: false,
        }
    }

    /// Takes over the units that exist (from an earlier run of systemk, or from before a
    /// reboot): each pod gets a pass once the sources are synced, which keeps what is
    /// still desired running untouched and removes the rest.
    async fn adopt(&mut self) -> Result<()> {
        let managed = self.ctx.systemd.list_managed(&self.ctx.unit_dir).await?;
        let mut by_pod: HashMap<String, Vec<UnitName>> = HashMap::new();
        for unit in managed {
            // Before any pod is prepared again: no pass may change a package version a
            // running pod uses.
            if let Ok(image) = unit.meta.image.parse::<ImageRef>() {
                let holder = Holder {
                    owner: unit.meta.pod_uid.clone(),
                    slot: unit.meta.container.clone(),
                    name: format!("{}/{}", unit.meta.namespace, unit.meta.pod_name),
                };
                self.ctx
                    .installer
                    .adopt(&holder, &image, &unit.meta.image_id)
                    .await;
            }
            by_pod
                .entry(unit.meta.pod_uid.clone())
                .or_default()
                .push(unit.status.name);
        }
        for uid in self.ctx.dirs.list_async().await? {
            by_pod.entry(uid).or_default();
        }
        tracing::info!(
            pods = by_pod.len(),
            "adopting the pods found on this machine"
        );
        for (uid, units) in by_pod {
            for name in &units {
                self.owners.insert(name.clone(), uid.clone());
            }
            self.states.insert(uid.clone(), PodState::adopted(units));
            self.dirty.insert(uid);
        }
        Ok(())
    }

    fn apply(&mut self, update: SourceUpdate) {
        let source = update.source;
        let applied = self.desired.apply(update);
        for rejected in applied.rejected {
            tracing::warn!(source = %source, ?rejected, "a desired pod was rejected");
        }
        self.dirty.extend(applied.changed);
    }

    fn unit_changed(&mut self, name: &UnitName) {
        if let Some(uid) = self.owners.get(name) {
            self.dirty.insert(uid.clone());
        } else if !self.running.is_empty() {
            self.unowned_changes.insert(name.clone());
        }
    }

    /// Every desired pod naming the object gets a pass: its volume files follow the
    /// object, and a preparation that waited for it retries at once.
    fn object_changed(&mut self, change: &ObjectChange) {
        let using: Vec<String> = self
            .desired
            .iter()
            .filter(|(_, pod)| pod_uses(pod, change))
            .map(|(uid, _)| uid.to_owned())
            .collect();
        for uid in using {
            if let Some(state) = self.states.get_mut(&uid) {
                state.object_changed();
            }
            self.dirty.insert(uid);
        }
    }

    fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.states.keys().cloned());
        self.dirty
            .extend(self.desired.iter().map(|(uid, _)| uid.to_owned()));
    }

    fn wake_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .wakes
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in due {
            self.wakes.remove(&uid);
            self.dirty.insert(uid);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        self.wakes.values().min().copied()
    }

    /// Starts passes for dirty pods. Until every source has sent its first set only
    /// desired pods get one: a pod missing from the desired set may only be not sent yet
    /// (an API server that is down at start must not hold up the static pods).
    fn dispatch(&mut self) {
        let all_synced = self.desired.is_synced();
        let ready: Vec<String> = self
            .dirty
            .iter()
            .filter(|uid| !self.running.contains(*uid))
            .filter(|uid| all_synced || self.desired.get(uid).is_some())
            .filter(|uid| !self.waits_for_another_pod(uid))
            .take(MAX_CONCURRENT_PASSES.saturating_sub(self.running.len()))
            .cloned()
            .collect();
        for uid in ready {
            self.dirty.remove(&uid);
            let pod = self.desired.get(&uid).cloned();
            let Some(mut state) = self
                .states
                .remove(&uid)
                .or_else(|| pod.is_some().then(PodState::default))
            else {
                // Neither desired nor on the machine: cleaned up already (signals of its
                // units' last moments arrive after its cleanup pass).
                continue;
            };
            state.report_events_to(self.progress.clone());
            self.running.insert(uid.clone());
            let ctx = self.ctx.clone();
            let pass_uid = uid.clone();
            let pass = self.passes.spawn(async move {
                let uid = pass_uid;
                let result = match &pod {
                    Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                        worker::terminate(&ctx, &uid, pod, &mut state)
                            .await
                            .map(|()| None)
                    }
                    Some(pod) => worker::reconcile(&ctx, &uid, pod, &mut state)
                        .await
                        .map(Some),
                    None => worker::cleanup(&ctx, &uid, &mut state).await.map(|()| None),
                };
                (uid, state, result)
            });
            self.pass_pods.insert(pass.id(), uid);
        }
        if all_synced && !self.synced && self.dirty.is_empty() && self.running.is_empty() {
            self.synced = true;
            self.progress.send(Progress::Synced);
        }
    }

    /// Whether a desired pod must wait because a unit it would have still belongs to
    /// another pod: one of the same name that left (a manifest moved to another file, an
    /// API pod recreated while systemk was down) and whose cleanup has not finished. Two
    /// pods never work on one unit; the cleanup's end dispatches the waiting pod.
    fn waits_for_another_pod(&self, uid: &str) -> bool {
        let Some(pod) = self.desired.get(uid) else {
            return false;
        };
        containers(pod)
            .iter()
            .filter_map(|container| unit_name(pod, container.container).ok())
            .any(|name| self.owners.get(&name).is_some_and(|owner| owner != uid))
    }

    fn finished(&mut self, done: Result<(tokio::task::Id, PassResult), tokio::task::JoinError>) {
        let (uid, state, result) = match done {
            Ok((id, done)) => {
                self.pass_pods.remove(&id);
                done
            }
            Err(err) => {
                // A pass panicked: its state is lost. Never take the reconciler down with
                // it; rebuild the state from the units it owned and try again later.
                tracing::error!(error = %err, "a reconcile pass panicked");
                if let Some(uid) = self.pass_pods.remove(&err.id()) {
                    self.running.remove(&uid);
                    let units = self
                        .owners
                        .iter()
                        .filter(|(_, owner)| **owner == uid)
                        .map(|(name, _)| name.clone());
                    let state = PodState::adopted(units.collect::<Vec<_>>());
                    let delay = self.retry_delay(&uid);
                    self.wakes.insert(uid.clone(), Instant::now() + delay);
                    self.states.insert(uid, state);
                }
                return;
            }
        };
        self.running.remove(&uid);
        self.owners.retain(|_, owner| *owner != uid);
        if result.is_ok() {
            self.retries.remove(&uid);
        }
        match result {
            Ok(None) => {
                self.progress.send(Progress::Removed { uid });
            }
            Ok(Some(pass)) => {
                self.track(&uid, &state);
                if let Some(wake) = pass.wake {
                    self.wake_at(&uid, wake);
                }
                if pass.status_changed {
                    self.publish(&uid, &state);
                }
                self.states.insert(uid, state);
            }
            Err(err) => {
                // One that cannot heal waits for the pod to change (a new pass then).
                let delay = err.is_transient().then(|| self.retry_delay(&uid));
                tracing::warn!(pod_uid = %uid, error = %Chain(&err), reason = err.reason(), retry_in = ?delay, "reconcile pass failed");
                self.track(&uid, &state);
                if let Some(delay) = delay {
                    self.wakes.insert(uid.clone(), Instant::now() + delay);
                }
                self.states.insert(uid, state);
            }
        }
    }

    /// Records a failed pass of `uid`; how long until its next try.
    fn retry_delay(&mut self, uid: &str) -> std::time::Duration {
        self.retries
            .entry(uid.to_owned())
            .or_insert_with(|| Retry::new(failure::RETRY))
            .failed()
    }

    fn track(&mut self, uid: &str, state: &PodState) {
        for name in state.units() {
            self.owners.insert(name.clone(), uid.to_owned());
            if self.unowned_changes.remove(name) {
                self.dirty.insert(uid.to_owned());
            }
        }
        if self.running.is_empty() {
            self.unowned_changes.clear();
        }
    }

    fn wake_at(&mut self, uid: &str, at: Timestamp) {
        let wait = crate::clock::now().duration_until(at);
        let wait = std::time::Duration::try_from(wait).unwrap_or_default();
        self.wakes.insert(uid.to_owned(), Instant::now() + wait);
    }

    fn publish(&self, uid: &str, state: &PodState) {
        let (Some(pod), Some(status)) = (self.desired.get(uid), state.status()) else {
            return;
        };
        let mut with_status = Pod::clone(pod);
        with_status.status = Some(status.clone());
        self.progress.send(Progress::Status(Arc::new(with_status)));
    }
}
