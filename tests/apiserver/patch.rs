//! Patch algorithms over JSON values: RFC 7386 merge patch, RFC 6902 JSON patch, and the
//! strategic merge patch of the built-in types, with list merge keys taken from the Go struct
//! tags of the fields systemk and kubectl touch (containers, volumes, env, ports, conditions…)
//! and the directives kubectl sends (`$patch`, `$setElementOrder/`, `$retainKeys`,
//! `$deleteFromPrimitiveList/`). Pure functions; no knowledge of storage.

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// How a list field merges in a strategic merge patch.
enum ListStrategy {
    /// Elements are objects merged by this key.
    MergeByKey(&'static str),
    /// Elements are primitives; the patch's are added (set union), as for `finalizers`.
    PrimitiveUnion,
    /// The patch list replaces the stored one.
    Replace,
}

/// Merge strategy of list field `field` whose parent object is the element of list `parent`.
fn list_strategy(parent: Option<&str>, field: &str) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => ListStrategy::MergeByKey("name"),
        "readinessGates" => ListStrategy::MergeByKey("conditionType"),
        "volumeMounts" => ListStrategy::MergeByKey("mountPath"),
        "volumeDevices" => ListStrategy::MergeByKey("devicePath"),
        "conditions" | "addresses" => ListStrategy::MergeByKey("type"),
        "ownerReferences" => ListStrategy::MergeByKey("uid"),
        "hostAliases" => ListStrategy::MergeByKey("ip"),
        "podIPs" | "hostIPs" => ListStrategy::MergeByKey("ip"),
        "ports" => match parent {
            Some("containers" | "initContainers" | "ephemeralContainers") => {
                ListStrategy::MergeByKey("containerPort")
            }
            _ => ListStrategy::MergeByKey("port"),
        },
        "finalizers" => ListStrategy::PrimitiveUnion,
        _ => ListStrategy::Replace,
    }
}

/// Strategic merge patch of `patch` onto `target`.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    merge_object(target, patch, None)
}

fn merge_object(
    target: &mut Value,
    patch: &Value,
    parent_list: Option<&str>,
) -> Result<(), String> {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = patch_map.clone();
            replacement.remove("$patch");
            *target = Value::Object(replacement);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some(other) => return Err(format!("Unknown patch type: {other}")),
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return Ok(());
    };
    let mut retain_keys: Option<Vec<String>> = None;
    for (key, value) in patch_map {
        if key == "$retainKeys" {
            let keys = value.as_array().ok_or("$retainKeys must be a list")?;
            retain_keys = Some(
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            );
            continue;
        }
        if key.starts_with("$setElementOrder/") {
            // Applied once the list itself is merged (below), so added items take part.
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let removed = value
                .as_array()
                .ok_or("$deleteFromPrimitiveList must be a list")?;
            if let Some(Value::Array(items)) = target_map.get_mut(field) {
                items.retain(|item| !removed.contains(item));
            }
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        let slot = target_map.entry(key.clone()).or_insert(Value::Null);
        match value {
            Value::Array(patch_items) => merge_list(slot, patch_items, parent_list, key)?,
            Value::Object(_) => merge_object(slot, value, parent_list_for(parent_list, key))?,
            _ => *slot = value.clone(),
        }
    }
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$setElementOrder/")
            && let (Some(Value::Array(items)), Some(order)) =
                (target_map.get_mut(field), value.as_array())
        {
            reorder(items, order, list_strategy(parent_list, field));
        }
    }
    if let Some(keep) = retain_keys {
        target_map.retain(|key, _| keep.contains(key));
    }
    Ok(())
}

/// Nested objects (`spec`, `template`) keep the list context only through list elements, so
/// the context of a plain object field is its own name for `ports` resolution.
fn parent_list_for<'a>(parent: Option<&'a str>, key: &'a str) -> Option<&'a str> {
    match key {
        "spec" | "template" | "status" | "metadata" => None,
        _ => parent,
    }
}

fn merge_list(
    slot: &mut Value,
    patch_items: &[Value],
    parent: Option<&str>,
    field: &str,
) -> Result<(), String> {
    let strategy = list_strategy(parent, field);
    let existing = match slot {
        Value::Array(items) => std::mem::take(items),
        _ => Vec::new(),
    };
    let merged = match strategy {
        ListStrategy::Replace => patch_items
            .iter()
            .filter(|item| !is_directive(item))
            .cloned()
            .collect(),
        ListStrategy::PrimitiveUnion => {
            let mut items = existing;
            for item in patch_items {
                if !items.contains(item) {
                    items.push(item.clone());
                }
            }
            items
        }
        ListStrategy::MergeByKey(merge_key) => {
            if patch_items
                .iter()
                .any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                patch_items
                    .iter()
                    .filter(|item| !is_directive(item))
                    .cloned()
                    .collect()
            } else {
                let mut items = existing;
                for item in patch_items {
                    let key_value = item.get(merge_key).ok_or_else(|| {
                        format!("map: {item} does not contain declared merge key: {merge_key}")
                    })?;
                    let position = items
                        .iter()
                        .position(|existing| existing.get(merge_key) == Some(key_value));
                    let deleting = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (position, deleting) {
                        (Some(index), true) => {
                            items.remove(index);
                        }
                        (None, true) => {}
                        (Some(index), false) => merge_object(&mut items[index], item, Some(field))?,
                        (None, false) => {
                            let mut fresh = Value::Null;
                            merge_object(&mut fresh, item, Some(field))?;
                            items.push(fresh);
                        }
                    }
                }
                items
            }
        }
    };
    *slot = Value::Array(merged);
    Ok(())
}

fn is_directive(item: &Value) -> bool {
    item.get("$patch").is_some()
}

/// Applies `$setElementOrder`: items named in `order` come first, in that order.
fn reorder(items: &mut [Value], order: &[Value], strategy: ListStrategy) {
    let position_of = |item: &Value| {
        order.iter().position(|wanted| match &strategy {
            ListStrategy::MergeByKey(key) => {
                wanted.get(*key).is_some() && wanted.get(*key) == item.get(*key)
            }
            _ => wanted == item,
        })
    };
    items.sort_by_key(|item| position_of(item).unwrap_or(usize::MAX));
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, operations: &Value) -> Result<(), String> {
    let operations = operations
        .as_array()
        .ok_or("json patch must be a list of operations")?;
    for operation in operations {
        let op = operation["op"].as_str().ok_or("operation has no op")?;
        let path = operation["path"].as_str().ok_or("operation has no path")?;
        match op {
            "add" => add(target, path, operation["value"].clone())?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, operation["value"].clone())?;
            }
            "move" | "copy" => {
                let from = operation["from"].as_str().ok_or("operation has no from")?;
                let value = if op == "move" {
                    remove(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("missing value at {from}"))?
                };
                add(target, path, value)?;
            }
            "test" => {
                if target.pointer(path) != Some(&operation["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid path {path}"))?;
    Ok((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse().map_err(|_| format!("invalid index {last}"))?
            };
            if index > items.len() {
                return Err(format!("index {index} out of bounds"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: \"{path}\": missing value")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("doc is missing path: \"{path}\": missing value");
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(missing),
        Some(Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| missing())?;
            if index < items.len() {
                Ok(items.remove(index))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod unit_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]},
            {"name": "b", "image": "y"}]}});
        let patch =
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "L", "value": "2"}]}]}});
        strategic_merge_patch(&mut pod, &patch).unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["env"],
            json!([{"name": "K", "value": "1"}, {"name": "L", "value": "2"}])
        );
        assert_eq!(pod["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn conditions_merge_by_type() {
        let mut pod = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}});
        strategic_merge_patch(
            &mut pod,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )
        .unwrap();
        assert_eq!(
            pod["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
        );
    }

    #[test]
    fn container_ports_merge_by_container_port() {
        let mut pod =
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}});
        let patch =
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 443}]}]}});
        strategic_merge_patch(&mut pod, &patch).unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80}, {"containerPort": 443}])
        );
    }

    #[test]
    fn delete_directive_and_element_order() {
        let mut pod = json!({"spec": {"volumes": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "c"}, {"name": "a"}],
            "volumes": [{"name": "b", "$patch": "delete"}]}});
        strategic_merge_patch(&mut pod, &patch).unwrap();
        assert_eq!(
            pod["spec"]["volumes"],
            json!([{"name": "c"}, {"name": "a"}])
        );
    }

    #[test]
    fn unknown_lists_are_replaced_and_null_deletes() {
        let mut pod = json!({"spec": {"tolerations": [{"key": "a"}], "nodeName": "n"}});
        strategic_merge_patch(
            &mut pod,
            &json!({"spec": {"tolerations": [{"key": "b"}], "nodeName": null}}),
        )
        .unwrap();
        assert_eq!(pod, json!({"spec": {"tolerations": [{"key": "b"}]}}));
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let mut object = json!({"a": [1, 2], "b": {"c": 1, "d": 2}});
        merge_patch(&mut object, &json!({"a": [3], "b": {"c": null}}));
        assert_eq!(object, json!({"a": [3], "b": {"d": 2}}));
    }

    #[test]
    fn json_patch_operations() {
        let mut object = json!({"metadata": {"labels": {"a": "1"}}, "list": [1, 2]});
        let ops = json!([
            {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
            {"op": "remove", "path": "/list/0"},
            {"op": "test", "path": "/list/0", "value": 2},
        ]);
        json_patch(&mut object, &ops).unwrap();
        assert_eq!(
            object,
            json!({"metadata": {"labels": {"a": "1", "b/c": "2"}}, "list": [2]})
        );
        assert!(json_patch(&mut object, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
