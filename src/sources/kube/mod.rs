//! The Kubernetes API source (layer 5): systemk as a node of a cluster. [`node`] registers
//! the Node and posts its status, [`lease`] renews its heartbeat, [`pods`] turns the pods
//! bound to the node into desired sets for the reconciler, and [`status`] reports back:
//! pod status, deletion once a pod's units are gone, mirror pods for static pods
//! (`mirror`) and events (`events`). Every task retries API failures with back-off
//! forever and stops only when the agent stops it (the status reporter: when the
//! reconciler's progress ends, after the last status): pods keep running through an
//! outage.
//!
//! Unlike the manifest source this one reads the reconciler's [`crate::pod::Progress`]
//! (layer 4, below) to report status; it never touches units itself.

mod api_requests;
pub mod certificates;
mod conditions;
mod events;
mod host;
pub mod lease;
mod mirror;
pub mod node;
mod node_events;
mod node_object;
mod objects;
pub mod pod_changes;
pub mod pods;
mod readiness;
mod services;
pub mod status;
mod status_patch;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use api_requests::{ApiRequests, RequestLabels};
pub use conditions::{Pressures, node_conditions, pressures};
pub use events::EventPublisher;
pub use host::{HostFacts, read_facts};
pub use node_events::{NodeEvent, transitions};
pub use node_object::{
    INSTANCE_TYPE, KUBELET_PORT, KUBERNETES_VERSION, NodeConfig, TAINT_EFFECT, TAINT_KEY,
    TAINT_VALUE, VERSION_ANNOTATION, admission_view,
};
pub use objects::ApiObjects;
pub use readiness::{RECONCILER_THRESHOLD, Readiness, readiness};

use crate::sources::{Error, Result};

/// The cluster `kubeconfig` names (its current context): a client whose requests count
/// in `requests`, and the API server's host and port, which pods get as
/// `KUBERNETES_SERVICE_HOST/PORT`.
pub async fn connect(
    kubeconfig: &Path,
    requests: &ApiRequests,
) -> Result<(Client, Option<(String, u16)>)> {
    let invalid = |message: String| Error::Kubeconfig {
        path: kubeconfig.to_owned(),
        message,
    };
    let file = Kubeconfig::read_from(kubeconfig).map_err(|err| invalid(err.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|err| invalid(err.to_string()))?;
    let api_server = api_server_address(&config.cluster_url.to_string());
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|err| invalid(err.to_string()))?
        .with_layer(requests)
        .build();
    Ok((client, api_server))
}

/// Host and port of the API server's URL; the port defaults to the scheme's.
fn api_server_address(url: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(url).ok()?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    Some((host.to_owned(), url.port_or_known_default()?))
}

/// Longest wait for one API call (or one node status round) before it counts as failed
/// and is retried: a hung connection must not stall heartbeats for the client's
/// five-minute read timeout. The kubelet bounds its lease calls the same way.
pub const API_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Deletion of the pod with this UID, now (grace 0) and only if it is still that pod:
/// its containers are stopped already, or it never ran any (a mirror pod).
fn delete_at_once(uid: &str) -> kube::api::DeleteParams {
    kube::api::DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(kube::api::Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..kube::api::DeleteParams::default()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_server_address_defaults_the_port_and_unbrackets_ipv6() {
        let address = |url| api_server_address(url).unwrap();
        assert_eq!(address("https://10.0.0.1:6443"), ("10.0.0.1".into(), 6443));
        assert_eq!(address("https://api.example/"), ("api.example".into(), 443));
        assert_eq!(address("https://[::1]:6443/"), ("::1".into(), 6443));
        assert_eq!(api_server_address("not a url"), None);
    }
}
