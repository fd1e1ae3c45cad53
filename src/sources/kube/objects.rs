//! The pod layer's [`ObjectLookup`] over the API: reads the configMaps and secrets a
//! container's environment names, each call bounded like every other API call. Layer 5.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use super::bounded;
use crate::pod::env::LookupFuture;
use crate::pod::{Error as PodError, ObjectLookup};
use crate::sources::Error;

/// Reads configMaps and secrets with the node's client.
#[derive(Clone)]
pub struct ApiObjects {
    client: Client,
}

impl ApiObjects {
    /// A lookup over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The pod layer's error for a failed read, with the client's reason.
fn lookup_failed(kind: &str, namespace: &str, name: &str, err: Error) -> PodError {
    let why = match std::error::Error::source(&err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    };
    PodError::ObjectLookup {
        object: format!("{kind} {namespace}/{name}"),
        why,
    }
}

impl ObjectLookup for ApiObjects {
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<BTreeMap<String, String>>> {
        Box::pin(async move {
            let api = Api::<ConfigMap>::namespaced(self.client.clone(), namespace);
            let object = format!("{namespace}/{name}");
            let found = bounded("get configmap", &object, async {
                api.get_opt(name)
                    .await
                    .map_err(Error::api("get configmap", &object))
            })
            .await
            .map_err(|err| lookup_failed("configmap", namespace, name, err))?;
            Ok(found.map(|cm| cm.data.unwrap_or_default()))
        })
    }

    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> LookupFuture<'a, Option<BTreeMap<String, Vec<u8>>>> {
        Box::pin(async move {
            let api = Api::<Secret>::namespaced(self.client.clone(), namespace);
            let object = format!("{namespace}/{name}");
            let found = bounded("get secret", &object, async {
                api.get_opt(name)
                    .await
                    .map_err(Error::api("get secret", &object))
            })
            .await
            .map_err(|err| lookup_failed("secret", namespace, name, err))?;
            Ok(found.map(|secret| {
                secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(key, bytes)| (key, bytes.0))
                    .collect()
            }))
        })
    }
}
