//! The configMaps and secrets a container's environment names: [`ObjectLookup`] is how
//! the pod layer asks the API for them (the cluster source implements it), and
//! [`fetch_referenced`] gets each named object once, before the pure resolver runs.
//! Layer 4: must not import `sources`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::Container;

use crate::pod::error::Result;

/// A boxed future, so [`ObjectLookup`] can be used as `dyn`.
pub type LookupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Reads configMaps and secrets from the API server. `Ok(None)` means the object does
/// not exist.
pub trait ObjectLookup: Send + Sync {
    /// The `data` of a configMap.
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<BTreeMap<String, String>>>;
    /// The `data` of a secret.
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<BTreeMap<String, Vec<u8>>>>;
}

/// The configMaps and secrets of one namespace a container names, fetched; a `None`
/// value is an object that does not exist.
#[derive(Debug, Clone, Default)]
pub struct ReferencedObjects {
    /// ConfigMaps by name.
    pub config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

impl ReferencedObjects {
    /// The data of a configMap; `None` when an optional one is missing.
    pub(crate) fn config_map(
        &self,
        name: &str,
        optional: bool,
    ) -> Result<Option<&BTreeMap<String, String>>, String> {
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

/// The names of the configMaps and secrets `container` refers to.
fn references(container: &Container) -> (BTreeSet<&str>, BTreeSet<&str>) {
    let mut config_maps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for source in container.env_from.iter().flatten() {
        if let Some(cm) = &source.config_map_ref {
            config_maps.insert(cm.name.as_str());
        }
        if let Some(secret) = &source.secret_ref {
            secrets.insert(secret.name.as_str());
        }
    }
    for source in container
        .env
        .iter()
        .flatten()
        .filter_map(|v| v.value_from.as_ref())
    {
        if let Some(key) = &source.config_map_key_ref {
            config_maps.insert(key.name.as_str());
        }
        if let Some(key) = &source.secret_key_ref {
            secrets.insert(key.name.as_str());
        }
    }
    (config_maps, secrets)
}

/// Fetches every configMap and secret `container` names, from `namespace`, each once.
/// `Ok(None)` when there is no API (`lookup` is `None`): the resolver then refuses any
/// reference.
pub async fn fetch_referenced(
    lookup: Option<&dyn ObjectLookup>,
    namespace: &str,
    container: &Container,
) -> Result<Option<ReferencedObjects>> {
    let Some(lookup) = lookup else {
        return Ok(None);
    };
    let (config_maps, secrets) = references(container);
    let mut objects = ReferencedObjects::default();
    for name in config_maps {
        let data = lookup.config_map(namespace, name).await?;
        objects.config_maps.insert(name.to_owned(), data);
    }
    for name in secrets {
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
        ) -> LookupFuture<'a, Option<BTreeMap<String, String>>> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("cm {namespace}/{name}"));
            Box::pin(async move { Ok((name == "present").then(BTreeMap::new)) })
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
        assert_eq!(objects.config_maps["present"], Some(BTreeMap::new()));
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
