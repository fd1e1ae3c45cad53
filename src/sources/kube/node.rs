//! Keeps this machine's Node in the API: registers it (created, or labels and taint
//! brought up to date on an existing one, never a duplicate), then computes its status
//! every 10 s and posts it when it changed, else every 5 minutes (the kubelet's
//! `nodeStatusUpdateFrequency` and `nodeStatusReportFrequency`, KEP-589). Failures are
//! retried with the API back-off forever; a deleted Node is registered again. Layer 5.

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
use super::host::{HostFacts, read_facts, read_usage};
use super::node_object::{NodeConfig, labels, new_node, node_status, taints};
use crate::backoff::{API_SERVER, Retry};
use crate::sources::{Error, Result};

/// How often the status is computed (kubelet `nodeStatusUpdateFrequency`).
pub const STATUS_PERIOD: Duration = Duration::from_secs(10);
/// An unchanged status is still posted this often (kubelet `nodeStatusReportFrequency`).
pub const STATUS_REPORT_PERIOD: Duration = Duration::from_secs(300);

/// Registers the node and keeps its status current until `shutdown`. Publishes the
/// Node's UID in `node_uid` once registered (for the lease and mirror pods' owners).
pub async fn run(
    client: Client,
    config: NodeConfig,
    state_dir: PathBuf,
    node_uid: watch::Sender<Option<String>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut keeper = NodeKeeper {
        nodes: Api::all(client),
        config,
        state_dir,
        node_uid,
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
    node_uid: watch::Sender<Option<String>>,
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
            tokio::time::sleep(wait).await;
        }
    }

    async fn tick(&mut self) -> Result<()> {
        let state_dir = self.state_dir.clone();
        let (facts, usage) = tokio::task::spawn_blocking(move || {
            Ok::<_, Error>((read_facts(&state_dir)?, read_usage(&state_dir)?))
        })
        .await
        .map_err(|join| Error::HostFact {
            what: "host facts",
            path: self.state_dir.clone(),
            source: std::io::Error::other(join),
        })??;
        if !self.registered {
            let uid = self.register(&facts).await?;
            tracing::info!(node = %self.config.name, uid = %uid, "node registered");
            self.node_uid.send_replace(Some(uid));
            self.registered = true;
            self.posted = None;
        }
        self.conditions = node_conditions(pressures(&usage), &self.conditions, crate::clock::now());
        let status = node_status(&self.config, &facts, self.conditions.clone());
        let comparable = NodeStatus {
            conditions: Some(without_heartbeats(&self.conditions)),
            ..status.clone()
        };
        let last = self.posted.as_ref().map(|(last, at)| (last, at.elapsed()));
        let due = status_due(last, &comparable);
        if due {
            let name = &self.config.name;
            self.nodes
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
                .map_err(Error::api("patch status of node", name))?;
            tracing::debug!(node = %name, "node status posted");
            self.posted = Some((comparable, Instant::now()));
        }
        Ok(())
    }

    /// Creates the Node, or brings labels and taint of an existing one up to date;
    /// returns its UID.
    async fn register(&self, facts: &HostFacts) -> Result<String> {
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
                    "metadata": { "labels": labels(&self.config, facts) },
                    "spec": { "taints": taints(current, self.config.taint) },
                });
                self.nodes
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(Error::api("update node", name))?
            }
        };
        Ok(node.metadata.uid.unwrap_or_default())
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
