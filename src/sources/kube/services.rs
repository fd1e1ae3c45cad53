//! The Services pods' environments are built from, as the kubelet's Service informer:
//! one list and watch of every Service, started at the first read and kept as
//! [`ServiceLink`]s (only those with a cluster IP: the others give no variables). A read
//! for a pod from the API waits, bounded, until the first list finished, as the kubelet
//! builds no environment before its informer synced ("services have not yet been read at
//! least once"); one for a static pod takes what is there. Changes
//! are not announced: the kubelet reads Services only when it starts a container.
//! Needs `list` and `watch` on `services` at the cluster scope (the kubelet's
//! `system:node` role has them). Layer 5.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Once, PoisonError};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use super::API_CALL_TIMEOUT;
use crate::pod::Error as PodError;
use crate::pod::env::{ServiceLink, ServiceLinkPort};

/// Services by namespace and name.
type Links = BTreeMap<(String, String), ServiceLink>;

/// The Services as the watch last saw them.
#[derive(Clone)]
pub(super) struct ServiceCache {
    shared: Arc<Shared>,
}

struct Shared {
    started: Once,
    links: Mutex<Links>,
    /// True once the first list finished.
    synced: watch::Sender<bool>,
}

impl ServiceCache {
    pub(super) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                started: Once::new(),
                links: Mutex::default(),
                synced: watch::Sender::new(false),
            }),
        }
    }

    /// The Services of `namespace` and `default`; starts the watch on first use. With
    /// `wait`, fails unless the first list finished within [`API_CALL_TIMEOUT`].
    pub(super) async fn services(
        &self,
        client: &Client,
        namespace: &str,
        wait: bool,
    ) -> Result<Vec<ServiceLink>, PodError> {
        self.shared.started.call_once(|| {
            tokio::spawn(run(self.shared.clone(), Api::all(client.clone())));
        });
        let mut synced = self.shared.synced.subscribe();
        let listed = !wait
            || matches!(
                tokio::time::timeout(API_CALL_TIMEOUT, synced.wait_for(|done| *done)).await,
                Ok(Ok(_))
            );
        if !listed {
            return Err(PodError::ObjectLookup {
                object: "services".to_owned(),
                why: "services have not yet been read at least once, cannot construct envvars"
                    .to_owned(),
            });
        }
        let links = self
            .shared
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(links
            .values()
            .filter(|link| link.namespace == namespace || link.namespace == "default")
            .cloned()
            .collect())
    }
}

/// Keeps `shared` current from a watch of every Service, for as long as systemk runs.
async fn run(shared: Arc<Shared>, api: Api<Service>) {
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    tokio::pin!(stream);
    let mut listing = Links::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %crate::error_chain::Chain(&err), "service watch failed; retrying");
                continue;
            }
        };
        let mut links = shared.links.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Init => listing.clear(),
            Event::InitApply(service) => keep(&mut listing, &service),
            Event::InitDone => {
                *links = std::mem::take(&mut listing);
                drop(links);
                shared.synced.send_replace(true);
            }
            Event::Apply(service) => keep(&mut links, &service),
            Event::Delete(service) => {
                links.remove(&key(&service));
            }
        }
    }
}

fn key(service: &Service) -> (String, String) {
    let meta = &service.metadata;
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Keeps `service` when it has a cluster IP, else forgets it.
fn keep(links: &mut Links, service: &Service) {
    let key = key(service);
    match link(service) {
        Some(link) => links.insert(key, link),
        None => links.remove(&key),
    };
}

/// What the environment needs of `service`; `None` without a cluster IP.
fn link(service: &Service) -> Option<ServiceLink> {
    let spec = service.spec.as_ref()?;
    let cluster_ip = spec.cluster_ip.clone().unwrap_or_default();
    if cluster_ip.is_empty() || cluster_ip == "None" {
        return None;
    }
    let (namespace, name) = key(service);
    Some(ServiceLink {
        namespace,
        name,
        cluster_ip,
        ports: spec
            .ports
            .iter()
            .flatten()
            .map(|port| ServiceLinkPort {
                name: port.name.clone().unwrap_or_default(),
                port: port.port,
                protocol: port.protocol.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(ip: Option<&str>) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "shop", "name": "web"},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]},
        }))
        .unwrap()
    }

    #[test]
    fn only_services_with_a_cluster_ip_are_kept() {
        let mut links = Links::new();
        keep(&mut links, &service(Some("10.43.0.2")));
        let link = &links[&("shop".to_owned(), "web".to_owned())];
        assert_eq!(link.cluster_ip, "10.43.0.2");
        assert_eq!(
            link.ports,
            [ServiceLinkPort {
                name: "http".to_owned(),
                port: 80,
                protocol: String::new()
            }]
        );
        keep(&mut links, &service(Some("None")));
        assert!(links.is_empty(), "a service made headless is forgotten");
        keep(&mut links, &service(None));
        assert!(links.is_empty());
    }
}
