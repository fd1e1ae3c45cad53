//! Validation of pod and node status writes as kube-apiserver does it, for every field
//! systemk writes, with the real field paths and messages (pkg/apis/core/validation
//! `ValidatePodStatusUpdate`, `validatePodIPs`, `validateHostIPs`,
//! `validatePodConditions`, `ValidateContainerStateTransition`, `ValidateNodeUpdate`,
//! `validateNodeResources`), and the v1 → internal conversion that makes `podIP` and
//! `hostIP` authoritative over the lists (pkg/apis/core/v1/conversion.go).
//!
//! What the real server does NOT check is not checked here either: pod condition
//! statuses (any string), duplicate condition types, container status names, shapes
//! (how many of waiting/running/terminated) or restart counts, node conditions — the
//! upstream code says so ("there is no check that ContainerStatuses … doesn't have
//! duplicate container names or statuses of containers that are not defined in the pod
//! spec"). Pure functions over JSON.

use std::net::IpAddr;

use serde_json::Value;

use super::status::{ApiError, ApiResult};

/// `validation.IsValidIP`'s message.
const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
/// `validatePodIPs`/`validateHostIPs`: more than one address of a family.
const ONE_PER_FAMILY: &str = "may specify no more than one IP for each IP family";
/// `IsQualifiedName`'s regex message.
const QUALIFIED_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
/// `resource.ParseQuantity`'s error, which fails decoding (400) before validation.
const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Field errors: (path, body).
type Errors = Vec<(String, String)>;

/// What `Convert_v1_PodStatus_To_core_PodStatus` does to a pod status written through v1:
/// a `podIP` (`hostIP`) that differs from the first of `podIPs` (`hostIPs`) wins and
/// becomes the only entry; a lone `podIP` fills an empty list; the singular field is
/// then read back from the list.
pub fn convert_pod_status(pod: &mut Value) {
    for (single, list) in [("podIP", "podIPs"), ("hostIP", "hostIPs")] {
        let status = &mut pod["status"];
        let Some(ip) = status[single].as_str().filter(|ip| !ip.is_empty()) else {
            continue;
        };
        let first = status[list][0]["ip"].as_str();
        if first != Some(ip) {
            status[list] = serde_json::json!([{ "ip": ip }]);
        }
    }
}

/// `ValidatePodStatusUpdate` for the fields systemk writes: 422 with every error found.
pub fn validate_pod_status(old: &Value, new: &Value) -> ApiResult<()> {
    let status = &new["status"];
    let mut errors = Errors::new();
    for (i, condition) in items(&status["conditions"]).enumerate() {
        let type_ = condition["type"].as_str().unwrap_or("");
        if !matches!(type_, "PodScheduled" | "Ready" | "Initialized") {
            // The real code builds this path under `metadata` (an upstream slip).
            let path = format!("metadata.conditions[{i}].Type");
            for why in qualified_name_errors(type_) {
                errors.push((path.clone(), format!("Invalid value: {type_:?}: {why}")));
            }
        }
    }
    if new["spec"]["nodeName"] != old["spec"]["nodeName"] {
        errors.push((
            "status.nodeName".into(),
            "Forbidden: may not be changed directly".into(),
        ));
    }
    let old_qos = old["status"]["qosClass"].as_str().unwrap_or("");
    let new_qos = status["qosClass"].as_str().unwrap_or("");
    if !old_qos.is_empty() && old_qos != new_qos {
        errors.push((
            "status.qosClass".into(),
            format!("Invalid value: {new_qos:?}: field is immutable"),
        ));
    }
    let policy = old["spec"]["restartPolicy"].as_str().unwrap_or("Always");
    for field in ["containerStatuses", "initContainerStatuses"] {
        errors.extend(state_transitions(old, new, field, policy));
    }
    errors.extend(ip_list_errors(&status["podIPs"], "status.podIPs", "PodIP"));
    let host_ips: Vec<&Value> = items(&status["hostIPs"]).collect();
    if let Some(first) = host_ips.first() {
        let first_ip = first["ip"].as_str().unwrap_or("");
        if status["hostIP"].as_str().unwrap_or("") != first_ip {
            errors.push((
                "status.hostIPs[0].ip".into(),
                format!("Invalid value: {first_ip:?}: must be equal to `hostIP`"),
            ));
        }
        errors.extend(ip_list_errors(
            &status["hostIPs"],
            "status.hostIPs",
            "HostIP",
        ));
    }
    finish("Pod", new, errors)
}

/// `ValidateNodeUpdate` for the status fields systemk writes: capacity and allocatable
/// quantities (a malformed one fails decoding with 400, a negative one is 422) and
/// duplicate addresses. Node conditions are not validated by the real server.
pub fn validate_node_status(node: &Value) -> ApiResult<()> {
    let status = &node["status"];
    let mut errors = Errors::new();
    for list in ["capacity", "allocatable"] {
        for (resource, quantity) in status[list].as_object().into_iter().flatten() {
            let text = quantity
                .as_str()
                .map(str::to_owned)
                .unwrap_or(quantity.to_string());
            if !is_quantity(&text) {
                return Err(ApiError::bad_request(format!(
                    "Node in version \"v1\" cannot be handled as a Node: {QUANTITY_SYNTAX}"
                )));
            }
            if text.starts_with('-')
                && text
                    .trim_start_matches(['-', '0', '.'])
                    .chars()
                    .any(|c| c.is_ascii_digit())
            {
                errors.push((
                    format!("status.{list}.{resource}"),
                    format!("Invalid value: {text:?}: must be greater than or equal to 0"),
                ));
            }
        }
    }
    let addresses: Vec<&Value> = items(&status["addresses"]).collect();
    for (i, address) in addresses.iter().enumerate() {
        if addresses[..i].contains(address) {
            let type_ = address["type"].as_str().unwrap_or("");
            let value = address["address"].as_str().unwrap_or("");
            errors.push((
                format!("status.addresses[{i}]"),
                format!("Duplicate value: core.NodeAddress{{Type:{type_:?}, Address:{value:?}}}"),
            ));
        }
    }
    finish("Node", node, errors)
}

fn finish(kind: &str, object: &Value, errors: Errors) -> ApiResult<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    Err(ApiError::invalid_fields("", kind, name, &errors))
}

fn items(list: &Value) -> impl Iterator<Item = &Value> {
    list.as_array().into_iter().flatten()
}

/// `validatePodIPs`/`validateHostIPs`: each a valid IP; more than one only as one IPv4 and
/// one IPv6 address. `go_type` names the element type as `%#v` prints the list.
fn ip_list_errors(list: &Value, path: &str, go_type: &str) -> Errors {
    let ips: Vec<&str> = items(list)
        .map(|item| item["ip"].as_str().unwrap_or(""))
        .collect();
    let mut errors = Errors::new();
    let mut parsed = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        match ip.parse::<IpAddr>() {
            Ok(address) => parsed.push(address),
            Err(_) => errors.push((
                format!("{path}[{i}]"),
                format!("Invalid value: {ip:?}: {INVALID_IP}"),
            )),
        }
    }
    if ips.len() > 1 {
        let v4 = parsed.iter().filter(|ip| ip.is_ipv4()).count();
        let v6 = parsed.iter().filter(|ip| ip.is_ipv6()).count();
        if ips.len() > 2 || v4 == 0 || v6 == 0 {
            let printed: Vec<String> = ips
                .iter()
                .map(|ip| format!("core.{go_type}{{IP:{ip:?}}}"))
                .collect();
            errors.push((
                path.to_owned(),
                format!(
                    "Invalid value: []core.{go_type}{{{}}}: {ONE_PER_FAMILY}",
                    printed.join(", ")
                ),
            ));
        }
    }
    errors
}

/// `ValidateContainerStateTransition`: unless the pod restarts always, a container that
/// terminated (with 0 under OnFailure) may not leave the terminated state.
fn state_transitions(old: &Value, new: &Value, field: &str, policy: &str) -> Errors {
    let mut errors = Errors::new();
    if policy == "Always" {
        return errors;
    }
    for (i, before) in items(&old["status"][field]).enumerate() {
        let Some(terminated) = before["state"].get("terminated").filter(|t| t.is_object()) else {
            continue;
        };
        if terminated["exitCode"].as_i64().unwrap_or(0) != 0 && policy == "OnFailure" {
            continue;
        }
        // A sidecar (restartable init container) always may restart.
        let sidecar = items(&old["spec"]["initContainers"])
            .any(|c| c["name"] == before["name"] && c["restartPolicy"] == "Always");
        if field == "initContainerStatuses" && sidecar {
            continue;
        }
        let left = items(&new["status"][field]).any(|after| {
            after["name"] == before["name"]
                && after["state"].get("terminated").is_none_or(Value::is_null)
        });
        if left {
            errors.push((
                format!("status.{field}[{i}].state"),
                "Forbidden: may not be transitioned to non-terminated state".into(),
            ));
        }
    }
    errors
}

/// `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let name = match value.split('/').collect::<Vec<_>>().as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else if !super::objects::is_subdomain(prefix) {
                errors.push(format!("prefix part {}", super::objects::SUBDOMAIN_MESSAGE));
            }
            *name
        }
        _ => {
            return vec![
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_owned(),
            ];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    let bytes = name.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let valid = !bytes.is_empty()
        && bytes.iter().all(inner)
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !valid {
        errors.push(QUALIFIED_NAME.to_owned());
    }
    errors
}

/// Whether `text` parses as a `resource.Quantity`: sign, digits with at most one dot,
/// then a suffix (binary `Ki`…`Ei`, decimal `n u m k M G T P E`, or an exponent `e3`/`E3`).
fn is_quantity(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let split = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(split);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return false;
    }
    let exponent = |s: &str| {
        let s = s.strip_prefix(['+', '-']).unwrap_or(s);
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
    };
    matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(exponent)
}
