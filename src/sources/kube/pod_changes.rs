//! Which pods of the watch cache changed since the status reporter last looked: the pod
//! watch records each pod an event touched (or that a relist may have touched every pod)
//! and wakes the reporter, whose garbage pass then looks at those pods only, not at every
//! cached pod after every change. Layer 5.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

/// Pods that changed, by namespace/name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Every pod may have changed (a relist, or a pass that must be done again whole).
    pub everything: bool,
    /// The namespace and name of each pod that changed.
    pub names: BTreeSet<(String, String)>,
}

impl Changes {
    /// Adds `other`'s changes to these.
    pub fn merge(&mut self, other: Changes) {
        self.everything |= other.everything;
        if !self.everything {
            self.names.extend(other.names);
        } else {
            self.names.clear();
        }
    }

    /// Adds the pod `namespace`/`name`.
    pub fn add(&mut self, namespace_and_name: (String, String)) {
        if !self.everything {
            self.names.insert(namespace_and_name);
        }
    }
}

/// A new pair: the pod watch records, the reporter takes.
pub fn channel() -> (ChangesSender, ChangesReceiver) {
    let shared = Arc::new(Mutex::new(Changes::default()));
    let (tick, ticks) = watch::channel(());
    (
        ChangesSender {
            shared: shared.clone(),
            tick,
        },
        ChangesReceiver { shared, ticks },
    )
}

/// The pod watch's end.
#[derive(Debug)]
pub struct ChangesSender {
    shared: Arc<Mutex<Changes>>,
    tick: watch::Sender<()>,
}

impl ChangesSender {
    /// The watch applied or deleted `pod`.
    pub fn changed(&self, pod: &Pod) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        self.record(|changes| changes.add((namespace.to_owned(), name.to_owned())));
    }

    /// The watch listed every pod again.
    pub fn relisted(&self) {
        self.record(|changes| changes.everything = true);
    }

    fn record(&self, change: impl FnOnce(&mut Changes)) {
        change(&mut self.shared.lock().unwrap_or_else(PoisonError::into_inner));
        self.tick.send_replace(());
    }
}

/// The reporter's end.
#[derive(Debug)]
pub struct ChangesReceiver {
    shared: Arc<Mutex<Changes>>,
    ticks: watch::Receiver<()>,
}

impl ChangesReceiver {
    /// Waits until a change is recorded; an error once the pod watch is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.ticks.changed().await
    }

    /// The changes recorded since the last call.
    pub fn take(&self) -> Changes {
        std::mem::take(&mut *self.shared.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn pod(namespace: Option<&str>, name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: namespace.map(str::to_owned),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[tokio::test]
    async fn the_reporter_takes_what_the_watch_recorded_once() {
        let (sender, mut receiver) = channel();
        sender.changed(&pod(Some("web"), "a"));
        sender.changed(&pod(None, "b"));
        receiver.changed().await.unwrap();
        let taken = receiver.take();
        assert!(!taken.everything);
        assert_eq!(
            taken.names.into_iter().collect::<Vec<_>>(),
            [
                ("default".to_owned(), "b".to_owned()),
                ("web".to_owned(), "a".to_owned())
            ]
        );
        assert_eq!(receiver.take(), Changes::default());
        sender.relisted();
        sender.changed(&pod(None, "c"));
        assert_eq!(
            receiver.take(),
            Changes {
                everything: true,
                names: BTreeSet::new()
            }
        );
        drop(sender);
        receiver.changed().await.unwrap();
        assert!(receiver.changed().await.is_err());
    }

    #[test]
    fn merging_keeps_everything_once_set() {
        let mut changes = Changes::default();
        changes.add(("a".to_owned(), "b".to_owned()));
        changes.merge(Changes {
            everything: true,
            names: BTreeSet::new(),
        });
        changes.add(("c".to_owned(), "d".to_owned()));
        assert!(changes.everything && changes.names.is_empty());
    }
}
