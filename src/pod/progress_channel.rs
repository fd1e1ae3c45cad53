//! The bounded channel that carries [`Progress`] from the reconciler to the agent and on to
//! the cluster's status reporter. Layer 4; no I/O.
//!
//! A status is only worth its latest value: while a pod's status (or its removal) waits
//! unsent, a newer one for the same pod takes its place, keeping the older one's place in
//! line. So the pod slots hold at most one entry per pod the reconciler knows, however
//! slow the reader (an API server outage holds up the status reporter), and a removal is
//! never lost: it replaces the pod's pending status. Events are separate facts and cannot
//! be merged; they queue up to [`EVENT_CAPACITY`], and when that is full a new event is
//! dropped, counted, and the count logged at warning level (the kubelet's event
//! broadcaster drops events the same way when its queue is full). `Synced` is a flag.
//! Sending never waits, so a pass never blocks on a slow reader.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;

use super::Progress;

/// Events that may wait unsent. Far more than one burst of pods produces (a few events
/// per container start), small enough that an API outage cannot grow memory unbounded.
pub const EVENT_CAPACITY: usize = 1024;

/// Creates a channel holding at most `event_capacity` events (and one status or removal
/// per pod).
pub fn progress_channel(event_capacity: usize) -> (ProgressSender, ProgressReceiver) {
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            senders: 1,
            ..Inner::default()
        }),
        wake: Notify::new(),
        event_capacity,
    });
    (
        ProgressSender {
            shared: shared.clone(),
        },
        ProgressReceiver { shared },
    )
}

/// Sends progress; clone it for each producer. The channel closes when every sender is
/// dropped.
#[derive(Debug)]
pub struct ProgressSender {
    shared: Arc<Shared>,
}

/// Receives progress, in the order first sent, with statuses merged per pod.
#[derive(Debug)]
pub struct ProgressReceiver {
    shared: Arc<Shared>,
}

/// What became of a [`ProgressSender::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued behind what waits.
    Queued,
    /// Took the place of an unsent status (or removal) of the same pod.
    Replaced,
    /// An event found the event queue full and was dropped (and counted).
    Dropped,
    /// The receiver is gone; nobody listens any more.
    Closed,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the one receiver; a permit is stored when it is not waiting.
    wake: Notify,
    event_capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// What to deliver, in order.
    order: VecDeque<Entry>,
    /// The latest unsent status or removal per pod UID; each has one `Entry::Pod` in
    /// `order`.
    pods: HashMap<String, Progress>,
    /// How many `Entry::Event`s are in `order`.
    events: usize,
    /// Events dropped since the receiver last heard of it.
    dropped: u64,
    senders: usize,
    receiver_gone: bool,
}

#[derive(Debug)]
enum Entry {
    Pod(String),
    Event(Progress),
    Synced,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; recover the data if something did.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ProgressSender {
    /// Hands `progress` to the receiver without waiting; see [`Sent`] for what became of
    /// it. Callers that do not care may ignore the answer: a dropped event is logged here.
    pub fn send(&self, progress: Progress) -> Sent {
        let sent = {
            let mut inner = self.shared.lock();
            if inner.receiver_gone {
                return Sent::Closed;
            }
            match progress {
                Progress::Synced => {
                    inner.order.push_back(Entry::Synced);
                    Sent::Queued
                }
                Progress::Status(ref pod) => {
                    let uid = uid_of(pod);
                    inner.put_pod(uid, progress)
                }
                Progress::Removed { ref uid } => {
                    let uid = uid.clone();
                    inner.put_pod(uid, progress)
                }
                Progress::Event { .. } if inner.events >= self.shared.event_capacity => {
                    inner.dropped = inner.dropped.saturating_add(1);
                    Sent::Dropped
                }
                Progress::Event { .. } => {
                    inner.events += 1;
                    inner.order.push_back(Entry::Event(progress));
                    Sent::Queued
                }
            }
        };
        if sent == Sent::Dropped {
            tracing::warn!(
                capacity = self.shared.event_capacity,
                "the pod event queue is full (is the API server slow?); dropping an event"
            );
        } else {
            // Notify after unlocking: the woken receiver takes the lock at once.
            self.shared.wake.notify_one();
        }
        sent
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().receiver_gone
    }
}

impl Clone for ProgressSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for ProgressSender {
    fn drop(&mut self) {
        let last = {
            let mut inner = self.shared.lock();
            inner.senders = inner.senders.saturating_sub(1);
            inner.senders == 0
        };
        if last {
            self.shared.wake.notify_one();
        }
    }
}

impl ProgressReceiver {
    /// The next progress; `None` once every sender is gone and nothing waits.
    pub async fn recv(&mut self) -> Option<Progress> {
        loop {
            // `notified` is created before looking, so a send in between is not missed
            // (and `notify_one` stores a permit anyway).
            let shared = self.shared.clone();
            let notified = shared.wake.notified();
            if let Some(next) = self.try_recv() {
                return Some(next);
            }
            if shared.lock().senders == 0 {
                return None;
            }
            notified.await;
        }
    }

    /// The next progress if one waits.
    pub fn try_recv(&mut self) -> Option<Progress> {
        let (next, dropped) = {
            let mut inner = self.shared.lock();
            let dropped = std::mem::take(&mut inner.dropped);
            (inner.pop(), dropped)
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "pod events were dropped while the event queue was full"
            );
        }
        next
    }
}

impl Drop for ProgressReceiver {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.receiver_gone = true;
        inner.order.clear();
        inner.pods.clear();
        inner.events = 0;
    }
}

impl Inner {
    /// Puts the latest status or removal of `uid` in its slot.
    fn put_pod(&mut self, uid: String, progress: Progress) -> Sent {
        if self.pods.insert(uid.clone(), progress).is_some() {
            Sent::Replaced
        } else {
            self.order.push_back(Entry::Pod(uid));
            Sent::Queued
        }
    }

    fn pop(&mut self) -> Option<Progress> {
        while let Some(entry) = self.order.pop_front() {
            match entry {
                Entry::Synced => return Some(Progress::Synced),
                Entry::Event(event) => {
                    self.events = self.events.saturating_sub(1);
                    return Some(event);
                }
                Entry::Pod(uid) => {
                    // Every `Entry::Pod` has its slot; skip one that has not, rather than
                    // stop delivering.
                    if let Some(progress) = self.pods.remove(&uid) {
                        return Some(progress);
                    }
                }
            }
        }
        None
    }
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
