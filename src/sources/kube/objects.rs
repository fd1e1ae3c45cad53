//! The pod layer's [`ObjectLookup`] over the API, as the kubelet's watch-based object
//! manager: the first read of a configMap or secret starts a watch on that one object
//! (`metadata.name=<name>`, which the Node authorizer allows for objects of the node's
//! pods) and is answered with a GET; later reads are served from the watch, and every
//! change is announced on [`ObjectLookup::changes`] so volumes follow it. A watch nobody
//! read for [`IDLE`] ends. Services come from one watch of them all (`services`).
//! Tokens come from the TokenRequest API. Every call is bounded like every other API
//! call. Layer 5.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::bounded;
use super::services::ServiceCache;
use crate::pod::env::ServiceLink;
use crate::pod::objects::{
    ConfigMapData, IssuedToken, LookupFuture, ObjectChange, ObjectKind, TokenSpec,
};
use crate::pod::{Error as PodError, ObjectLookup};
use crate::sources::Error;

/// A watch whose object no pod read for this long ends (pods with volumes read theirs at
/// every resync, about once a minute).
const IDLE: Duration = Duration::from_secs(10 * 60);
/// Changes buffered for a slow reconciler; one that lags behind resyncs every pod.
const CHANGES_BUFFER: usize = 256;

/// An object's contents as the watch last saw them; `None` when it does not exist.
#[derive(Debug, Clone, PartialEq)]
enum Contents {
    ConfigMap(Option<ConfigMapData>),
    Secret(Option<BTreeMap<String, Vec<u8>>>),
}

#[derive(Debug)]
struct Watched {
    /// `None` until the watch listed the object.
    contents: Option<Contents>,
    last_read: Instant,
}

type Cache = Arc<Mutex<HashMap<ObjectChange, Watched>>>;

/// Reads configMaps and secrets through watches, and tokens, with the node's client.
#[derive(Clone)]
pub struct ApiObjects {
    client: Client,
    cache: Cache,
    services: ServiceCache,
    changes: broadcast::Sender<ObjectChange>,
}

impl ApiObjects {
    /// A lookup over `client`; watches start as Tokio tasks on first reads.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Arc::default(),
            services: ServiceCache::new(),
            changes: broadcast::channel(CHANGES_BUFFER).0,
        }
    }

    /// The watched contents of `key`, marking it read; starts its watch on first use.
    fn watched(&self, key: &ObjectChange) -> Option<Contents> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(watched) = cache.get_mut(key) {
            watched.last_read = Instant::now();
            return watched.contents.clone();
        }
        cache.insert(
            key.clone(),
            Watched {
                contents: None,
                last_read: Instant::now(),
            },
        );
        let watch = ObjectWatch {
            key: key.clone(),
            cache: self.cache.clone(),
            changes: self.changes.clone(),
        };
        let client = self.client.clone();
        match key.kind {
            ObjectKind::ConfigMap => tokio::spawn(watch.run(
                Api::<ConfigMap>::namespaced(client, &key.namespace),
                |cm: Option<ConfigMap>| Contents::ConfigMap(cm.map(config_map_data)),
            )),
            ObjectKind::Secret => tokio::spawn(watch.run(
                Api::<Secret>::namespaced(client, &key.namespace),
                |secret: Option<Secret>| Contents::Secret(secret.map(secret_data)),
            )),
        };
        None
    }
}

/// The pod layer's error for a failed call, with the client's reason.
fn lookup_failed(object: String, err: Error) -> PodError {
    PodError::ObjectLookup {
        object,
        why: crate::error_chain::chain(&err),
    }
}

fn config_map_data(cm: ConfigMap) -> ConfigMapData {
    ConfigMapData {
        data: cm.data.unwrap_or_default(),
        binary_data: cm
            .binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, bytes)| (key, bytes.0))
            .collect(),
    }
}

fn secret_data(secret: Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, bytes)| (key, bytes.0))
        .collect()
}

/// Reads one object with a GET, bounded.
async fn get<K>(
    api: Api<K>,
    action: &'static str,
    key: &ObjectChange,
) -> Result<Option<K>, PodError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let object = format!("{}/{}", key.namespace, key.name);
    bounded(action, &object, async {
        api.get_opt(&key.name)
            .await
            .map_err(Error::api(action, &object))
    })
    .await
    .map_err(|err| lookup_failed(object, err))
}

impl ObjectLookup for ApiObjects {
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<ConfigMapData>> {
        Box::pin(async move {
            let key = key(ObjectKind::ConfigMap, namespace, name);
            if let Some(Contents::ConfigMap(contents)) = self.watched(&key) {
                return Ok(contents);
            }
            let api = Api::<ConfigMap>::namespaced(self.client.clone(), namespace);
            let found = get(api, "get configmap", &key).await?;
            Ok(found.map(config_map_data))
        })
    }

    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<BTreeMap<String, Vec<u8>>>> {
        Box::pin(async move {
            let key = key(ObjectKind::Secret, namespace, name);
            if let Some(Contents::Secret(contents)) = self.watched(&key) {
                return Ok(contents);
            }
            let api = Api::<Secret>::namespaced(self.client.clone(), namespace);
            let found = get(api, "get secret", &key).await?;
            Ok(found.map(secret_data))
        })
    }

    fn service_account_token<'a>(
        &'a self,
        request: &'a TokenSpec,
    ) -> LookupFuture<'a, IssuedToken> {
        Box::pin(async move {
            let object = format!(
                "serviceaccount {}/{}",
                request.namespace, request.service_account
            );
            let api = Api::<ServiceAccount>::namespaced(self.client.clone(), &request.namespace);
            let token_request = TokenRequest {
                spec: TokenRequestSpec {
                    audiences: request.audience.iter().cloned().collect(),
                    expiration_seconds: Some(request.expiration_seconds),
                    bound_object_ref: Some(BoundObjectReference {
                        api_version: Some("v1".to_owned()),
                        kind: Some("Pod".to_owned()),
                        name: Some(request.pod_name.clone()),
                        uid: Some(request.pod_uid.clone()),
                    }),
                },
                ..Default::default()
            };
            let issued = bounded("request a token", &object, async {
                api.create_token_request(
                    &request.service_account,
                    &PostParams::default(),
                    &token_request,
                )
                .await
                .map_err(Error::api("request a token", &object))
            })
            .await
            .map_err(|err| lookup_failed(object.clone(), err))?;
            let status = issued.status.ok_or_else(|| PodError::ObjectLookup {
                object,
                why: "the TokenRequest came back without a token".to_owned(),
            })?;
            Ok(IssuedToken {
                token: status.token,
                expires_at: status.expiration_timestamp.0,
            })
        })
    }

    fn services<'a>(
        &'a self,
        namespace: &'a str,
        wait: bool,
    ) -> LookupFuture<'a, Vec<ServiceLink>> {
        Box::pin(self.services.services(&self.client, namespace, wait))
    }

    fn changes(&self) -> broadcast::Receiver<ObjectChange> {
        self.changes.subscribe()
    }
}

fn key(kind: ObjectKind, namespace: &str, name: &str) -> ObjectChange {
    ObjectChange {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

/// The watch of one object, keeping its entry of the cache current.
struct ObjectWatch {
    key: ObjectChange,
    cache: Cache,
    changes: broadcast::Sender<ObjectChange>,
}

impl ObjectWatch {
    async fn run<K>(self, api: Api<K>, contents: fn(Option<K>) -> Contents)
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.key.name));
        let stream = watcher(api, config).default_backoff();
        tokio::pin!(stream);
        let mut idle_check = tokio::time::interval(IDLE / 4);
        let mut listed: Option<K> = None;
        let mut warned = false;
        loop {
            let event = tokio::select! {
                _ = idle_check.tick() => {
                    if self.ended_idle() {
                        return;
                    }
                    continue;
                }
                event = stream.next() => event,
            };
            let update = match event {
                None => return,
                Some(Err(err)) => {
                    tracing::warn!(object = ?self.key, error = %crate::error_chain::Chain(&err), "object watch failed; retrying");
                    continue;
                }
                Some(Ok(Event::Init)) => {
                    listed = None;
                    continue;
                }
                Some(Ok(
                    Event::InitApply(object) | Event::Apply(object) | Event::Delete(object),
                )) if !is_watched(&object, &self.key) => {
                    if !std::mem::replace(&mut warned, true) {
                        tracing::warn!(
                            object = ?self.key,
                            sent = ?object.meta().name,
                            "the API server sent other objects on this object's watch; ignoring them"
                        );
                    }
                    continue;
                }
                Some(Ok(Event::InitApply(object))) => {
                    listed = Some(object);
                    continue;
                }
                Some(Ok(Event::InitDone)) => contents(listed.take()),
                Some(Ok(Event::Apply(object))) => contents(Some(object)),
                Some(Ok(Event::Delete(_))) => contents(None),
            };
            if !self.store(update) {
                return;
            }
        }
    }

    /// Keeps `update`, announcing it when it differs; false when the entry is gone.
    fn store(&self, update: Contents) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(watched) = cache.get_mut(&self.key) else {
            return false;
        };
        if watched.contents.as_ref() != Some(&update) {
            tracing::debug!(object = ?self.key, "watched object changed");
            watched.contents = Some(update);
            // Nobody listening is fine: then no pod has volumes to update.
            let _ = self.changes.send(self.key.clone());
        }
        true
    }

    /// Removes the entry when nobody read it for [`IDLE`].
    fn ended_idle(&self) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = cache
            .get(&self.key)
            .is_none_or(|watched| watched.last_read.elapsed() >= IDLE);
        if idle {
            cache.remove(&self.key);
            tracing::debug!(object = ?self.key, "object watch ended: no pod reads it");
        }
        idle
    }
}

/// Whether `object` is the one `key` names. A watch selects it by `metadata.name` (and its
/// namespace by path), but a server may ignore field selectors, and another object's
/// contents must never reach a pod's volume.
fn is_watched<K: Resource>(object: &K, key: &ObjectChange) -> bool {
    let meta = object.meta();
    meta.name.as_deref() == Some(key.name.as_str())
        && meta
            .namespace
            .as_deref()
            .is_none_or(|namespace| namespace == key.namespace)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn config_map(namespace: &str, name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn a_watch_keeps_only_the_object_it_names() {
        let watched = key(ObjectKind::ConfigMap, "ns", "app");
        assert!(is_watched(&config_map("ns", "app"), &watched));
        assert!(!is_watched(&config_map("ns", "other"), &watched));
        assert!(!is_watched(&config_map("elsewhere", "app"), &watched));
    }
}
