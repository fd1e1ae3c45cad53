//! Watch streams: newline-delimited JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)
//! over a chunked HTTP response, resumable from a resourceVersion still in the store's history
//! (older ones get an ERROR event with a 410 `Expired` Status, as from the real watch cache),
//! with selectors applied per event, including the MODIFIED→ADDED/DELETED translation when an
//! object starts or stops matching. Timing (bookmarks, timeout) uses tokio time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::SinkExt;
use futures::channel::mpsc;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::list::Selectors;
use super::request::ResourceRequest;
use super::resources::Resource;
use super::status::{ApiError, ApiResult};
use super::store::{Change, EventType, ObjectKey};
use super::{Api, events, tables};

/// A watch without `timeoutSeconds` ends after this long (the real server picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one watch selects.
struct Filter {
    resource: &'static Resource,
    resource_id: String,
    namespace: Option<String>,
    name: Option<String>,
    selectors: Selectors,
    /// Events carry one-row Tables (kubectl get --watch) instead of objects.
    as_table: bool,
}

impl Filter {
    fn covers(&self, key: &ObjectKey) -> bool {
        key.resource == self.resource_id
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == key.namespace)
            && self.name.as_ref().is_none_or(|name| *name == key.name)
    }

    fn selects(&self, object: &Value) -> bool {
        self.selectors.matches(object)
    }

    /// The event a watcher sees for `change`, if any.
    fn translate(&self, change: &Change) -> Option<(&'static str, Value)> {
        if !self.covers(&change.key) {
            return None;
        }
        let object = events::from_storage(self.resource, change.object.clone());
        let now = self.selects(&object);
        let before = change.previous.as_ref().is_some_and(|previous| {
            self.selects(&events::from_storage(self.resource, previous.clone()))
        });
        let kind = match change.kind {
            EventType::Added if now => "ADDED",
            EventType::Modified if before && now => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            EventType::Deleted if before => "DELETED",
            _ => return None,
        };
        Some((kind, object))
    }

    /// The line of one event, as a Table row when the client asked for tables.
    fn frame(&self, kind: &str, object: &Value) -> Bytes {
        if !self.as_table {
            return frame(kind, object);
        }
        let metadata = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
        frame(
            kind,
            &tables::table(self.resource, std::slice::from_ref(object), metadata),
        )
    }

    fn bookmark(&self, revision: u64, initial_events_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": metadata})
    }
}

fn frame(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Starts a watch; the body streams until the timeout, the client leaves, the server stops,
/// or the watcher falls behind.
pub fn watch(api: &Arc<Api>, req: &ResourceRequest, as_table: bool) -> ApiResult<Body> {
    let filter = Filter {
        as_table,
        resource: req.resource,
        resource_id: req.resource.storage_id(),
        namespace: req.namespace.clone(),
        name: req.name.clone(),
        selectors: Selectors::for_reading(api, req)?,
    };
    let bookmarks = req.flag("allowWatchBookmarks");
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let requested = req.param("resourceVersion").filter(|rv| !rv.is_empty());
    let send_initial = match req.param("sendInitialEvents") {
        Some(flag) => matches!(flag, "true" | "1"),
        None => requested.is_none_or(|rv| rv == "0"),
    };
    let explicit_initial = req.param("sendInitialEvents").is_some() && send_initial;
    let mut frames = Vec::new();
    let state = api.store.lock();
    let start = match requested.filter(|rv| *rv != "0" && !send_initial) {
        Some(rv) => {
            let rv: u64 = rv
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version \"{rv}\"")))?;
            if rv < state.compacted() {
                let gone = ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    state.compacted() + 1
                ));
                frames.push(frame("ERROR", &gone.to_status()));
                return Ok(stream_frames(frames));
            }
            rv
        }
        None => {
            for (key, object) in state.list(req.resource, req.namespace.as_deref()) {
                let object = events::from_storage(req.resource, object);
                if filter.covers(&key) && filter.selects(&object) {
                    frames.push(filter.frame("ADDED", &object));
                }
            }
            state.revision()
        }
    };
    if explicit_initial && bookmarks {
        frames.push(frame("BOOKMARK", &filter.bookmark(start, true)));
    }
    let (backlog, mut changes) = state.subscribe_after(start);
    drop(state);
    let (mut sender, receiver) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let bookmark_interval = api.config.bookmark_interval;
    let mut stopped = api.stopped.subscribe();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + bookmark_interval,
            bookmark_interval,
        );
        let mut seen = start;
        for line in frames {
            if sender.send(Ok(line)).await.is_err() {
                return;
            }
        }
        for change in backlog {
            seen = change.revision;
            if let Some((kind, object)) = filter.translate(&change)
                && sender.send(Ok(filter.frame(kind, &object))).await.is_err()
            {
                return;
            }
        }
        loop {
            let line = tokio::select! {
                _ = &mut deadline => return,
                _ = stopped.wait_for(|stopped| *stopped) => return,
                _ = ticker.tick(), if bookmarks => frame("BOOKMARK", &filter.bookmark(seen, false)),
                received = changes.recv() => match received {
                    Ok(change) if change.revision <= seen => continue,
                    Ok(change) => {
                        seen = change.revision;
                        match filter.translate(&change) {
                            Some((kind, object)) => filter.frame(kind, &object),
                            None => continue,
                        }
                    }
                    // A watcher that fell behind ends; clients re-watch from their last version.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return,
                },
            };
            if sender.send(Ok(line)).await.is_err() {
                return;
            }
        }
    });
    Ok(Body::from_stream(receiver))
}

fn stream_frames(frames: Vec<Bytes>) -> Body {
    Body::from_stream(futures::stream::iter(
        frames.into_iter().map(Ok::<_, Infallible>),
    ))
}
