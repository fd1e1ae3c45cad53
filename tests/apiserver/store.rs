//! The in-memory object store: objects as `serde_json::Value` keyed by resource, namespace and
//! name; one global resourceVersion counter (like etcd's revision); a bounded history of
//! changes for watches to resume from; a broadcast of every change to live watches.
//! It does not validate or default objects: the handlers do that before committing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::resources::Resource;

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    /// `apiVersion/plural`, e.g. `apps/v1/deployments`.
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `name` in `namespace` of `resource`.
    pub fn new(resource: &Resource, namespace: &str, name: &str) -> Self {
        let namespace = if resource.namespaced {
            namespace.to_string()
        } else {
            String::new()
        };
        Self {
            resource: resource.storage_id(),
            namespace,
            name: name.to_string(),
        }
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the change was committed at.
    pub revision: u64,
    /// What happened.
    pub kind: EventType,
    /// Where.
    pub key: ObjectKey,
    /// The object after the change (for deletes: the last state, at the delete's revision).
    pub object: Value,
    /// The object before the change, for selector transitions in watches.
    pub previous: Option<Value>,
}

/// The mutable state behind the store lock.
pub struct State {
    revision: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Newest revision dropped from the history; watches from before it get 410.
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

/// Shared store handle.
pub struct Store {
    state: Mutex<State>,
}

impl Store {
    /// An empty store keeping `history_limit` changes for watch resumption.
    pub fn new(history_limit: usize) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let state = State {
            revision: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            compacted: 0,
            changes,
        };
        Self {
            state: Mutex::new(state),
        }
    }

    /// Locks the store; a panic in another test thread does not poison the others' view.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// Current revision: the resourceVersion of lists.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Oldest revision a watch may still resume from.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// The stored object.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of `resource` (in `namespace` when given), in key order.
    pub fn list(&self, resource: &Resource, namespace: Option<&str>) -> Vec<(ObjectKey, Value)> {
        let id = resource.storage_id();
        self.objects
            .iter()
            .filter(|(key, _)| key.resource == id && namespace.is_none_or(|ns| key.namespace == ns))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Stores `object` at a new revision and tells watchers; returns the stored object.
    pub fn put(&mut self, key: ObjectKey, mut object: Value) -> Value {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        let previous = self.objects.insert(key.clone(), object.clone());
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(kind, key, object.clone(), previous);
        object
    }

    /// Removes the object at a new revision and tells watchers; returns its last state.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        let previous = self.objects.remove(key)?;
        self.revision += 1;
        let mut object = previous.clone();
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.record(
            EventType::Deleted,
            key.clone(),
            object.clone(),
            Some(previous),
        );
        Some(object)
    }

    fn record(&mut self, kind: EventType, key: ObjectKey, object: Value, previous: Option<Value>) {
        let change = Arc::new(Change {
            revision: self.revision,
            kind,
            key,
            object,
            previous,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.revision;
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// How many watches are open (tests wait for a client's watch before changing things).
    pub fn watchers(&self) -> usize {
        self.changes.receiver_count()
    }

    /// Changes after `revision` still in history, and a receiver for the ones after them.
    pub fn subscribe_after(
        &self,
        revision: u64,
    ) -> (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>) {
        let backlog = self
            .history
            .iter()
            .filter(|change| change.revision > revision)
            .cloned()
            .collect();
        (backlog, self.changes.subscribe())
    }
}
