//! Keeps this machine's Node in the API: registers it (created, or labels, annotations
//! and taint brought up to date on an existing one, never a duplicate), then computes its
//! status every 10 s and posts it when it changed, else every 5 minutes (the kubelet's
//! `nodeStatusUpdateFrequency` and `nodeStatusReportFrequency`, KEP-589). `Ready` follows
//! the reconciler's health ([`super::readiness`]); the Node gets a `Starting` event and
//! one per change of a condition ([`super::node_events`]). Failures are retried with the
//! API back-off forever; a deleted Node is registered again. Layer 5.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::conditions::{node_conditions, pressures, without_heartbeats};
use super::events::EventPublisher;
use super::host::{HostFacts, read_facts};
use super::node_events::{NodeEvent, STARTING, STARTING_MESSAGE, transitions};
use super::node_object::{
    NodeConfig, admission_view, annotations, labels, new_node, node_status, taints,
};
use super::readiness::readiness;
use crate::backoff::{API_SERVER, Retry};
use crate::pod::admission::NodeView;
use crate::pod::eviction;
use crate::pod::{EventKind, ReconcilerHealth};
use crate::sources::{Error, Result};

/// How often the status is computed (kubelet `nodeStatusUpdateFrequency`).
pub const STATUS_PERIOD: Duration = Duration::from_secs(10);
/// An unchanged status is still posted this often (kubelet `nodeStatusReportFrequency`).
pub const STATUS_REPORT_PERIOD: Duration = Duration::from_secs(300);

/// Registers the node and keeps its status current until `shutdown`; `(state_dir,
/// image_dir)` are on the file systems the disk signals observe. Publishes the
/// Node's UID in `node_uid` once registered (for the lease and mirror pods' owners).
/// `Ready` is judged from the reconciler's `health`; node events go to `events`. The
/// Node's labels and taints, as the API returns them at registration and with each
/// status posted, go to admission through `view`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: Client,
    config: NodeConfig,
    (state_dir, image_dir): (PathBuf, PathBuf),
    node_uid: watch::Sender<Option<String>>,
    view: watch::Sender<NodeView>,
    health: watch::Receiver<ReconcilerHealth>,
    events: EventPublisher,
    shutdown: impl Future<Output = ()>,
) {
    let starting = NodeEvent {
        reason: STARTING.to_owned(),
        message: STARTING_MESSAGE.to_owned(),
    };
    let mut keeper = NodeKeeper {
        nodes: Api::all(client),
        config,
        state_dir,
        image_dir,
        node_uid,
        view,
        health,
        events,
        pending_events: vec![starting],
        registered: false,
        conditions: Vec::new(),
        posted: None,
    };
    tokio::select! {
        () = shutdown => {}
        () = keeper.keep() => {}
    }
}

struct NodeKeeper {
    nodes: Api<Node>,
    config: NodeConfig,
    state_dir: PathBuf,
    /// On the imagefs: the `.deb` cache.
    image_dir: PathBuf,
    node_uid: watch::Sender<Option<String>>,
    /// The node as admission sees it.
    view: watch::Sender<NodeView>,
    health: watch::Receiver<ReconcilerHealth>,
    events: EventPublisher,
    /// Events not published yet: they wait for the Node's UID.
    pending_events: Vec<NodeEvent>,
    registered: bool,
    /// The conditions computed last, for their transition times.
    conditions: Vec<NodeCondition>,
    /// The status posted last (without heartbeat times) and when.
    posted: Option<(NodeStatus, Instant)>,
}

impl NodeKeeper {
    async fn keep(&mut self) {
        let mut retry = Retry::new(API_SERVER);
        loop {
            let name = self.config.name.clone();
            let wait = match super::bounded("update node", &name, self.tick()).await {
                Ok(()) => {
                    retry.succeeded();
                    STATUS_PERIOD
                }
                Err(err) => {
                    if err.api_status() == Some(404) {
                        self.registered = false;
                    }
                    let delay = retry.failed();
                    tracing::warn!(node = %self.config.name, error = %crate::error_chain::Chain(&err), retry_in = ?delay,
                        "cannot update the node");
                    delay
                }
            };
            self.publish_events().await;
            tokio::time::sleep(wait).await;
        }
    }

    /// Publishes the pending events once the Node is registered (best effort, as every
    /// event).
    async fn publish_events(&mut self) {
        let uid = self.node_uid.borrow().clone();
        let Some(uid) = uid.filter(|_| self.registered) else {
            return;
        };
        for event in std::mem::take(&mut self.pending_events) {
            self.events
                .publish_node(
                    &self.config.name,
                    &uid,
                    EventKind::Normal,
                    &event.reason,
                    &event.message,
                )
                .await;
        }
    }

    async fn tick(&mut self) -> Result<()> {
        let (state_dir, image_dir) = (self.state_dir.clone(), self.image_dir.clone());
        let (facts, observations) = tokio::task::spawn_blocking(move || {
            let observations = eviction::observe(&state_dir, &image_dir);
            Ok::<_, Error>((read_facts(&state_dir)?, observations))
        })
        .await
        .map_err(|join| Error::HostFact {
            what: "host facts",
            path: self.state_dir.clone(),
            source: std::io::Error::other(join),
        })??;
        if !self.registered {
            let node = self.register(&facts).await?;
            self.show_admission(&facts, &node);
            let uid = node.metadata.uid.unwrap_or_default();
            tracing::info!(node = %self.config.name, uid = %uid, "node registered");
            self.node_uid.send_replace(Some(uid));
            self.registered = true;
            self.posted = None;
        }
        let health = self.health.borrow().clone();
        let ready = readiness(&health, Instant::now());
        let conditions = node_conditions(
            &ready,
            pressures(&self.config.reservation.thresholds, &observations),
            &self.conditions,
            crate::clock::now(),
        );
        let changes = transitions(&self.config.name, &self.conditions, &conditions);
        for event in &changes {
            tracing::info!(node = %self.config.name, reason = %event.reason, "node condition changed");
        }
        self.pending_events.extend(changes);
        self.conditions = conditions;
        let status = node_status(&self.config, &facts, self.conditions.clone());
        let comparable = NodeStatus {
            conditions: Some(without_heartbeats(&self.conditions)),
            ..status.clone()
        };
        let last = self.posted.as_ref().map(|(last, at)| (last, at.elapsed()));
        let due = status_due(last, &comparable);
        if due {
            let name = &self.config.name;
            let node = self
                .nodes
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
                .map_err(Error::api("patch status of node", name))?;
            self.show_admission(&facts, &node);
            tracing::debug!(node = %name, "node status posted");
            self.posted = Some((comparable, Instant::now()));
        } else {
            // As the kubelet reads its Node every status period: labels and taints an
            // admin changed reach admission within one period.
            let name = &self.config.name;
            let node = self
                .nodes
                .get(name)
                .await
                .map_err(Error::api("get node", name))?;
            self.show_admission(&facts, &node);
        }
        Ok(())
    }

    /// Gives admission the Node's labels and taints as the API returned them.
    fn show_admission(&self, facts: &HostFacts, node: &Node) {
        let view = admission_view(&self.config, facts, Some(node));
        self.view.send_if_modified(|current| {
            let changed = *current != view;
            *current = view;
            changed
        });
    }

    /// Creates the Node, or brings labels and taint of an existing one up to date;
    /// returns it.
    async fn register(&self, facts: &HostFacts) -> Result<Node> {
        let name = &self.config.name;
        let existing = self
            .nodes
            .get_opt(name)
            .await
            .map_err(Error::api("get node", name))?;
        let node = match existing {
            None => self
                .nodes
                .create(&PostParams::default(), &new_node(&self.config, facts))
                .await
                .map_err(Error::api("create node", name))?,
            Some(node) => {
                let current = node
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.taints.as_deref())
                    .unwrap_or_default();
                let patch = json!({
                    "metadata": {
                        "labels": labels(&self.config, facts),
                        "annotations": annotations(&self.config),
                    },
                    "spec": { "taints": taints(current, self.config.taint) },
                });
                self.nodes
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(Error::api("update node", name))?
            }
        };
        Ok(node)
    }
}

/// Whether `status` (heartbeats stripped) must be posted, given the status posted last and
/// how long ago: when it changed, and at least every [`STATUS_REPORT_PERIOD`].
pub fn status_due(last: Option<(&NodeStatus, Duration)>, status: &NodeStatus) -> bool {
    match last {
        None => true,
        Some((last, age)) => last != status || age >= STATUS_REPORT_PERIOD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: &str) -> NodeStatus {
        NodeStatus {
            phase: Some(phase.to_owned()),
            ..NodeStatus::default()
        }
    }

    #[test]
    fn first_status_is_posted() {
        assert!(status_due(None, &status("a")));
    }

    #[test]
    fn unchanged_status_waits_for_the_report_period() {
        let posted = status("a");
        assert!(!status_due(
            Some((&posted, Duration::from_secs(10))),
            &status("a")
        ));
        assert!(status_due(
            Some((&posted, STATUS_REPORT_PERIOD)),
            &status("a")
        ));
    }

    #[test]
    fn changed_status_is_posted_at_once() {
        let posted = status("a");
        assert!(status_due(Some((&posted, Duration::ZERO)), &status("b")));
    }
}
