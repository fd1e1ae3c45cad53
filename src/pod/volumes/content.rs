//! The files of configMap, secret, downwardAPI and projected volumes, as the kubelet
//! computes them: all keys or the `items` asked for (a missing key is an error unless
//! the source is `optional`), each file's mode from its item or the volume's
//! `defaultMode` (0644), labels and annotations in the kubelet's `key="value"` format,
//! tokens from the TokenRequest API for `serviceAccountToken` sources. Pure: the objects
//! and tokens are fetched before. Layer 4.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, KeyToPath, Pod, ServiceAccountTokenProjection, Volume,
};

use super::atomic::{Payload, VolumeFile, check_payload_path};
use crate::pod::env::{EnvFacts, field_value, resource_value};
use crate::pod::objects::{
    IssuedToken, ObjectKind, ReferencedObjects, TokenSpec, pod_volumes, projections,
};

/// The kubelet's mode for volume files when the volume sets none (0644).
pub const DEFAULT_MODE: i32 = 0o644;
/// Token lifetime when a `serviceAccountToken` source names none (the API's default).
const DEFAULT_TOKEN_SECONDS: i64 = 3600;

/// What volume files are made of besides the pod.
#[derive(Debug, Clone, Copy)]
pub struct VolumeSources<'a> {
    /// The configMaps and secrets the pod's volumes name; `None` without an API server.
    pub objects: Option<&'a ReferencedObjects>,
    /// The tokens issued for the pod's `serviceAccountToken` sources.
    pub tokens: &'a HashMap<TokenSpec, IssuedToken>,
    /// The node's facts, for `resourceFieldRef` of containers without limits.
    pub facts: &'a EnvFacts,
}

/// The files of `volume`; `Ok(None)` for kinds systemk does not write (emptyDir,
/// hostPath). The error says what is missing or wrong.
pub fn volume_payload(
    pod: &Pod,
    volume: &Volume,
    sources: VolumeSources<'_>,
) -> Result<Option<Payload>, String> {
    let mut files = Files::default();
    if let Some(cm) = &volume.config_map {
        let source = ObjectSource {
            kind: ObjectKind::ConfigMap,
            name: &cm.name,
            items: cm.items.as_deref(),
            optional: cm.optional,
        };
        source.add_to(&mut files, default_mode(cm.default_mode)?, sources)?;
    } else if let Some(secret) = &volume.secret {
        let source = ObjectSource {
            kind: ObjectKind::Secret,
            name: secret.secret_name.as_deref().unwrap_or_default(),
            items: secret.items.as_deref(),
            optional: secret.optional,
        };
        source.add_to(&mut files, default_mode(secret.default_mode)?, sources)?;
    } else if let Some(downward) = &volume.downward_api {
        let mode = default_mode(downward.default_mode)?;
        for item in downward.items.iter().flatten() {
            add_downward(&mut files, pod, item, mode, sources.facts)?;
        }
    } else if let Some(projected) = &volume.projected {
        let mode = default_mode(projected.default_mode)?;
        for source in projections(volume) {
            if let Some(cm) = &source.config_map {
                let source = ObjectSource {
                    kind: ObjectKind::ConfigMap,
                    name: &cm.name,
                    items: cm.items.as_deref(),
                    optional: cm.optional,
                };
                source.add_to(&mut files, mode, sources)?;
            } else if let Some(secret) = &source.secret {
                let source = ObjectSource {
                    kind: ObjectKind::Secret,
                    name: &secret.name,
                    items: secret.items.as_deref(),
                    optional: secret.optional,
                };
                source.add_to(&mut files, mode, sources)?;
            } else if let Some(downward) = &source.downward_api {
                for item in downward.items.iter().flatten() {
                    add_downward(&mut files, pod, item, mode, sources.facts)?;
                }
            } else if let Some(token) = &source.service_account_token {
                let spec = token_spec(pod, token);
                let issued = sources.tokens.get(&spec).ok_or_else(|| {
                    format!(
                        "no token was issued for service account {:?}",
                        spec.service_account
                    )
                })?;
                files.add(&token.path, issued.token.as_bytes().to_vec(), mode)?;
            } else {
                return Err(format!(
                    "projected volume {}: only configMap, secret, downwardAPI and serviceAccountToken sources are supported",
                    volume.name
                ));
            }
        }
    } else {
        return Ok(None);
    }
    Ok(Some(files.0))
}

/// The tokens the pod's projected volumes need, each once.
pub fn token_specs(pod: &Pod) -> Vec<TokenSpec> {
    let mut specs: Vec<TokenSpec> = Vec::new();
    for spec in pod_volumes(pod).flat_map(|volume| volume_token_specs(pod, volume)) {
        if !specs.contains(&spec) {
            specs.push(spec);
        }
    }
    specs
}

/// The tokens one volume of `pod` needs.
pub fn volume_token_specs(pod: &Pod, volume: &Volume) -> Vec<TokenSpec> {
    projections(volume)
        .filter_map(|source| source.service_account_token.as_ref())
        .map(|token| token_spec(pod, token))
        .collect()
}

fn token_spec(pod: &Pod, token: &ServiceAccountTokenProjection) -> TokenSpec {
    let spec = pod.spec.as_ref();
    TokenSpec {
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        service_account: spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "default".to_owned()),
        audience: token.audience.clone().filter(|a| !a.is_empty()),
        expiration_seconds: token.expiration_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
        pod_name: pod.metadata.name.clone().unwrap_or_default(),
        pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// A volume's files being collected: every path is checked, and none twice.
#[derive(Default)]
struct Files(Payload);

impl Files {
    fn add(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result<(), String> {
        check_payload_path(path)?;
        if self
            .0
            .insert(path.to_owned(), VolumeFile { data, mode })
            .is_some()
        {
            return Err(format!("two files of the volume have the path {path:?}"));
        }
        Ok(())
    }

    /// All `data` of an object, or the `items` asked for.
    fn add_items(
        &mut self,
        what: &str,
        data: &BTreeMap<String, Vec<u8>>,
        items: Option<&[KeyToPath]>,
        optional: bool,
        mode: u32,
    ) -> Result<(), String> {
        let Some(items) = items.filter(|items| !items.is_empty()) else {
            for (key, value) in data {
                self.add(key, value.clone(), mode)?;
            }
            return Ok(());
        };
        for item in items {
            let Some(value) = data.get(&item.key) else {
                if optional {
                    continue;
                }
                return Err(format!("{what} has no key {:?}", item.key));
            };
            let mode = item.mode.map(file_mode).transpose()?.unwrap_or(mode);
            self.add(&item.path, value.clone(), mode)?;
        }
        Ok(())
    }
}

/// The files of a configMap or secret source: its keys, or the `items` asked for.
struct ObjectSource<'a> {
    kind: ObjectKind,
    name: &'a str,
    items: Option<&'a [KeyToPath]>,
    optional: Option<bool>,
}

impl ObjectSource<'_> {
    fn add_to(
        &self,
        files: &mut Files,
        mode: u32,
        sources: VolumeSources<'_>,
    ) -> Result<(), String> {
        let (kind, name) = match self.kind {
            ObjectKind::ConfigMap => ("configMap", self.name),
            ObjectKind::Secret => ("secret", self.name),
        };
        let optional = self.optional.unwrap_or(false);
        let objects = sources.objects.ok_or_else(|| {
            format!("{kind} {name:?} needs the Kubernetes API, and systemk runs without one")
        })?;
        let data = match self.kind {
            ObjectKind::ConfigMap => objects.config_map(name, optional)?.map(|cm| {
                let mut data: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone().into_bytes()))
                    .collect();
                data.extend(cm.binary_data.clone());
                data
            }),
            ObjectKind::Secret => objects.secret(name, optional)?.cloned(),
        };
        let Some(data) = data else {
            return Ok(());
        };
        files.add_items(
            &format!("{kind} {name:?}"),
            &data,
            self.items,
            optional,
            mode,
        )
    }
}

fn add_downward(
    files: &mut Files,
    pod: &Pod,
    item: &DownwardAPIVolumeFile,
    mode: u32,
    facts: &EnvFacts,
) -> Result<(), String> {
    let mode = item.mode.map(file_mode).transpose()?.unwrap_or(mode);
    let value = if let Some(field) = &item.field_ref {
        let meta = &pod.metadata;
        match field.field_path.as_str() {
            "metadata.labels" => format_map(meta.labels.as_ref()),
            "metadata.annotations" => format_map(meta.annotations.as_ref()),
            path if path.starts_with("metadata.") => field_value(pod, field, facts)?,
            path => {
                return Err(format!(
                    "downwardAPI volume item {}: fieldPath {path} is not supported in volumes",
                    item.path
                ));
            }
        }
    } else if let Some(resource) = &item.resource_field_ref {
        let name = resource.container_name.as_deref().unwrap_or_default();
        let container = crate::pod::containers(pod)
            .into_iter()
            .find(|c| c.container.name == name)
            .ok_or_else(|| {
                format!(
                    "downwardAPI volume item {}: no container named {name:?}",
                    item.path
                )
            })?;
        resource_value(container.container, resource, &facts.allocatable)?
    } else {
        return Err(format!(
            "downwardAPI volume item {} names neither a field nor a resource",
            item.path
        ));
    };
    files.add(&item.path, value.into_bytes(), mode)
}

/// Labels or annotations as the kubelet writes them: `key="value"` lines, sorted, the
/// value quoted as Go's `%q` does.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", go_quote(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
fn go_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() && (c as u32) < 0x10000 => {
                quoted.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn default_mode(mode: Option<i32>) -> Result<u32, String> {
    file_mode(mode.unwrap_or(DEFAULT_MODE))
}

/// A file mode from the API: permission bits only, as the API validates.
fn file_mode(mode: i32) -> Result<u32, String> {
    u32::try_from(mode)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| format!("file mode {mode} is not between 0 and 0777"))
}

#[cfg(test)]
mod tests;
