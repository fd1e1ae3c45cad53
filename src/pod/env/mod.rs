//! A container's environment as the kubelet computes it (`makeEnvironmentVariables` in
//! `kubelet_pods.go`): `envFrom` first (configMaps and secrets, with `prefix`), then `env`
//! in order (later wins), `value`s `$(VAR)`-expanded against what is defined so far and
//! the service variables ([`services`]; the pod's own variables win over them), `valueFrom` resolved from configMaps, secrets, the pod's fields
//! and the container's resources; then `command` and `args` expanded against the result.
//! The resolved container holds only plain `value`s, so the unit layer never sees a
//! reference. The configMaps and secrets are fetched before (see
//! [`super::objects::ObjectLookup`]) so
//! resolving stays pure. Layer 4: must not import `sources`.

mod expansion;
mod file;
mod resources;
mod services;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod};

use super::error::{Error, Result};
use super::objects::ReferencedObjects;
pub use crate::pod::service_link::{ServiceLink, ServiceLinkPort};
pub use file::sync_env_file;
pub use resources::NodeAllocatable;
pub(crate) use resources::resource_value;

/// What the pod's environment may name besides the pod itself.
#[derive(Debug, Clone, Default)]
pub struct EnvFacts {
    /// The node's address (`status.hostIP`).
    pub host_ip: Option<IpAddr>,
    /// The pod's address (`status.podIP`): pods use the host's network.
    pub pod_ip: Option<IpAddr>,
    /// The node's name (`spec.nodeName` when the spec has none).
    pub node_name: String,
    /// The API server systemk talks to (host, port), for `KUBERNETES_SERVICE_HOST/PORT`.
    pub kubernetes_service: Option<(String, u16)>,
    /// The Services whose variables pods may get (their namespace's and `default/kubernetes`);
    /// empty without an API server.
    pub services: Vec<ServiceLink>,
    /// What `limits.*` give when the container sets no limit.
    pub allocatable: NodeAllocatable,
}

/// A copy of `container` whose `env` holds only plain values in the kubelet's order and
/// whose `command` and `args` are expanded; `envFrom` is emptied. `objects` is `None`
/// when systemk has no API server: then naming a configMap or secret is an error.
pub fn resolve_container(
    pod: &Pod,
    container: &Container,
    objects: Option<&ReferencedObjects>,
    facts: &EnvFacts,
) -> Result<Container> {
    let fail = |why: String| Error::EnvConfig {
        container: container.name.clone(),
        why,
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let service = service_env(pod, facts);
    let mut env = OrderedEnv::default();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or_default();
        let entries = if let Some(cm) = &source.config_map_ref {
            let optional = cm.optional.unwrap_or(false);
            objects_for(objects, &cm.name, &fail)?
                .config_map(&cm.name, optional)
                .map_err(&fail)?
                .map(|cm| cm.data.clone())
        } else if let Some(secret) = &source.secret_ref {
            let optional = secret.optional.unwrap_or(false);
            objects_for(objects, &secret.name, &fail)?
                .secret(&secret.name, optional)
                .map_err(&fail)?
                .map(|data| {
                    data.iter()
                        .map(|(k, v)| Ok((k.clone(), secret_text(k, v)?)))
                        .collect::<Result<BTreeMap<_, _>, String>>()
                })
                .transpose()
                .map_err(&fail)?
        } else {
            None
        };
        for (key, value) in entries.into_iter().flatten() {
            let name = format!("{prefix}{key}");
            if is_env_name(&name) {
                env.set(name, value);
            } else {
                tracing::warn!(container = %container.name, variable = %name, "envFrom key is not a valid variable name: skipped");
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (var.value.as_deref(), &var.value_from) {
            (Some(value), _) if !value.is_empty() => Some(expansion::expand(value, |name| {
                env.get(name)
                    .or_else(|| service.get(name).map(String::as_str))
            })),
            (_, Some(source)) => {
                value_from(pod, container, namespace, var, source, objects, facts).map_err(&fail)?
            }
            _ => Some(String::new()),
        };
        if let Some(value) = value {
            env.set(var.name.clone(), value);
        }
    }
    let mut all = OrderedEnv::default();
    for (name, value) in &service {
        if env.get(name).is_none() {
            all.set(name.clone(), value.clone());
        }
    }
    for (name, value) in env.entries {
        all.set(name, value);
    }
    let expand_all = |words: &Option<Vec<String>>| {
        words.as_ref().map(|words| {
            words
                .iter()
                .map(|word| expansion::expand(word, |name| all.get(name)))
                .collect()
        })
    };
    Ok(Container {
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        env: (!all.entries.is_empty() || container.env.is_some()).then(|| {
            all.entries
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: Some(value.clone()),
                    value_from: None,
                })
                .collect()
        }),
        env_from: None,
        ..container.clone()
    })
}

/// Variables in the order they were first defined; setting one again replaces its value.
#[derive(Debug, Default)]
struct OrderedEnv {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&at) => self.entries[at].1 = value,
            None => {
                self.index.insert(name.clone(), self.entries.len());
                self.entries.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&at| self.entries[at].1.as_str())
    }
}

fn objects_for<'a>(
    objects: Option<&'a ReferencedObjects>,
    name: &str,
    fail: &impl Fn(String) -> Error,
) -> Result<&'a ReferencedObjects> {
    objects.ok_or_else(|| {
        fail(format!(
            "{name:?} is a configMap or secret: that needs the Kubernetes API, and systemk runs without one"
        ))
    })
}

/// The kubelet's service variables (see [`services`]), with `KUBERNETES_SERVICE_HOST` and
/// `_PORT` naming the API server systemk itself uses: pods share the host's network, where
/// a cluster IP reaches nothing unless the node runs a service proxy, and in-cluster
/// clients read only these two. The kubelet gives them to static pods too.
fn service_env(pod: &Pod, facts: &EnvFacts) -> BTreeMap<String, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.enable_service_links)
        .unwrap_or(true);
    let mut env = services::service_variables(&facts.services, namespace, links);
    if let Some((host, port)) = &facts.kubernetes_service {
        env.insert("KUBERNETES_SERVICE_HOST".to_owned(), host.clone());
        env.insert("KUBERNETES_SERVICE_PORT".to_owned(), port.to_string());
    }
    env
}

/// The value of one `valueFrom`; `None` when an optional source is missing (the variable
/// is then left out, as the kubelet does).
fn value_from(
    pod: &Pod,
    container: &Container,
    namespace: &str,
    var: &EnvVar,
    source: &EnvVarSource,
    objects: Option<&ReferencedObjects>,
    facts: &EnvFacts,
) -> Result<Option<String>, String> {
    let need = |name: &str| {
        objects.ok_or_else(|| {
            format!(
                "env {} names {name:?}: configMaps and secrets need the Kubernetes API, and systemk runs without one",
                var.name
            )
        })
    };
    if let Some(key_ref) = &source.config_map_key_ref {
        let optional = key_ref.optional.unwrap_or(false);
        let Some(config_map) = need(&key_ref.name)?.config_map(&key_ref.name, optional)? else {
            return Ok(None);
        };
        return match config_map.data.get(&key_ref.key) {
            Some(value) => Ok(Some(value.clone())),
            None if optional => Ok(None),
            None => Err(format!(
                "couldn't find key {} in ConfigMap {namespace}/{}",
                key_ref.key, key_ref.name
            )),
        };
    }
    if let Some(key_ref) = &source.secret_key_ref {
        let optional = key_ref.optional.unwrap_or(false);
        let Some(data) = need(&key_ref.name)?.secret(&key_ref.name, optional)? else {
            return Ok(None);
        };
        return match data.get(&key_ref.key) {
            Some(value) => secret_text(&key_ref.key, value).map(Some),
            None if optional => Ok(None),
            None => Err(format!(
                "couldn't find key {} in Secret {namespace}/{}",
                key_ref.key, key_ref.name
            )),
        };
    }
    if let Some(field) = &source.field_ref {
        return field_value(pod, field, facts).map(Some);
    }
    if let Some(resource) = &source.resource_field_ref {
        return resources::resource_value(container, resource, &facts.allocatable).map(Some);
    }
    Err(format!("env {} has an empty valueFrom", var.name))
}

/// A secret's bytes as an environment value: text without NUL, which systemd cannot carry.
fn secret_text(key: &str, bytes: &[u8]) -> Result<String, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("secret key {key} is not UTF-8 text"))?;
    if text.contains('\0') {
        return Err(format!("secret key {key} contains a NUL byte"));
    }
    Ok(text.to_owned())
}

/// `fieldRef` values, as the kubelet's `podFieldSelectorRuntimeValue`.
pub(crate) fn field_value(
    pod: &Pod,
    field: &ObjectFieldSelector,
    facts: &EnvFacts,
) -> Result<String, String> {
    let path = field.field_path.as_str();
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let ip = |ip: Option<IpAddr>| ip.map(|ip| ip.to_string()).unwrap_or_default();
    let from_map = |map: &Option<BTreeMap<String, String>>, rest: &str| -> Option<String> {
        let key = rest.strip_prefix("['")?.strip_suffix("']")?;
        Some(
            map.as_ref()
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or_default(),
        )
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| facts.node_name.clone()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => ip(facts.host_ip),
        "status.podIP" | "status.podIPs" => ip(facts.pod_ip),
        _ => path
            .strip_prefix("metadata.labels")
            .and_then(|rest| from_map(&meta.labels, rest))
            .or_else(|| {
                path.strip_prefix("metadata.annotations")
                    .and_then(|rest| from_map(&meta.annotations, rest))
            })
            .ok_or_else(|| format!("unsupported fieldPath: {path}"))?,
    };
    Ok(value)
}

/// What the unit layer accepts as a variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests;
