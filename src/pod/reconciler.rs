//! The reconciler: one loop, keyed by pod UID, driven by events — updates from the
//! sources of desired pods, systemd's unit signals, and timers for back-offs. Each dirty
//! pod gets a pass ([`super::reconcile`] or [`super::cleanup`]) in its own task, at most
//! one at a time per pod and [`MAX_CONCURRENT_PASSES`] overall, so a slow package install
//! never holds up other pods. Nothing is found by scanning periodically. Layer 4.
//!
//! This file holds the effects: the event loop, listing the machine at start, running
//! the passes ([`Passes`]) and keeping the Burstable QoS slice's weight at what its pods
//! request. Which pod gets a pass when, and what a finished pass changes,
//! is the pure [`Bookkeeping`], unit-tested on its own.

mod bookkeeping;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt as _;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::context::Context;
use super::desired::{SourceId, SourceUpdate};
use super::error::Result;
use super::health::ReconcilerHealth;
use super::objects::ObjectChange;
use super::progress_channel::ProgressSender;
use super::worker::{self, Pass, PodState};
use crate::package::{Holder, ImageRef};
use crate::unit::UnitName;
use bookkeeping::{Bookkeeping, Dispatch};

/// Pod passes running at once, not counting those installing an image
/// ([`super::installing`]): this bounds the D-Bus traffic of a burst of new pods.
pub const MAX_CONCURRENT_PASSES: usize = 16;

/// Probe results waiting to wake their pods. A probe task whose result changed waits
/// for room, so none is lost; the loop reads them as fast as unit signals.
const PROBE_WAKES: usize = 256;

/// Keeps the machine equal to the desired pods until `shutdown` completes (or the sources
/// are gone), then lets the passes in flight finish. Pods keep running when it returns:
/// their units are independent of systemk. Publishes its [`ReconcilerHealth`] on
/// `health` after every event, for the node's `Ready` condition.
pub async fn run(
    ctx: Arc<Context>,
    sources: Vec<SourceId>,
    mut updates: mpsc::Receiver<SourceUpdate>,
    progress: ProgressSender,
    health: watch::Sender<ReconcilerHealth>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut events = ctx.systemd.subscribe().await?;
    let mut object_changes = ctx.objects.as_ref().map(|objects| objects.changes());
    let mut book = Bookkeeping::new(sources, progress);
    book.adopt(found_pods(&ctx).await?);
    let mut passes = Passes::default();
    let (probe_wakes, mut probe_woken) = mpsc::channel(PROBE_WAKES);
    let mut node_view = ctx.node_view.clone();
    // Without a Node in the API nobody changes the view: stop listening once it is gone.
    let mut node_view_open = true;
    // What `systemk-burstable.slice` was last written with.
    let mut burstable_written: Option<u64> = None;
    tokio::pin!(shutdown);
    loop {
        book.admit_new(&ctx.node_view.borrow(), crate::clock::now());
        if let Some(millis) = book.burstable_cpu_millis()
            && burstable_written != Some(millis)
        {
            // Tried once per change: a failure is logged, the next change tries again.
            burstable_written = Some(millis);
            if let Err(err) = write_burstable_slice(&ctx, millis).await {
                tracing::warn!(error = %crate::error_chain::Chain(&err), "cannot write systemk-burstable.slice");
            }
        }
        for mut dispatch in book.dispatch(ctx.installing.count()) {
            dispatch.state.wake_probes_through(probe_wakes.clone());
            passes.spawn(&ctx, dispatch);
        }
        let queued = book.queued();
        health.send_if_modified(|health| {
            let before = health.clone();
            health.set_queued(queued, Instant::now());
            *health != before
        });
        let next_wake = book.next_wake();
        tokio::select! {
            () = &mut shutdown => break,
            update = updates.recv() => match update {
                Some(update) => book.apply(update),
                None => break,
            },
            event = events.next() => match event {
                Some(event) => book.unit_changed(&event.name),
                None => {
                    tracing::warn!("the systemd signal stream ended; subscribing again");
                    events = ctx.systemd.subscribe().await?;
                    book.mark_all_dirty();
                }
            },
            change = next_change(&mut object_changes) => match change {
                Ok(change) => book.object_changed(&change),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "missed changes of configMaps and secrets; resyncing every pod");
                    book.mark_all_dirty();
                }
                Err(broadcast::error::RecvError::Closed) => object_changes = None,
            },
            changed = node_view.changed(), if node_view_open => {
                // Pods waiting for the Node are admitted on the next turn of the loop.
                node_view_open = changed.is_ok();
            }
            Some(unit) = probe_woken.recv() => book.unit_changed(&unit),
            Some(joined) = passes.join_next() => joined.record(&mut book, &health),
            // A pass waits for an install: another may start in its place.
            () = ctx.installing.entered() => {}
            () = sleep_until(next_wake) => book.wake_due(Instant::now()),
        }
    }
    // No new passes from here on; the ones in flight finish, so their statuses and events
    // still go out. The owner's grace period bounds this: it aborts the task, and dropping
    // the `JoinSet` aborts the passes.
    while let Some(joined) = passes.join_next().await {
        joined.record(&mut book, &health);
    }
    Ok(())
}

/// The pods on this machine, from an earlier run of systemk or from before a reboot: the
/// units systemk manages, by pod, and the pod directories and pod slices without units.
async fn found_pods(ctx: &Context) -> Result<HashMap<String, Vec<UnitName>>> {
    let managed = ctx.systemd.list_managed(&ctx.unit_dir).await?;
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
            ctx.installer
                .adopt(&holder, &image, &unit.meta.image_id)
                .await;
        }
        by_pod
            .entry(unit.meta.pod_uid.clone())
            .or_default()
            .push(unit.status.name);
    }
    for uid in ctx.dirs.list_async().await? {
        by_pod.entry(uid).or_default();
    }
    // A pod slice left behind (systemk stopped between removing a pod's units and its
    // slice) gets its pod a pass too, whose cleanup removes it.
    for (_, uid) in ctx.systemd.list_pod_slices(&ctx.unit_dir).await? {
        by_pod.entry(uid).or_default();
    }
    tracing::info!(
        pods = by_pod.len(),
        "adopting the pods found on this machine"
    );
    Ok(by_pod)
}

/// Writes `systemk-burstable.slice` with the CPU weight of `millis`, the Burstable pods'
/// requests, as the kubelet's QoS manager sets the Burstable cgroup's shares; written only
/// when it changed, and systemd applies it to the running slice.
async fn write_burstable_slice(ctx: &Context, millis: u64) -> Result<()> {
    let unit = crate::unit::burstable_slice_unit(millis)?;
    let name = crate::unit::SliceName::of_tier(crate::unit::QosTier::Burstable);
    ctx.systemd
        .write_slices(&ctx.unit_dir, &[(name, unit.render())])
        .await?;
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

/// The passes in flight, each in its own task, with the pod each works on.
#[derive(Default)]
struct Passes {
    tasks: JoinSet<PassResult>,
    /// Which pod each running pass works on, to recover from a pass that panicked.
    pods: HashMap<tokio::task::Id, String>,
}

/// How a pass task ended.
#[derive(Debug)]
enum Joined {
    /// It returned (boxed: a pod's state is large, a panic's UID small).
    Finished(Box<PassResult>),
    /// It panicked (or was aborted); the UID of its pod, if the task was known.
    Panicked(Option<String>),
}

impl Passes {
    /// Runs the pass of `dispatch` in its own task: a reconcile of a desired pod, the
    /// termination of one being deleted, or the cleanup of one no longer desired.
    fn spawn(&mut self, ctx: &Arc<Context>, dispatch: Dispatch) {
        let Dispatch {
            uid,
            pod,
            mut state,
        } = dispatch;
        let ctx = ctx.clone();
        let pass_uid = uid.clone();
        self.start(uid, async move {
            let uid = pass_uid;
            let started = Instant::now();
            let (kind, result) = match &pod {
                Some(pod) if pod.metadata.deletion_timestamp.is_some() => (
                    "terminate",
                    worker::terminate(&ctx, &uid, pod, &mut state)
                        .await
                        .map(|()| None),
                ),
                Some(pod) => (
                    "reconcile",
                    worker::reconcile(&ctx, &uid, pod, &mut state)
                        .await
                        .map(Some),
                ),
                None => (
                    "cleanup",
                    worker::cleanup(&ctx, &uid, &mut state).await.map(|()| None),
                ),
            };
            let seconds = started.elapsed().as_secs_f64();
            let failure = result.as_ref().err().map(|err| err.reason());
            ctx.metrics.pass(kind, failure, seconds);
            (uid, state, result)
        });
    }

    /// Runs `pass` for the pod `uid` in its own task.
    fn start(&mut self, uid: String, pass: impl Future<Output = PassResult> + Send + 'static) {
        let task = self.tasks.spawn(pass);
        self.pods.insert(task.id(), uid);
    }

    /// The next pass to end; `None` when none runs.
    async fn join_next(&mut self) -> Option<Joined> {
        let joined = match self.tasks.join_next_with_id().await? {
            Ok((id, done)) => {
                self.pods.remove(&id);
                Joined::Finished(Box::new(done))
            }
            Err(err) => {
                tracing::error!(error = %err, "a reconcile pass panicked");
                Joined::Panicked(self.pods.remove(&err.id()))
            }
        };
        Some(joined)
    }
}

impl Joined {
    /// Tells the bookkeeping how the pass ended, and the health that one did.
    fn record(self, book: &mut Bookkeeping, health: &watch::Sender<ReconcilerHealth>) {
        let now = Instant::now();
        match self {
            Joined::Finished(done) => {
                let (uid, state, result) = *done;
                health.send_modify(|health| health.pass_finished(&result, now));
                book.finished(uid, state, result, now);
            }
            Joined::Panicked(uid) => {
                // A panic is a bug, not a stuck reconciler: it still ended a pass.
                health.send_modify(|health| health.progress_at = now);
                if let Some(uid) = uid {
                    book.panicked(&uid, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
