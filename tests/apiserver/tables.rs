//! Server-side printing: when a client asks for `as=Table` (kubectl get does), lists, gets and
//! watch events are returned as `meta.k8s.io/v1` Tables with the columns kube-apiserver's
//! printers use for the served kinds (pods, nodes, namespaces, configmaps, secrets, leases,
//! deployments, replicasets, events) and the default Name / Created At columns otherwise.
//! Pure functions of the objects and the clock.

use axum::http::{HeaderMap, header};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::objects::unix_now;
use super::resources::Resource;

/// Whether the request's Accept header asks for a Table.
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("as=Table"))
}

/// `duration.HumanDuration` of apimachinery, as ages print.
pub fn human_duration(seconds: i64) -> String {
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    match seconds {
        s if s < -1 => "<invalid>".into(),
        s if s < 0 => "0s".into(),
        s if s < 120 => format!("{s}s"),
        _ if minutes < 10 && seconds % 60 == 0 => format!("{minutes}m"),
        _ if minutes < 10 => format!("{minutes}m{}s", seconds % 60),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 && minutes % 60 == 0 => format!("{hours}h"),
        _ if hours < 8 => format!("{hours}h{}m", minutes % 60),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 192 && hours % 24 == 0 => format!("{days}d"),
        _ if hours < 192 => format!("{days}d{}h", hours % 24),
        _ if days < 730 => format!("{days}d"),
        _ if days < 2920 && days % 365 == 0 => format!("{}y", days / 365),
        _ if days < 2920 => format!("{}y{}d", days / 365, days % 365),
        _ => format!("{}y", days / 365),
    }
}

fn age(object: &Value) -> Value {
    let created = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok());
    json!(created.map_or_else(
        || "<unknown>".to_string(),
        |t| human_duration(unix_now() - t.as_second())
    ))
}

fn text(value: &Value) -> Value {
    json!(value.as_str().filter(|s| !s.is_empty()).unwrap_or("<none>"))
}

/// (column name, type, priority) of each kind's table.
fn columns(resource: &Resource) -> &'static [(&'static str, &'static str, u8)] {
    match resource.plural {
        "pods" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        "nodes" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
        ],
        "namespaces" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ],
        "configmaps" => &[
            ("Name", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        "secrets" => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        "leases" => &[
            ("Name", "string", 0),
            ("Holder", "string", 0),
            ("Age", "string", 0),
        ],
        "certificatesigningrequests" => &[
            ("Name", "string", 0),
            ("Age", "string", 0),
            ("SignerName", "string", 0),
            ("Requestor", "string", 0),
            ("RequestedDuration", "string", 0),
            ("Condition", "string", 0),
        ],
        "deployments" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
        ],
        "replicasets" => &[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
        ],
        "events" if resource.group.is_empty() => &[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _ => &[("Name", "string", 0), ("Created At", "date", 0)],
    }
}

/// The pod STATUS column, as `printPod` derives it (a subset: phase, reasons, Terminating).
fn pod_status(pod: &Value) -> String {
    let mut status = pod["status"]["reason"]
        .as_str()
        .or(pod["status"]["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    for container in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let state = &container["state"];
        if let Some(reason) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            status = reason.to_string();
        } else if let Some(reason) = state["terminated"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            status = reason.to_string();
        }
    }
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        status = "Terminating".into();
    }
    status
}

fn count(value: &Value) -> usize {
    value.as_object().map_or(0, |map| map.len())
}

fn cells(resource: &Resource, object: &Value) -> Vec<Value> {
    let name = json!(object["metadata"]["name"]);
    let int = |value: &Value| json!(value.as_i64().unwrap_or(0));
    match resource.plural {
        "pods" => {
            let statuses = object["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = object["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|s| s["restartCount"].as_i64())
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(object)),
                json!(restarts.to_string()),
                age(object),
                text(&object["status"]["podIP"]),
                text(&object["spec"]["nodeName"]),
            ]
        }
        "nodes" => {
            let conditions = object["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ready = conditions
                .iter()
                .find(|c| c["type"] == "Ready")
                .map(|c| c["status"] == "True");
            let mut status = match ready {
                Some(true) => "Ready",
                Some(false) => "NotReady",
                None => "Unknown",
            }
            .to_string();
            if object["spec"]["unschedulable"] == true {
                status.push_str(",SchedulingDisabled");
            }
            vec![
                name,
                json!(status),
                json!("<none>"),
                age(object),
                text(&object["status"]["nodeInfo"]["kubeletVersion"]),
            ]
        }
        "namespaces" => vec![name, text(&object["status"]["phase"]), age(object)],
        "configmaps" => vec![
            name,
            json!(count(&object["data"]) + count(&object["binaryData"])),
            age(object),
        ],
        "secrets" => vec![
            name,
            text(&object["type"]),
            json!(count(&object["data"])),
            age(object),
        ],
        "leases" => vec![name, text(&object["spec"]["holderIdentity"]), age(object)],
        "certificatesigningrequests" => vec![
            name,
            age(object),
            text(&object["spec"]["signerName"]),
            text(&object["spec"]["username"]),
            json!(
                object["spec"]["expirationSeconds"]
                    .as_i64()
                    .map_or_else(|| "<none>".to_owned(), human_duration)
            ),
            json!(csr_condition(object)),
        ],
        "deployments" => {
            let status = &object["status"];
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    status["readyReplicas"].as_i64().unwrap_or(0),
                    object["spec"]["replicas"].as_i64().unwrap_or(1)
                )),
                int(&status["updatedReplicas"]),
                int(&status["availableReplicas"]),
                age(object),
            ]
        }
        "replicasets" => vec![
            name,
            int(&object["spec"]["replicas"]),
            int(&object["status"]["replicas"]),
            int(&object["status"]["readyReplicas"]),
            age(object),
        ],
        "events" if resource.group.is_empty() => {
            let involved = &object["involvedObject"];
            let target = format!(
                "{}/{}",
                involved["kind"].as_str().unwrap_or("").to_lowercase(),
                involved["name"].as_str().unwrap_or("")
            );
            vec![
                age(object),
                text(&object["type"]),
                text(&object["reason"]),
                json!(target),
                text(&object["message"]),
            ]
        }
        _ => vec![name, json!(object["metadata"]["creationTimestamp"])],
    }
}

/// `extractCSRStatus`: Denied / Approved / Pending, then `,Failed`, then `,Issued`.
fn csr_condition(csr: &Value) -> String {
    let has = |kind: &str| {
        csr["status"]["conditions"]
            .as_array()
            .is_some_and(|list| list.iter().any(|c| c["type"] == kind))
    };
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_owned();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if csr["status"]["certificate"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
    {
        status.push_str(",Issued");
    }
    status
}

/// A Table of `objects`, with `metadata` (resourceVersion, continue) of the list.
pub fn table(resource: &Resource, objects: &[Value], metadata: Value) -> Value {
    let definitions: Vec<Value> = columns(resource)
        .iter()
        .map(|(name, kind, priority)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]});
            json!({"cells": cells(resource, object), "object": partial})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": definitions, "rows": rows})
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn ages_print_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 3600, "3d1h"),
            (40 * 86400, "40d"),
        ];
        for (seconds, printed) in cases {
            assert_eq!(human_duration(seconds), printed, "{seconds}");
        }
    }
}
