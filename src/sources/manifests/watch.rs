//! Watches the manifest directory with inotify and sends the file source's complete set of
//! pods whenever a manifest appears, changes or goes away. Layer 5.
//!
//! - No polling: inotify on the directory (create, close-after-write, rename in or out,
//!   delete). A file completed (written and closed, or renamed into place) after a quiet
//!   spell is read at once: one pod dropped in starts without waiting. Anything else, and
//!   every event that follows within [`QUIET`] of a read, is coalesced (a hundred files
//!   dropped at once, an editor's save dance, which moves the old file away first): the
//!   directory is read again once events have paused for [`QUIET`], or at the latest
//!   [`MAX_DELAY`] after the first one, so a change is seen well within a second.
//! - A missing directory is not created (a typo in the path should not silently become an
//!   empty directory): it is logged, an empty set is sent, as the kubelet does, and the
//!   nearest existing parent is watched until the directory appears.
//! - A directory that is removed, renamed or replaced is found again the same way.
//! - A set equal to the last one sent is not sent again; a file error is logged when it
//!   first appears, not on every re-read.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use inotify::{EventMask, EventOwned, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::{FileCache, Manifests, is_manifest_name, load_dir};
use crate::error_chain::chain;
use crate::sources::{Error, Result, SourceId, SourceUpdate};

/// Quiet time after the last event before the directory is read again: long enough to
/// coalesce a burst of files, short next to the one-second promise.
const QUIET: Duration = Duration::from_millis(100);
/// Longest delay between the first event of a burst and the re-read, so a directory that
/// never stops changing is still read at least this often.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// Bytes of the inotify read buffer: room for about a hundred events with short names.
const EVENT_BUFFER_BYTES: usize = 4096;

/// Events on the manifest directory that can change the set of manifests.
fn dir_mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
}

/// Events on a parent directory that can mean the manifest directory (or a directory on
/// the way to it) appeared, or that the parent itself went away.
fn parent_mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
}

/// Sends the static pods of `dir` to `updates` now and after every change, until `shutdown`
/// completes or the receiver is dropped (both return `Ok`).
///
/// Errors only when inotify itself fails (no inotify instance, watch limit reached, the
/// event stream broke); the caller logs it and may start the watch again. Files that
/// cannot be read or parsed are logged and left out, never an error here.
pub async fn watch(
    dir: PathBuf,
    node_name: String,
    updates: mpsc::Sender<SourceUpdate>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // Absolute, so the walk up to an existing parent always ends at `/`.
    let dir = std::path::absolute(&dir).map_err(|source| Error::Watch {
        dir: dir.clone(),
        source,
    })?;
    let watch_error = |source| Error::Watch {
        dir: dir.clone(),
        source,
    };
    let inotify = Inotify::init().map_err(watch_error)?;
    let events = inotify
        .into_event_stream([0u8; EVENT_BUFFER_BYTES])
        .map_err(watch_error)?;
    let watcher = DirWatcher {
        watches: events.watches(),
        dir: dir.clone(),
        node_name,
        updates,
        target: None,
        last_sent: None,
        last_errors: Vec::new(),
        last_read: None,
        cache: Some(FileCache::default()),
    };
    tokio::select! {
        () = shutdown => Ok(()),
        result = watcher.run(events) => result,
    }
}

/// What is being watched right now.
struct Target {
    /// The watch.
    wd: WatchDescriptor,
    /// True when this is the manifest directory; false for a parent waiting for it.
    is_dir: bool,
}

/// What a burst of events asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    /// Read the directory again.
    Reread,
    /// Find the directory again (it moved, vanished or appeared), then read it.
    Rewatch,
}

/// The state of one `watch` call.
struct DirWatcher {
    /// Adds and removes watches on the inotify instance the event stream reads.
    watches: Watches,
    /// The manifest directory, absolute.
    dir: PathBuf,
    /// This node's name, for the pods' defaults.
    node_name: String,
    /// Where the sets go.
    updates: mpsc::Sender<SourceUpdate>,
    /// The current watch, `None` before the first.
    target: Option<Target>,
    /// The last set sent, to skip sending an equal one.
    last_sent: Option<Vec<Arc<Pod>>>,
    /// The file errors of the last read, as text, to log only new ones.
    last_errors: Vec<String>,
    /// When the directory was last read.
    last_read: Option<Instant>,
    /// The files as last read; `None` only while a read has it.
    cache: Option<FileCache>,
}

impl DirWatcher {
    /// Watches, reads and sends until the receiver is gone or inotify fails.
    async fn run(mut self, mut events: EventStream<[u8; EVENT_BUFFER_BYTES]>) -> Result<()> {
        let mut wake = Wake::Rewatch;
        loop {
            if wake == Wake::Rewatch {
                self.rewatch()?;
            }
            if !self.reread_and_send().await {
                tracing::debug!("the receiver of static pods is gone; stopping the watch");
                return Ok(());
            }
            wake = self.next_wake(&mut events).await?;
        }
    }

    /// Watches the directory, or the nearest existing parent while it does not exist.
    fn rewatch(&mut self) -> Result<()> {
        let was_waiting = self.target.as_ref().is_some_and(|target| !target.is_dir);
        if let Some(old) = self.target.take() {
            // Fails when the kernel already dropped the watch (directory deleted): fine.
            let _ = self.watches.remove(old.wd);
        }
        loop {
            match self.watches.add(&self.dir, dir_mask()) {
                Ok(wd) => {
                    tracing::info!(dir = %self.dir.display(), "watching the static pod manifests");
                    self.target = Some(Target { wd, is_dir: true });
                    return Ok(());
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) => {}
                Err(source) => {
                    return Err(Error::Watch {
                        dir: self.dir.clone(),
                        source,
                    });
                }
            }
            let parent = existing_parent(&self.dir);
            let wd = self
                .watches
                .add(&parent, parent_mask())
                .map_err(|source| Error::Watch {
                    dir: self.dir.clone(),
                    source,
                })?;
            // The directory, or a directory on the way to it, may have appeared since the
            // parent was chosen: look again before trusting the parent's watch to announce it.
            if self.dir.is_dir() || existing_parent(&self.dir) != parent {
                let _ = self.watches.remove(wd);
                continue;
            }
            if !was_waiting {
                tracing::warn!(
                    dir = %self.dir.display(),
                    waiting_in = %parent.display(),
                    "the static pod manifest directory does not exist; waiting for it to appear"
                );
            }
            self.target = Some(Target { wd, is_dir: false });
            return Ok(());
        }
    }

    /// Reads the directory and sends its set if it differs from the last one sent. False
    /// when the receiver is gone.
    async fn reread_and_send(&mut self) -> bool {
        self.last_read = Some(Instant::now());
        let watching_dir = self.target.as_ref().is_some_and(|target| target.is_dir);
        let manifests = if watching_dir {
            let (dir, node_name) = (self.dir.clone(), self.node_name.clone());
            let mut cache = self.cache.take().unwrap_or_default();
            let read = tokio::task::spawn_blocking(move || {
                let manifests = load_dir(&dir, &node_name, &mut cache);
                (manifests, cache)
            });
            match read.await {
                Ok((manifests, cache)) => {
                    self.cache = Some(cache);
                    manifests
                }
                Err(error) => {
                    tracing::error!(%error, "reading the static pod manifests failed; keeping the last set");
                    return true;
                }
            }
        } else {
            Manifests::default()
        };
        self.log_new_errors(&manifests.errors);
        let pods = manifests.pods;
        if self
            .last_sent
            .as_ref()
            .is_some_and(|last| same_pods(last, &pods))
        {
            return true;
        }
        tracing::info!(pods = pods.len(), "static pod manifests changed");
        let update = SourceUpdate {
            source: SourceId::File,
            pods: pods.clone(),
        };
        self.last_sent = Some(pods);
        self.updates.send(update).await.is_ok()
    }

    /// Logs each file error that the previous read did not have.
    fn log_new_errors(&mut self, errors: &[Error]) {
        let texts: Vec<String> = errors.iter().map(|error| chain(error)).collect();
        for (error, text) in errors.iter().zip(&texts) {
            if !self.last_errors.contains(text) {
                tracing::warn!(reason = error.reason(), error = %text, "static pod manifest left out");
            }
        }
        self.last_errors = texts;
    }

    /// Waits for the first event that matters, then for the burst around it to pass,
    /// unless it completed a file after a quiet spell.
    async fn next_wake(
        &mut self,
        events: &mut EventStream<[u8; EVENT_BUFFER_BYTES]>,
    ) -> Result<Wake> {
        let (mut wake, event) = loop {
            let event = self.next_event(events).await?;
            if let Some(wake) = self.classify(&event) {
                break (wake, event);
            }
        };
        let settled = self.last_read.is_none_or(|read| read.elapsed() >= QUIET);
        if wake == Wake::Reread && settled && completes_a_file(&event) {
            return Ok(wake);
        }
        let deadline = Instant::now() + MAX_DELAY;
        loop {
            let quiet_until = (Instant::now() + QUIET).min(deadline);
            match timeout_at(quiet_until, self.next_event(events)).await {
                Err(_quiet) => return Ok(wake),
                Ok(event) => {
                    if let Some(more) = self.classify(&event?) {
                        wake = wake.max(more);
                    }
                }
            }
        }
    }

    /// The next inotify event; the stream only ends or fails when inotify broke.
    async fn next_event(
        &self,
        events: &mut EventStream<[u8; EVENT_BUFFER_BYTES]>,
    ) -> Result<EventOwned> {
        let broken = |source| Error::Watch {
            dir: self.dir.clone(),
            source,
        };
        match events.next().await {
            Some(event) => event.map_err(broken),
            None => Err(broken(std::io::Error::other(
                "the inotify event stream ended",
            ))),
        }
    }

    /// What an event asks for, or `None` when it cannot change the set. Forgets what the
    /// cache holds of the files the event may have changed.
    fn classify(&mut self, event: &EventOwned) -> Option<Wake> {
        if event.mask.contains(EventMask::Q_OVERFLOW) {
            // Events were lost: only a full read is safe.
            self.forget_all();
            return Some(Wake::Reread);
        }
        let target = self.target.as_ref()?;
        if event.wd != target.wd {
            // A watch replaced earlier (its IGNORED event, late events).
            return None;
        }
        if event
            .mask
            .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED)
            || !target.is_dir
        {
            self.forget_all();
            return Some(Wake::Rewatch);
        }
        let name = event.name.as_deref()?;
        if !is_manifest_name(name) {
            return None;
        }
        if let Some(cache) = &mut self.cache {
            cache.forget(&self.dir.join(name));
        }
        Some(Wake::Reread)
    }

    fn forget_all(&mut self) {
        if let Some(cache) = &mut self.cache {
            cache.clear();
        }
    }
}

/// Whether two sets hold the same pods in the same order; pods read from the same
/// unchanged file are the same allocation, which spares comparing them field by field.
fn same_pods(a: &[Arc<Pod>], b: &[Arc<Pod>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| Arc::ptr_eq(a, b) || a == b)
}

/// Whether the event leaves a whole file behind: written and closed, or renamed into
/// place. Not a creation (the file is still empty), nor a removal (an editor's save may
/// move the old file away before the new one is there).
fn completes_a_file(event: &EventOwned) -> bool {
    event
        .mask
        .intersects(EventMask::CLOSE_WRITE | EventMask::MOVED_TO)
}

/// The nearest ancestor of the absolute `dir` that is a directory (`/` at worst).
fn existing_parent(dir: &Path) -> PathBuf {
    dir.ancestors()
        .skip(1)
        .find(|ancestor| ancestor.is_dir())
        .unwrap_or(Path::new("/"))
        .to_owned()
}

#[cfg(test)]
mod tests;
