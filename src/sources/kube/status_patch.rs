//! The pod status patch as the kubelet sends it (pkg/kubelet/status/status_manager.go
//! `mergePodStatus`, pkg/util/pod `PatchPodStatus`): the status systemk computed is first
//! merged with what the API holds — conditions other writers own (`DisruptionTarget`,
//! readiness-gate conditions, anything not kubelet-owned) are kept, before the node's
//! own — and then a two-way strategic merge patch from the API's status to that one is
//! built: only what changed, `conditions` merged by `type` and `podIPs`/`hostIPs` by `ip`
//! with `$setElementOrder`, fields that went away set to `null`, other lists (the
//! container statuses, which the API types declare atomic) sent whole. A patch never
//! deletes a condition and never clears a status field systemk does not write. The
//! pod's UID goes along as a precondition. Pure. Layer 5.

use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use serde_json::{Map, Value, json};

/// Condition types the kubelet owns (pkg/kubelet/types `PodConditionsByKubelet`); any other
/// type belongs to another writer and is kept as the API has it.
const KUBELET_CONDITIONS: &[&str] = &[
    "PodScheduled",
    "Ready",
    "Initialized",
    "ContainersReady",
    "PodReadyToStartContainers",
];

/// Pod status fields systemk writes: only these are cleared (`null`) when they go away.
const OWNED_FIELDS: &[&str] = &[
    "phase",
    "conditions",
    "message",
    "reason",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "qosClass",
    "initContainerStatuses",
    "containerStatuses",
];

/// The status to write: `computed`, whose conditions come after the conditions of other
/// writers found in `api` (in the API's order), as `mergePodStatus` orders them.
pub fn merged_status(api: Option<&PodStatus>, computed: &PodStatus) -> PodStatus {
    let own = computed.conditions.clone().unwrap_or_default();
    let mut conditions: Vec<PodCondition> = api
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .filter(|c| !own.iter().any(|mine| mine.type_ == c.type_))
        .cloned()
        .collect();
    conditions.extend(own);
    PodStatus {
        conditions: (!conditions.is_empty()).then_some(conditions),
        ..computed.clone()
    }
}

/// The strategic merge patch taking the pod with `uid` from the `api` status to the
/// `computed` one (merged with `api` first), or `None` when there is nothing to change.
pub fn status_patch(uid: &str, api: Option<&PodStatus>, computed: &PodStatus) -> Option<Value> {
    let to_map = |status: Option<&PodStatus>| match status.map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => map,
        _ => Map::new(),
    };
    let old = to_map(api);
    let new = to_map(Some(&merged_status(api, computed)));
    let diff = diff_object(&old, &new, Some(OWNED_FIELDS));
    (!diff.is_empty()).then(|| json!({ "metadata": { "uid": uid }, "status": diff }))
}

/// How a list field of the pod status merges (the patch tags of the API types).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "conditions" => Some("type"),
        "podIPs" | "hostIPs" => Some("ip"),
        _ => None,
    }
}

/// The two-way diff of two objects. Keys of `old` missing in `new` become `null` when
/// `clearable` allows (every key when `None`).
fn diff_object(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    clearable: Option<&[&str]>,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for (key, new_value) in new {
        let old_value = old.get(key);
        if old_value == Some(new_value) {
            continue;
        }
        match (old_value, new_value, merge_key(key)) {
            (Some(Value::Object(old_map)), Value::Object(new_map), _) => {
                let nested = diff_object(old_map, new_map, None);
                if !nested.is_empty() {
                    patch.insert(key.clone(), Value::Object(nested));
                }
            }
            (old_value, Value::Array(new_items), Some(merge_key)) => {
                let old_items = match old_value {
                    Some(Value::Array(items)) => items.as_slice(),
                    _ => &[],
                };
                diff_list(&mut patch, key, merge_key, old_items, new_items);
            }
            _ => {
                patch.insert(key.clone(), new_value.clone());
            }
        }
    }
    for key in old.keys() {
        let may_clear = clearable.is_none_or(|fields| fields.contains(&key.as_str()));
        if !new.contains_key(key) && may_clear {
            patch.insert(key.clone(), Value::Null);
        }
    }
    patch
}

/// The diff of a list merged by `merge_key`: changed and added elements (changed ones as
/// their own diff plus the key), deletions (never for `conditions`: other writers own
/// some), and the new order in `$setElementOrder/<field>`.
fn diff_list(
    patch: &mut Map<String, Value>,
    field: &str,
    merge_key: &str,
    old: &[Value],
    new: &[Value],
) {
    let key_of = |item: &Value| item.get(merge_key).cloned().unwrap_or(Value::Null);
    let mut items = Vec::new();
    for item in new {
        let key = key_of(item);
        match old.iter().find(|o| key_of(o) == key) {
            None => items.push(item.clone()),
            Some(before) if before == item => {}
            Some(before) => {
                let (Value::Object(before), Value::Object(after)) = (before, item) else {
                    items.push(item.clone());
                    continue;
                };
                let mut changed = diff_object(before, after, None);
                changed.insert(merge_key.to_owned(), key);
                items.push(Value::Object(changed));
            }
        }
    }
    if field != "conditions" {
        for item in old {
            let key = key_of(item);
            if !new.iter().any(|n| key_of(n) == key) {
                items.push(json!({ merge_key: key, "$patch": "delete" }));
            }
        }
    }
    let old_order: Vec<Value> = old.iter().map(key_of).collect();
    let new_order: Vec<Value> = new.iter().map(key_of).collect();
    let reordered = !old_order
        .iter()
        .filter(|k| new_order.contains(k))
        .eq(new_order.iter().filter(|k| old_order.contains(k)));
    if items.is_empty() && !reordered {
        return;
    }
    if !items.is_empty() {
        patch.insert(field.to_owned(), Value::Array(items));
    }
    let order = new_order
        .into_iter()
        .map(|key| json!({ merge_key: key }))
        .collect();
    patch.insert(format!("$setElementOrder/{field}"), Value::Array(order));
}

#[cfg(test)]
mod tests;
