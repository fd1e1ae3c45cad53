//! The reconciler's bookkeeping: which pods need a pass, which have one running, which
//! units belong to which pod, when pods want their next pass and how long a failed one
//! waits. It decides which pods get a pass now ([`Bookkeeping::dispatch`]) and takes in
//! what each pass found ([`Bookkeeping::finished`], [`Bookkeeping::panicked`]); running
//! the passes, listing the machine and the event loop are the reconciler's. No I/O; the
//! time comes in as a parameter, so tests drive it with plain values. Layer 4.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use super::MAX_CONCURRENT_PASSES;
use crate::backoff::Retry;
use crate::error_chain::Chain;
use crate::pod::admission::NodeUsage;
use crate::pod::container_unit::{containers, unit_name};
use crate::pod::desired::{DesiredPods, SourceId, SourceUpdate};
use crate::pod::error::Result;
use crate::pod::failure;
use crate::pod::objects::{ObjectChange, pod_uses};
use crate::pod::progress::Progress;
use crate::pod::progress_channel::ProgressSender;
use crate::pod::worker::{Pass, PodState};
use crate::unit::UnitName;

mod admission;
mod wakes;

use wakes::Wakes;

/// A pass to start now: the pod, what it is desired to be and what it kept.
#[derive(Debug)]
pub(super) struct Dispatch {
    /// The pod's UID.
    pub(super) uid: String,
    /// The desired pod; `None` when it is no longer desired (a cleanup).
    pub(super) pod: Option<Arc<Pod>>,
    /// What the pod kept between passes, lent to the pass until it finishes.
    pub(super) state: PodState,
}

/// What the reconciler knows about the pods between its events.
pub(super) struct Bookkeeping {
    desired: DesiredPods,
    /// Pods with units or a pass behind them, by UID; taken out while a pass runs.
    states: HashMap<String, PodState>,
    /// Which pod a unit belongs to.
    owners: HashMap<UnitName, String>,
    /// The units each pod was last known to own: `owners` the other way round.
    owned: HashMap<String, Vec<UnitName>>,
    /// Pods that need a pass.
    dirty: BTreeSet<String>,
    /// Pods whose pass is running.
    running: HashSet<String>,
    /// Units that changed while a pass ran but that no pod owned yet: a pass that creates
    /// units learns of them only when it finishes, and must not miss their first change.
    unowned_changes: HashSet<UnitName>,
    /// When pods want their next pass.
    wakes: Wakes,
    /// Pods whose last pass failed, with their growing retry delay.
    retries: HashMap<String, Retry>,
    /// Desired pods admitted to run (see [`Bookkeeping::admit_new`]).
    admitted: HashSet<String>,
    /// Desired pods refused at admission (or finished before systemk saw them): they
    /// get no pass but their termination.
    refused: HashSet<String>,
    /// What the admitted desired pods that have not finished hold of the node.
    usage: NodeUsage,
    /// The CPU each of those in the Burstable tier requests, in millicores, and the sum
    /// (wide enough to take back exactly what was added).
    burstable: HashMap<String, u64>,
    burstable_millis: u128,
    progress: ProgressSender,
    /// Whether `Progress::Synced` was sent.
    synced: bool,
}

impl Bookkeeping {
    /// Nothing known yet; the desired set is complete once each of `sources` sent one.
    pub(super) fn new(sources: Vec<SourceId>, progress: ProgressSender) -> Self {
        Self {
            desired: DesiredPods::new(sources),
            states: HashMap::new(),
            owners: HashMap::new(),
            owned: HashMap::new(),
            dirty: BTreeSet::new(),
            running: HashSet::new(),
            unowned_changes: HashSet::new(),
            wakes: Wakes::default(),
            retries: HashMap::new(),
            admitted: HashSet::new(),
            refused: HashSet::new(),
            usage: NodeUsage::default(),
            burstable: HashMap::new(),
            burstable_millis: 0,
            progress,
            synced: false,
        }
    }

    /// Takes over pods found on the machine, with their units (none for a pod that has
    /// only its directory left): each gets a pass once the sources are synced, which
    /// keeps what is still desired running untouched and removes the rest.
    pub(super) fn adopt(&mut self, pods: impl IntoIterator<Item = (String, Vec<UnitName>)>) {
        for (uid, units) in pods {
            for name in &units {
                self.owners.insert(name.clone(), uid.clone());
            }
            self.owned.insert(uid.clone(), units.clone());
            self.states.insert(uid.clone(), PodState::adopted(units));
            self.dirty.insert(uid);
        }
    }

    /// A source sent its desired set: the pods it changed need a pass.
    pub(super) fn apply(&mut self, update: SourceUpdate) {
        let source = update.source;
        let applied = self.desired.apply(update);
        for rejected in applied.rejected {
            tracing::warn!(source = %source, ?rejected, "a desired pod was rejected");
        }
        for uid in &applied.changed {
            if self.desired.get(uid).is_none() {
                self.refused.remove(uid);
            }
            self.recount(uid);
            self.forget_if_gone(uid);
        }
        self.dirty.extend(applied.changed);
    }

    /// systemd announced a change of the unit `name`: its pod needs a pass.
    pub(super) fn unit_changed(&mut self, name: &UnitName) {
        if let Some(uid) = self.owners.get(name) {
            self.dirty.insert(uid.clone());
        } else if !self.running.is_empty() {
            self.unowned_changes.insert(name.clone());
        }
    }

    /// Every desired pod naming the object gets a pass: its volume files follow the
    /// object, and a preparation that waited for it retries at once.
    pub(super) fn object_changed(&mut self, change: &ObjectChange) {
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

    /// Every known pod needs a pass (signals or changes may have been missed).
    pub(super) fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.states.keys().cloned());
        self.dirty
            .extend(self.desired.iter().map(|(uid, _)| uid.to_owned()));
    }

    /// The pods whose wake time is `now` or earlier need a pass.
    pub(super) fn wake_due(&mut self, now: Instant) {
        self.dirty.extend(self.wakes.take_due(now));
    }

    /// How many pods need a pass it could start: dirty, none running, and not held back
    /// until the sources sync (an API server that is down is not a stuck reconciler).
    pub(super) fn queued(&self) -> usize {
        let all_synced = self.desired.is_synced();
        self.dirty
            .iter()
            .filter(|uid| !self.running.contains(*uid))
            .filter(|uid| all_synced || self.desired.get(uid).is_some())
            .filter(|uid| self.may_pass(uid))
            .count()
    }

    /// When the earliest pod wants its next pass.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        self.wakes.next()
    }

    /// Takes the dirty pods that get a pass now and counts them as running: not one
    /// already running, at most [`MAX_CONCURRENT_PASSES`] running besides the
    /// `installing` passes (waiting for an install, they do no D-Bus work), and not one
    /// that waits for another pod's units. Until every source has sent its first set only
    /// desired pods get one: a pod missing from the desired set may only be not sent yet
    /// (an API server that is down at start must not hold up the static pods). Sends
    /// `Progress::Synced` the first time every source is synced and no pod is dirty or
    /// running.
    pub(super) fn dispatch(&mut self, installing: usize) -> Vec<Dispatch> {
        let all_synced = self.desired.is_synced();
        let ready: Vec<String> = self
            .dirty
            .iter()
            .filter(|uid| !self.running.contains(*uid))
            .filter(|uid| all_synced || self.desired.get(uid).is_some())
            .filter(|uid| self.may_pass(uid))
            .filter(|uid| !self.waits_for_another_pod(uid))
            .take(
                (MAX_CONCURRENT_PASSES + installing.min(self.running.len()))
                    .saturating_sub(self.running.len()),
            )
            .cloned()
            .collect();
        let mut dispatched = Vec::with_capacity(ready.len());
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
                self.forget_if_gone(&uid);
                continue;
            };
            state.report_events_to(self.progress.clone());
            self.running.insert(uid.clone());
            dispatched.push(Dispatch { uid, pod, state });
        }
        if all_synced && !self.synced && self.dirty.is_empty() && self.running.is_empty() {
            self.synced = true;
            self.progress.send(Progress::Synced);
        }
        dispatched
    }

    /// Whether the pod `uid` may have a pass: one no longer desired (its cleanup), one
    /// being deleted (its termination), or one admitted.
    fn may_pass(&self, uid: &str) -> bool {
        match self.desired.get(uid) {
            None => true,
            Some(pod) => pod.metadata.deletion_timestamp.is_some() || self.admitted.contains(uid),
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

    /// The pass of `uid` finished at `now` with its state and what it found (`None` for
    /// a cleanup, which removed the pod): records the units it owns, its next wake, its
    /// status, or the retry of a failure.
    pub(super) fn finished(
        &mut self,
        uid: String,
        state: PodState,
        result: Result<Option<Pass>>,
        now: Instant,
    ) {
        self.running.remove(&uid);
        for name in self.owned.remove(&uid).unwrap_or_default() {
            if self.owners.get(&name) == Some(&uid) {
                self.owners.remove(&name);
            }
        }
        if result.is_ok() {
            self.retries.remove(&uid);
        }
        match result {
            Ok(None) => {
                self.recount(&uid);
                self.forget_if_gone(&uid);
                self.progress.send(Progress::Removed { uid });
            }
            Ok(Some(pass)) => {
                self.track(&uid, &state);
                if let Some(wake) = pass.wake {
                    self.wake_at(&uid, wake, now);
                }
                if pass.status_changed {
                    self.publish(&uid, &state);
                }
                self.states.insert(uid.clone(), state);
                self.recount(&uid);
            }
            Err(err) => {
                // One that cannot heal waits for the pod to change (a new pass then).
                let delay = err.is_transient().then(|| self.retry_delay(&uid));
                tracing::warn!(pod_uid = %uid, error = %Chain(&err), reason = err.reason(), retry_in = ?delay, "reconcile pass failed");
                self.track(&uid, &state);
                if let Some(delay) = delay {
                    self.wakes.set(&uid, now + delay);
                }
                self.states.insert(uid.clone(), state);
                self.recount(&uid);
            }
        }
    }

    /// The pass of `uid` panicked at `now`, and its state is lost with it. Never take the
    /// reconciler down with it: rebuild the state from the units the pod owned and try
    /// again after the retry back-off.
    pub(super) fn panicked(&mut self, uid: &str, now: Instant) {
        self.running.remove(uid);
        let units = self.owned.get(uid).cloned().unwrap_or_default();
        let state = PodState::adopted(units);
        let delay = self.retry_delay(uid);
        self.wakes.set(uid, now + delay);
        self.states.insert(uid.to_owned(), state);
        self.recount(uid);
    }

    /// Records a failed pass of `uid`; how long until its next try.
    fn retry_delay(&mut self, uid: &str) -> std::time::Duration {
        self.retries
            .entry(uid.to_owned())
            .or_insert_with(|| Retry::new(failure::RETRY))
            .failed()
    }

    fn track(&mut self, uid: &str, state: &PodState) {
        self.owned
            .insert(uid.to_owned(), state.units().iter().cloned().collect());
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

    /// Wakes `uid` at the wall-clock time `at`, on the monotonic clock that reads `now`.
    fn wake_at(&mut self, uid: &str, at: Timestamp, now: Instant) {
        let wait = crate::clock::now().duration_until(at);
        let wait = std::time::Duration::try_from(wait).unwrap_or_default();
        self.wakes.set(uid, now + wait);
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
