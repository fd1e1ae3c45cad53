//! The API phase's view of its pods: a kube-rs watch on the benchmark's namespace in the
//! test API server, each update stamped with the moment this process received it (the
//! end mark of every API figure: what a client of the API server sees).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, oneshot};

/// Updates buffered between the watch and its reader: a 100-pod burst makes a few per pod.
const BUFFER: usize = 4096;

/// One update of a pod, as received.
pub struct Seen {
    /// When the watch delivered it.
    pub at: Instant,
    /// The pod's name.
    pub name: String,
    /// The pod, or `None` when it was deleted.
    pub pod: Option<Pod>,
}

/// A running watch; stopped on drop.
pub struct PodWatch {
    updates: mpsc::Receiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    /// Starts watching `api` and returns once the watch's initial list is done.
    pub async fn start(api: Api<Pod>) -> anyhow::Result<Self> {
        let (tx, updates) = mpsc::channel(BUFFER);
        let (listed, on_listed) = oneshot::channel();
        let task = tokio::spawn(forward(api, tx, listed));
        on_listed
            .await
            .context("the pod watch ended before its first list")?;
        Ok(Self { updates, task })
    }

    /// The next update, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<Seen> {
        match tokio::time::timeout(timeout, self.updates.recv()).await {
            Ok(Some(seen)) => Ok(seen),
            Ok(None) => bail!("the pod watch ended"),
            Err(_) => bail!("no pod update within {timeout:?}"),
        }
    }

    /// Drops the updates received so far.
    pub fn drain(&mut self) {
        while self.updates.try_recv().is_ok() {}
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(api: Api<Pod>, tx: mpsc::Sender<Seen>, listed: oneshot::Sender<()>) {
    let mut listed = Some(listed);
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        let at = Instant::now();
        let (pod, deleted) = match event {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => (pod, false),
            Ok(Event::Delete(pod)) => (pod, true),
            Ok(Event::InitDone) => {
                if let Some(listed) = listed.take() {
                    let _ = listed.send(());
                }
                continue;
            }
            Ok(Event::Init) => continue,
            Err(error) => {
                eprintln!("pod watch: {error} (the watcher retries)");
                continue;
            }
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let pod = (!deleted).then_some(pod);
        if tx.send(Seen { at, name, pod }).await.is_err() {
            return;
        }
    }
}

/// Whether `pod`'s phase is `Running`.
pub fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// The status of `pod`'s container `main`, if reported.
pub fn main_status(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|status| status.name == "main")
}

/// Whether a container status, once running and never restarted, shows that it ended:
/// no longer running, a last state, or a restart counted.
pub fn shows_crash(status: &ContainerStatus) -> bool {
    let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
    let ended_before = status
        .last_state
        .as_ref()
        .is_some_and(|s| s.terminated.is_some());
    !running || ended_before || status.restart_count > 0
}
