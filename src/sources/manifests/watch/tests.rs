//! Tests of the manifest watcher against a real directory and real inotify: every wait has a
//! deadline, none sleeps.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::*;
use crate::sources::{SourceChange, SourceId};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for a change to show. Issue 3 promises a second; the rest is
/// slack for a loaded two-core machine.
const SEEN_WITHIN: Duration = Duration::from_secs(3);

struct Watching {
    updates: mpsc::Receiver<SourceUpdate>,
    /// The file source's set as the updates so far make it, by UID.
    known: BTreeMap<String, Arc<Pod>>,
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
        known: BTreeMap::new(),
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

/// The set after one more update.
struct Seen {
    source: SourceId,
    /// Every pod the source wants now, by UID.
    pods: Vec<Arc<Pod>>,
}

fn names(update: &Seen) -> Vec<&str> {
    let mut names: Vec<&str> = update
        .pods
        .iter()
        .filter_map(|pod| pod.metadata.name.as_deref())
        .collect();
    names.sort_unstable();
    names
}

fn image(update: &Seen) -> Option<&str> {
    update.pods.first()?.spec.as_ref()?.containers[0]
        .image
        .as_deref()
}

impl Watching {
    /// The set after the next update, failing the test if none comes in time. The first
    /// update is a complete set, and only the first.
    async fn next(&mut self) -> Seen {
        let update = tokio::time::timeout(SEEN_WITHIN, self.updates.recv())
            .await
            .expect("no update in time")
            .expect("the watch ended");
        let uid = |pod: &Arc<Pod>| pod.metadata.uid.clone().unwrap();
        match &update.change {
            SourceChange::Set(pods) => {
                assert!(self.known.is_empty(), "a set again: {update:?}");
                self.known = pods.iter().map(|pod| (uid(pod), pod.clone())).collect();
            }
            SourceChange::Changed { pods, gone } => {
                assert!(!pods.is_empty() || !gone.is_empty(), "an empty change");
                for gone in gone {
                    assert!(self.known.remove(gone).is_some(), "{gone} was not there");
                }
                for pod in pods {
                    let before = self.known.insert(uid(pod), pod.clone());
                    assert_ne!(before.as_ref(), Some(pod), "an unchanged pod sent");
                }
            }
        }
        Seen {
            source: update.source,
            pods: self.known.values().cloned().collect(),
        }
    }

    /// Updates until one satisfies `wanted`; returns it and how many came in all.
    async fn wait_for(&mut self, wanted: impl Fn(&Seen) -> bool) -> (Seen, usize) {
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
async fn an_editors_save_never_shows_the_pod_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut watching = start(dir.path());
    assert!(watching.next().await.pods.is_empty());
    write_pod(dir.path(), "a.yaml", "a", "/bin/true");
    watching.wait_for(|u| !u.pods.is_empty()).await;
    // A quiet spell, so the save's first event may be read at once if it completes a file.
    tokio::time::sleep(QUIET * 2).await;
    // vim's save with a backup: the old file moved away, the new one written, the backup
    // deleted.
    let (file, backup) = (dir.path().join("a.yaml"), dir.path().join("a.yaml~"));
    std::fs::rename(&file, &backup).unwrap();
    write_pod(dir.path(), "a.yaml", "a", "/bin/false");
    std::fs::remove_file(&backup).unwrap();
    let (update, _) = watching
        .wait_for(|u| {
            assert!(
                !u.pods.is_empty(),
                "the pod must not go away while it is saved"
            );
            image(u) == Some("/bin/false")
        })
        .await;
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
