//! Watches the manifest directory with inotify and sends the file source's complete set of
//! pods whenever a manifest appears, changes or goes away. Layer 5.
//!
//! - No polling: inotify on the directory (create, close-after-write, rename in or out,
//!   delete). Bursts (a hundred files dropped at once, an editor's save dance) are coalesced:
//!   the directory is read again once events have paused for [`QUIET`], or at the latest
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

use super::{Manifests, is_manifest_name, load_dir};
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
        let watching_dir = self.target.as_ref().is_some_and(|target| target.is_dir);
        let manifests = if watching_dir {
            let (dir, node_name) = (self.dir.clone(), self.node_name.clone());
            match tokio::task::spawn_blocking(move || load_dir(&dir, &node_name)).await {
                Ok(manifests) => manifests,
                Err(error) => {
                    tracing::error!(%error, "reading the static pod manifests failed; keeping the last set");
                    return true;
                }
            }
        } else {
            Manifests::default()
        };
        self.log_new_errors(&manifests.errors);
        let pods: Vec<Arc<Pod>> = manifests.pods.into_iter().map(Arc::new).collect();
        if self.last_sent.as_ref() == Some(&pods) {
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
        let texts: Vec<String> = errors.iter().map(error_chain).collect();
        for (error, text) in errors.iter().zip(&texts) {
            if !self.last_errors.contains(text) {
                tracing::warn!(reason = error.reason(), error = %text, "static pod manifest left out");
            }
        }
        self.last_errors = texts;
    }

    /// Waits for the first event that matters, then for the burst around it to pass.
    async fn next_wake(&self, events: &mut EventStream<[u8; EVENT_BUFFER_BYTES]>) -> Result<Wake> {
        let mut wake = loop {
            let event = self.next_event(events).await?;
            if let Some(wake) = self.classify(&event) {
                break wake;
            }
        };
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

    /// What an event asks for, or `None` when it cannot change the set.
    fn classify(&self, event: &EventOwned) -> Option<Wake> {
        if event.mask.contains(EventMask::Q_OVERFLOW) {
            // Events were lost: only a full read is safe.
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
            return Some(Wake::Rewatch);
        }
        let name = event.name.as_deref()?;
        is_manifest_name(name).then_some(Wake::Reread)
    }
}

/// The nearest ancestor of the absolute `dir` that is a directory (`/` at worst).
fn existing_parent(dir: &Path) -> PathBuf {
    dir.ancestors()
        .skip(1)
        .find(|ancestor| ancestor.is_dir())
        .unwrap_or(Path::new("/"))
        .to_owned()
}

/// An error and its causes on one line, for logs.
fn error_chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        // Variants that quote their source already carry its text.
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    /// How long a test waits for a change to show. Issue 3 promises a second; the rest is
    /// slack for a loaded two-core machine.
    const SEEN_WITHIN: Duration = Duration::from_secs(3);

    struct Watching {
        updates: mpsc::Receiver<SourceUpdate>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<Result<()>>,
    }

    fn start(dir: &Path) -> Watching {
        let (sender, updates) = mpsc::channel(16);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(watch(dir.to_owned(), "node1".to_owned(), sender, async {
            let _ = stopped.await;
        }));
        Watching {
            updates,
            stop,
            task,
        }
    }

    fn write_pod(dir: &Path, file: &str, name: &str, image: &str) {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n\
             spec:\n  containers:\n    - name: c\n      image: {image}\n"
        );
        std::fs::write(dir.join(file), text).unwrap();
    }

    fn names(update: &SourceUpdate) -> Vec<&str> {
        let mut names: Vec<&str> = update
            .pods
            .iter()
            .filter_map(|pod| pod.metadata.name.as_deref())
            .collect();
        names.sort_unstable();
        names
    }

    fn image(update: &SourceUpdate) -> Option<&str> {
        update.pods.first()?.spec.as_ref()?.containers[0]
            .image
            .as_deref()
    }

    impl Watching {
        /// The next update, failing the test if none comes in time.
        async fn next(&mut self) -> SourceUpdate {
            tokio::time::timeout(SEEN_WITHIN, self.updates.recv())
                .await
                .expect("no update in time")
                .expect("the watch ended")
        }

        /// Updates until one satisfies `wanted`; returns it and how many came in all.
        async fn wait_for(
            &mut self,
            wanted: impl Fn(&SourceUpdate) -> bool,
        ) -> (SourceUpdate, usize) {
            let mut count = 0;
            loop {
                let update = self.next().await;
                count += 1;
                if wanted(&update) {
                    return (update, count);
                }
            }
        }

        async fn stop(self) {
            self.stop.send(()).unwrap();
            self.task.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn first_update_is_the_directory_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        write_pod(dir.path(), "a.yaml", "a", "/bin/true");
        let mut watching = start(dir.path());
        let first = watching.next().await;
        assert_eq!(first.source, SourceId::File);
        assert_eq!(names(&first), ["a-node1"]);
        watching.stop().await;
    }

    #[tokio::test]
    async fn empty_directory_still_sends_a_first_update() {
        let dir = tempfile::tempdir().unwrap();
        let mut watching = start(dir.path());
        assert!(watching.next().await.pods.is_empty());
        watching.stop().await;
    }

    #[tokio::test]
    async fn new_changed_and_removed_files_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let mut watching = start(dir.path());
        assert!(watching.next().await.pods.is_empty());

        write_pod(dir.path(), "a.yaml", "a", "/bin/true");
        let (added, _) = watching.wait_for(|u| names(u) == ["a-node1"]).await;

        write_pod(dir.path(), "a.yaml", "a", "/bin/false");
        let (changed, _) = watching.wait_for(|u| image(u) == Some("/bin/false")).await;
        assert_eq!(added.pods[0].metadata.uid, changed.pods[0].metadata.uid);

        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        watching.wait_for(|u| u.pods.is_empty()).await;
        watching.stop().await;
    }

    #[tokio::test]
    async fn a_new_file_is_seen_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut watching = start(dir.path());
        assert!(watching.next().await.pods.is_empty());
        let written = Instant::now();
        write_pod(dir.path(), "a.yaml", "a", "/bin/true");
        watching.wait_for(|u| !u.pods.is_empty()).await;
        let latency = written.elapsed();
        assert!(latency < Duration::from_secs(1), "seen after {latency:?}");
        watching.stop().await;
    }

    #[tokio::test]
    async fn file_renamed_into_place_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let mut watching = start(dir.path());
        assert!(watching.next().await.pods.is_empty());
        write_pod(dir.path(), ".a.yaml.tmp", "a", "/bin/true");
        std::fs::rename(dir.path().join(".a.yaml.tmp"), dir.path().join("a.yaml")).unwrap();
        let (update, _) = watching.wait_for(|u| !u.pods.is_empty()).await;
        assert_eq!(names(&update), ["a-node1"]);
        watching.stop().await;
    }

    #[tokio::test]
    async fn editor_files_are_not_pods() {
        let dir = tempfile::tempdir().unwrap();
        let mut watching = start(dir.path());
        assert!(watching.next().await.pods.is_empty());
        for (file, name) in [
            (".a.yaml.swp", "swap"),
            ("a.yaml~", "backup"),
            (".#a.yaml", "lock"),
        ] {
            write_pod(dir.path(), file, name, "/bin/true");
        }
        write_pod(dir.path(), "a.yaml", "a", "/bin/true");
        let (update, _) = watching.wait_for(|u| !u.pods.is_empty()).await;
        assert_eq!(names(&update), ["a-node1"]);
        watching.stop().await;
    }

    #[tokio::test]
    async fn hundred_files_dropped_at_once_arrive_in_few_updates() {
        let dir = tempfile::tempdir().unwrap();
        let mut watching = start(dir.path());
        assert!(watching.next().await.pods.is_empty());
        for index in 0..100 {
            write_pod(
                dir.path(),
                &format!("p{index}.yaml"),
                &format!("p{index}"),
                "/bin/true",
            );
        }
        let (update, count) = watching.wait_for(|u| u.pods.len() == 100).await;
        assert_eq!(update.pods.len(), 100);
        assert!(count <= 3, "{count} updates for one burst");
        watching.stop().await;
    }

    #[tokio::test]
    async fn missing_directory_is_awaited() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("not/yet");
        let mut watching = start(&dir);
        assert!(watching.next().await.pods.is_empty());
        std::fs::create_dir_all(&dir).unwrap();
        write_pod(&dir, "a.yaml", "a", "/bin/true");
        watching.wait_for(|u| names(u) == ["a-node1"]).await;
        watching.stop().await;
    }

    #[tokio::test]
    async fn replaced_directory_is_watched_again() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        write_pod(&dir, "a.yaml", "a", "/bin/true");
        let mut watching = start(&dir);
        assert_eq!(names(&watching.next().await), ["a-node1"]);

        std::fs::rename(&dir, parent.path().join("old")).unwrap();
        watching.wait_for(|u| u.pods.is_empty()).await;
        let staging = parent.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        write_pod(&staging, "b.yaml", "b", "/bin/true");
        std::fs::rename(&staging, &dir).unwrap();
        watching.wait_for(|u| names(u) == ["b-node1"]).await;

        // The new directory is watched, not just read once.
        write_pod(&dir, "c.yaml", "c", "/bin/true");
        watching
            .wait_for(|u| names(u) == ["b-node1", "c-node1"])
            .await;
        watching.stop().await;
    }

    #[tokio::test]
    async fn dropped_receiver_ends_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        let mut watching = start(dir.path());
        watching.next().await;
        drop(watching.updates);
        write_pod(dir.path(), "a.yaml", "a", "/bin/true");
        let ended = tokio::time::timeout(SEEN_WITHIN, watching.task).await;
        ended.expect("the watch did not end").unwrap().unwrap();
    }
}
