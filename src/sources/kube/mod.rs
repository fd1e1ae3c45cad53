//! The Kubernetes API source (layer 5): systemk as a node of a cluster. [`node`] registers
//! the Node and posts its status, [`lease`] renews its heartbeat, [`pods`] turns the pods
//! bound to the node into desired sets for the reconciler, and [`status`] reports back:
//! pod status, deletion once a pod's units are gone, mirror pods for static pods
//! (`mirror`) and events (`events`). Every task retries API failures with back-off
//! forever and stops only on the shared shutdown: pods keep running through an outage.
//!
//! Unlike the manifest source this one reads the reconciler's [`crate::pod::Progress`]
//! (layer 4, below) to report status; it never touches units itself.

mod conditions;
mod events;
mod host;
pub mod lease;
mod mirror;
pub mod node;
mod node_object;
pub mod pods;
pub mod status;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use conditions::{Pressures, node_conditions, pressures};
pub use events::EventPublisher;
pub use host::{HostFacts, HostUsage, read_facts, read_usage};
pub use node_object::{
    INSTANCE_TYPE, KUBELET_PORT, NodeConfig, TAINT_EFFECT, TAINT_KEY, TAINT_VALUE,
};

use crate::sources::{Error, Result};

/// A client for the cluster `kubeconfig` names (its current context).
pub async fn connect(kubeconfig: &Path) -> Result<Client> {
    let invalid = |message: String| Error::Kubeconfig {
        path: kubeconfig.to_owned(),
        message,
    };
    let file = Kubeconfig::read_from(kubeconfig).map_err(|err| invalid(err.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|err| invalid(err.to_string()))?;
    Client::try_from(config).map_err(|err| invalid(err.to_string()))
}

/// Longest wait for one API call (or one node status round) before it counts as failed
/// and is retried: a hung connection must not stall heartbeats for the client's
/// five-minute read timeout. The kubelet bounds its lease calls the same way.
pub const API_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `call` for at most [`API_CALL_TIMEOUT`].
async fn bounded<T>(
    action: &'static str,
    object: &str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(API_CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(Error::ApiTimeout {
                action,
                object: object.to_owned(),
                timeout: API_CALL_TIMEOUT,
            })
        })
}
