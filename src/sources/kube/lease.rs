//! The node's heartbeat: a Lease named after the node in `kube-node-lease`, held by the
//! node for 40 s and renewed every 10 s (the kubelet's defaults), owned by the Node so it
//! goes with it. Failed renewals are retried with the API back-off; the node controller
//! marks the node NotReady only when the lease runs out. Layer 5.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::backoff::{API_SERVER, Retry};
use crate::sources::{Error, Result};

/// Where node leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a renewal holds, in seconds (kubelet `nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the lease is renewed: a quarter of its duration, as the kubelet does.
pub const RENEW_PERIOD: Duration = Duration::from_secs(10);

/// Renews the node's lease until `shutdown`; starts once the Node is registered
/// (`node_uid` holds its UID).
pub async fn run(
    client: Client,
    node_name: String,
    mut node_uid: watch::Receiver<Option<String>>,
    shutdown: impl Future<Output = ()>,
) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let renew_forever = async {
        let mut retry = Retry::new(API_SERVER);
        let mut latest = None;
        loop {
            let uid = match node_uid.wait_for(Option::is_some).await {
                Ok(uid) => uid.clone().unwrap_or_default(),
                // The node task is gone: systemk is shutting down.
                Err(_) => return,
            };
            let renewal = renew(&leases, &node_name, &uid, &mut latest);
            let wait = match super::bounded("renew lease", &node_name, renewal).await {
                Ok(()) => {
                    retry.succeeded();
                    RENEW_PERIOD
                }
                Err(err) => {
                    let delay = retry.failed();
                    tracing::warn!(node = %node_name, error = %crate::error_chain::Chain(&err), retry_in = ?delay,
                        "cannot renew the node lease");
                    delay
                }
            };
            tokio::time::sleep(wait).await;
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = renew_forever => {}
    }
}

/// Moves the lease's renew time to now. `latest` is the lease as the last renewal left
/// it: replaced as it is, without reading it first, as the kubelet does (one request a
/// renewal, not two), since nobody else writes a node's lease. Only when that fails (a
/// 409 because someone did, the lease gone, the API server unreachable) is the lease read
/// again, or created. A renewal cut short leaves `latest` empty: the next one reads.
async fn renew(
    leases: &Api<Lease>,
    node_name: &str,
    node_uid: &str,
    latest: &mut Option<Lease>,
) -> Result<()> {
    if let Some(lease) = latest.take() {
        match replace(leases, node_name, lease).await {
            Ok(renewed) => {
                *latest = Some(renewed);
                return Ok(());
            }
            Err(err) => {
                tracing::debug!(node = %node_name, error = %crate::error_chain::Chain(&err),
                    "renewing the last lease written failed: reading it again");
            }
        }
    }
    *latest = Some(read_and_renew(leases, node_name, node_uid).await?);
    Ok(())
}

/// Creates the lease or moves the renew time of the one read now.
async fn read_and_renew(leases: &Api<Lease>, node_name: &str, node_uid: &str) -> Result<Lease> {
    let object = format!("{LEASE_NAMESPACE}/{node_name}");
    let existing = leases
        .get_opt(node_name)
        .await
        .map_err(Error::api("get lease", &object))?;
    let Some(lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(node_name.to_owned()),
                namespace: Some(LEASE_NAMESPACE.to_owned()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".to_owned(),
                    kind: "Node".to_owned(),
                    name: node_name.to_owned(),
                    uid: node_uid.to_owned(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            spec: Some(renewed_spec(node_name, LeaseSpec::default())),
        };
        return leases
            .create(&PostParams::default(), &lease)
            .await
            .map_err(Error::api("create lease", &object));
    };
    replace(leases, node_name, lease).await
}

/// Replaces `lease` with its renew time now. The replace carries the lease's
/// resourceVersion: a concurrent writer makes it a 409.
async fn replace(leases: &Api<Lease>, node_name: &str, mut lease: Lease) -> Result<Lease> {
    let object = format!("{LEASE_NAMESPACE}/{node_name}");
    let previous = lease.spec.take().unwrap_or_default();
    lease.spec = Some(renewed_spec(node_name, previous));
    leases
        .replace(node_name, &PostParams::default(), &lease)
        .await
        .map_err(Error::api("renew lease", &object))
}

/// This node's hold on the lease from now, keeping when it was first acquired and how
/// often it changed hands.
fn renewed_spec(node_name: &str, previous: LeaseSpec) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(node_name.to_owned()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(MicroTime(crate::clock::now())),
        acquire_time: previous.acquire_time,
        lease_transitions: previous.lease_transitions,
        ..LeaseSpec::default()
    }
}
