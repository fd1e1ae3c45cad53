//! What the pod layer reads from the Kubernetes API: the configMaps and secrets that
//! environments and volumes name, and service account tokens for projected volumes.
//! [`ObjectLookup`] is how it asks (the cluster source implements it, serving objects
//! from watches and telling of their changes), and the `fetch_*` functions get each named
//! object once, before the pure resolvers run. Layer 4: must not import `sources`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::{Container, Pod, Volume, VolumeProjection};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::broadcast;

use crate::pod::desired::{CONFIG_SOURCE_ANNOTATION, SourceId};
use crate::pod::error::Result;
use crate::pod::service_link::ServiceLink;

/// A boxed future, so [`ObjectLookup`] can be used as `dyn`.
pub type LookupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Reads configMaps and secrets and asks for tokens. `Ok(None)` means the object does
/// not exist.
pub trait ObjectLookup: Send + Sync {
    /// The `data` and `binaryData` of a configMap.
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<ConfigMapData>>;
    /// The `data` of a secret.
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<BTreeMap<String, Vec<u8>>>>;
    /// A token for a service account, bound to a pod (the TokenRequest API).
    fn service_account_token<'a>(&'a self, request: &'a TokenSpec)
    -> LookupFuture<'a, IssuedToken>;
    /// The Services of `namespace` and of `default`. With `wait`, only once every Service
    /// was read at least once: the kubelet, too, builds no environment for a pod from the
    /// API before its Service informer synced (static pods take what it has).
    fn services<'a>(&'a self, namespace: &'a str, wait: bool)
    -> LookupFuture<'a, Vec<ServiceLink>>;
    /// Tells of every change to an object read before: the pods naming it need a pass.
    /// Services are not announced: the kubelet reads them only when a container starts.
    fn changes(&self) -> broadcast::Receiver<ObjectChange>;
}

/// A configMap's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMapData {
    /// `data`: text values.
    pub data: BTreeMap<String, String>,
    /// `binaryData`: byte values (volumes only; the environment ignores them).
    pub binary_data: BTreeMap<String, Vec<u8>>,
}

impl From<BTreeMap<String, String>> for ConfigMapData {
    fn from(data: BTreeMap<String, String>) -> Self {
        Self {
            data,
            binary_data: BTreeMap::new(),
        }
    }
}

/// Which kind of object changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A configMap.
    ConfigMap,
    /// A secret.
    Secret,
}

/// An object that was created, changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectChange {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What a token is asked for: the `serviceAccountToken` source of a projected volume and
/// the pod it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenSpec {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's service account.
    pub service_account: String,
    /// The audience asked for; `None` for the API server's own.
    pub audience: Option<String>,
    /// The lifetime asked for, in seconds.
    pub expiration_seconds: i64,
    /// The pod the token is bound to: invalid once it is deleted.
    pub pod_name: String,
    /// Its UID.
    pub pod_uid: String,
}

/// A token the API issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// When it stops being valid.
    pub expires_at: Timestamp,
}

/// The configMaps and secrets of one namespace that a container or a pod names, fetched; a
/// `None` value is an object that does not exist.
#[derive(Debug, Clone, Default)]
pub struct ReferencedObjects {
    /// ConfigMaps by name.
    pub config_maps: BTreeMap<String, Option<ConfigMapData>>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

impl ReferencedObjects {
    /// A configMap; `None` when an optional one is missing.
    pub(crate) fn config_map(
        &self,
        name: &str,
        optional: bool,
    ) -> Result<Option<&ConfigMapData>, String> {
        found(self.config_maps.get(name), "configmaps", name, optional)
    }

    /// The data of a secret; `None` when an optional one is missing.
    pub(crate) fn secret(
        &self,
        name: &str,
        optional: bool,
    ) -> Result<Option<&BTreeMap<String, Vec<u8>>>, String> {
        found(self.secrets.get(name), "secrets", name, optional)
    }
}

fn found<'a, T>(
    entry: Option<&'a Option<T>>,
    resource: &str,
    name: &str,
    optional: bool,
) -> Result<Option<&'a T>, String> {
    match entry {
        Some(Some(data)) => Ok(Some(data)),
        _ if optional => Ok(None),
        _ => Err(format!("{resource} {name:?} not found")),
    }
}

/// The names of the configMaps and secrets something refers to.
#[derive(Debug, Default)]
struct References<'a> {
    config_maps: BTreeSet<&'a str>,
    secrets: BTreeSet<&'a str>,
}

/// The names of the configMaps and secrets `container` refers to.
fn container_references(container: &Container) -> References<'_> {
    let mut refs = References::default();
    for source in container.env_from.iter().flatten() {
        if let Some(cm) = &source.config_map_ref {
            refs.config_maps.insert(cm.name.as_str());
        }
        if let Some(secret) = &source.secret_ref {
            refs.secrets.insert(secret.name.as_str());
        }
    }
    for source in container
        .env
        .iter()
        .flatten()
        .filter_map(|v| v.value_from.as_ref())
    {
        if let Some(key) = &source.config_map_key_ref {
            refs.config_maps.insert(key.name.as_str());
        }
        if let Some(key) = &source.secret_key_ref {
            refs.secrets.insert(key.name.as_str());
        }
    }
    refs
}

/// The names of the configMaps and secrets the volumes of `pod` refer to.
fn volume_references(pod: &Pod) -> References<'_> {
    let mut refs = References::default();
    for volume in pod_volumes(pod) {
        if let Some(cm) = &volume.config_map {
            refs.config_maps.insert(cm.name.as_str());
        }
        if let Some(secret) = &volume.secret {
            refs.secrets
                .insert(secret.secret_name.as_deref().unwrap_or_default());
        }
        for source in projections(volume) {
            if let Some(cm) = &source.config_map {
                refs.config_maps.insert(cm.name.as_str());
            }
            if let Some(secret) = &source.secret {
                refs.secrets.insert(secret.name.as_str());
            }
        }
    }
    refs
}

/// Whether `pod` names the object `change` is about, in a volume (whose files follow it)
/// or an environment (whose preparation may have waited for it).
pub fn pod_uses(pod: &Pod, change: &ObjectChange) -> bool {
    if pod.metadata.namespace.as_deref().unwrap_or("default") != change.namespace {
        return false;
    }
    let names = |refs: References<'_>| match change.kind {
        ObjectKind::ConfigMap => refs.config_maps.contains(change.name.as_str()),
        ObjectKind::Secret => refs.secrets.contains(change.name.as_str()),
    };
    names(volume_references(pod))
        || super::containers(pod)
            .iter()
            .any(|c| names(container_references(c.container)))
}

/// The volumes of `pod`.
pub(crate) fn pod_volumes(pod: &Pod) -> impl Iterator<Item = &Volume> {
    pod.spec.iter().flat_map(|s| s.volumes.iter().flatten())
}

/// The sources of a projected volume (none for other kinds).
pub(crate) fn projections(volume: &Volume) -> impl Iterator<Item = &VolumeProjection> {
    volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
}

/// Fetches every configMap and secret `container` names, from `namespace`, each once.
/// `Ok(None)` when there is no API (`lookup` is `None`): the resolver then refuses any
/// reference.
pub async fn fetch_referenced(
    lookup: Option<&dyn ObjectLookup>,
    namespace: &str,
    container: &Container,
) -> Result<Option<ReferencedObjects>> {
    fetch(lookup, namespace, container_references(container)).await
}

/// Fetches every configMap and secret the volumes of `pod` name, each once; `Ok(None)`
/// when there is no API.
pub async fn fetch_for_volumes(
    lookup: Option<&dyn ObjectLookup>,
    pod: &Pod,
) -> Result<Option<ReferencedObjects>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    fetch(lookup, namespace, volume_references(pod)).await
}

/// The Services whose variables the containers of `pod` may get; none without an API.
pub async fn fetch_services(
    lookup: Option<&dyn ObjectLookup>,
    pod: &Pod,
) -> Result<Vec<ServiceLink>> {
    let Some(lookup) = lookup else {
        return Ok(Vec::new());
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let from_api = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_SOURCE_ANNOTATION))
        .is_some_and(|source| source == SourceId::Api.as_str());
    lookup.services(namespace, from_api).await
}

async fn fetch(
    lookup: Option<&dyn ObjectLookup>,
    namespace: &str,
    refs: References<'_>,
) -> Result<Option<ReferencedObjects>> {
    let Some(lookup) = lookup else {
        return Ok(None);
    };
    let mut objects = ReferencedObjects::default();
    for name in refs.config_maps {
        let data = lookup.config_map(namespace, name).await?;
        objects.config_maps.insert(name.to_owned(), data);
    }
    for name in refs.secrets {
        let data = lookup.secret(namespace, name).await?;
        objects.secrets.insert(name.to_owned(), data);
    }
    Ok(Some(objects))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, SecretEnvSource,
    };
    use std::sync::Mutex;

    /// Records each request; only the configMap "present" exists.
    #[derive(Default)]
    struct Recorder {
        asked: Mutex<Vec<String>>,
    }

    impl ObjectLookup for Recorder {
        fn config_map<'a>(
            &'a self,
            namespace: &'a str,
            name: &'a str,
        ) -> LookupFuture<'a, Option<ConfigMapData>> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("cm {namespace}/{name}"));
            Box::pin(async move { Ok((name == "present").then(ConfigMapData::default)) })
        }

        fn secret<'a>(
            &'a self,
            namespace: &'a str,
            name: &'a str,
        ) -> LookupFuture<'a, Option<BTreeMap<String, Vec<u8>>>> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("secret {namespace}/{name}"));
            Box::pin(async { Ok(None) })
        }

        fn service_account_token<'a>(
            &'a self,
            request: &'a TokenSpec,
        ) -> LookupFuture<'a, IssuedToken> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("token {}", request.service_account));
            Box::pin(async {
                Ok(IssuedToken {
                    token: "t".into(),
                    expires_at: Timestamp::UNIX_EPOCH,
                })
            })
        }

        fn services<'a>(
            &'a self,
            _namespace: &'a str,
            _wait: bool,
        ) -> LookupFuture<'a, Vec<ServiceLink>> {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn changes(&self) -> broadcast::Receiver<ObjectChange> {
            broadcast::channel(1).1
        }
    }

    fn cm_key(cm: &str) -> EnvVar {
        EnvVar {
            name: "X".into(),
            value: None,
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: cm.into(),
                    key: "k".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
        }
    }

    #[tokio::test]
    async fn each_named_object_is_fetched_once_from_the_pods_namespace() {
        let container = Container {
            env: Some(vec![cm_key("present"), cm_key("present"), cm_key("absent")]),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "creds".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let recorder = Recorder::default();
        let objects = fetch_referenced(Some(&recorder), "shop", &container)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            *recorder.asked.lock().unwrap(),
            ["cm shop/absent", "cm shop/present", "secret shop/creds"]
        );
        assert_eq!(
            objects.config_maps["present"],
            Some(ConfigMapData::default())
        );
        assert_eq!(objects.config_maps["absent"], None);
        assert_eq!(objects.secrets["creds"], None);
    }

    #[tokio::test]
    async fn without_the_api_nothing_is_fetched() {
        let container = Container {
            env: Some(vec![cm_key("present")]),
            ..Default::default()
        };
        assert!(
            fetch_referenced(None, "shop", &container)
                .await
                .unwrap()
                .is_none()
        );
    }
}
