//! Watches the manifest directory with inotify and sends the file source's set of pods, then
//! the pods that changed whenever a manifest appears, changes or goes away. Layer 5.
//!
//! - No polling: inotify on the directory (create, close-after-write, rename in or out,
//!   delete). A file completed (written and closed, or renamed into place) after a quiet
//!   spell is read at once: one pod dropped in starts without waiting. Anything else, and
//!   every event that follows within [`QUIET`] of a read, is coalesced (a hundred files
//!   dropped at once, an editor's save dance, which moves the old file away first): the
//!   files the events named are read again once events have paused for [`QUIET`], or at
//!   the latest [`MAX_DELAY`] after the first one, so a change is seen well within a
//!   second. Only a new watch or lost events (queue overflow) read the directory whole.
//! - A missing directory is not created (a typo in the path should not silently become an
//!   empty directory): it is logged, an empty set is sent, as the kubelet does, and the
//!   nearest existing parent is watched until the directory appears.
//! - A directory that is removed, renamed or replaced is found again the same way.
//! - Only pods that changed are sent; a file error is logged when it first appears, not on
//!   every re-read.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use inotify::{EventMask, EventOwned, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::{ManifestFiles, is_manifest_name};
use crate::error_chain::chain;
use crate::sources::{Error, Result, SourceUpdate};

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
        updates,
        target: None,
        last_read: None,
        files: Some(ManifestFiles::new(dir.clone(), node_name.clone())),
        node_name,
        named: BTreeSet::new(),
        read_whole: true,
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
    /// Where the updates go.
    updates: mpsc::Sender<SourceUpdate>,
    /// The current watch, `None` before the first.
    target: Option<Target>,
    /// When the directory was last read.
    last_read: Option<Instant>,
    /// The files as last read; `None` only while a read has them.
    files: Option<ManifestFiles>,
    /// This node's name, for the pods' defaults.
    node_name: String,
    /// Entries events named since the last read.
    named: BTreeSet<OsString>,
    /// Whether the next read reads every file (a new watch, lost events).
    read_whole: bool,
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

    /// Reads what changed (every file after a new watch or lost events, else the files
    /// events named) and sends the pods that changed. False when the receiver is gone.
    async fn reread_and_send(&mut self) -> bool {
        self.last_read = Some(Instant::now());
        let watching_dir = self.target.as_ref().is_some_and(|target| target.is_dir);
        let Some(mut files) = self.files.take() else {
            return true;
        };
        let named = std::mem::take(&mut self.named);
        let whole = std::mem::take(&mut self.read_whole);
        let read = tokio::task::spawn_blocking(move || {
            if !watching_dir {
                files.forget_all();
            } else if whole {
                if let Err(error) = files.read_all() {
                    tracing::warn!(reason = error.reason(), error = %chain(&error), "cannot read the static pod manifests");
                }
            } else {
                files.read_names(named);
            }
            let update = files.update();
            (files, update)
        });
        let update = match read.await {
            Ok((files, update)) => {
                self.files = Some(files);
                update
            }
            Err(error) => {
                // The files went with the task: start over, the next read whole and the
                // next update a complete set.
                tracing::error!(%error, "reading the static pod manifests failed; reading them again");
                self.files = Some(ManifestFiles::new(self.dir.clone(), self.node_name.clone()));
                self.read_whole = true;
                return true;
            }
        };
        let Some(update) = update else {
            return true;
        };
        tracing::info!("static pod manifests changed");
        self.updates.send(update).await.is_ok()
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
            // Events were lost: only a whole read is safe.
            self.read_whole = true;
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
            self.read_whole = true;
            return Some(Wake::Rewatch);
        }
        let name = event.name.as_deref()?;
        if !is_manifest_name(name) {
            return None;
        }
        self.named.insert(name.to_owned());
        Some(Wake::Reread)
    }
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
