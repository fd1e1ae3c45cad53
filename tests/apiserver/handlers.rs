//! The verbs on stored objects: create, get, update and patch, plus the pod `binding`
//! subresource. Each takes the parsed request and body, applies the registry rules from
//! `objects` under the store lock, and returns the object or a `Status` error. Delete, watch
//! and TokenRequest live in their own files.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::objects::{self, check_type};
use super::patch;
use super::request::ResourceRequest;
use super::resources::{self, Resource};
use super::status::{ApiError, ApiResult};
use super::store::{ObjectKey, State};
use super::{Api, admission, events, priority, status_validation};

/// The message of a stale-resourceVersion conflict.
const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

fn required_name(req: &ResourceRequest) -> ApiResult<&str> {
    req.name.as_deref().ok_or_else(ApiError::method_not_allowed)
}

/// 404 unless the request's namespace exists.
pub fn require_namespace(state: &State, resource: &Resource, namespace: &str) -> ApiResult<()> {
    if !resource.namespaced {
        return Ok(());
    }
    let namespaces = resources::core("namespaces");
    if state
        .get(&ObjectKey::new(namespaces, "", namespace))
        .is_some()
    {
        Ok(())
    } else {
        Err(ApiError::not_found("", "namespaces", namespace))
    }
}

/// POST on a collection.
pub fn create(
    api: &Api,
    req: &ResourceRequest,
    mut object: Value,
) -> ApiResult<(StatusCode, Value)> {
    let resource = req.resource;
    check_type(
        resource,
        &mut object,
        resource.kind,
        &resource.api_version(),
    )?;
    let namespace = req.namespace_or_empty().to_string();
    let metadata = &mut object["metadata"];
    if resource.namespaced {
        match metadata.get("namespace").and_then(Value::as_str) {
            Some(given) if !given.is_empty() && given != namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => metadata["namespace"] = json!(namespace),
        }
    } else if let Some(map) = metadata.as_object_mut() {
        map.remove("namespace");
    }
    if metadata
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let name = match (
        metadata.get("name").and_then(Value::as_str),
        metadata.get("generateName").and_then(Value::as_str),
    ) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{}", objects::name_suffix()),
        _ => {
            return Err(ApiError::invalid(
                resource.group,
                resource.kind,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
    };
    objects::validate_name(resource, &name)?;
    object["metadata"]["name"] = json!(name);
    let mut state = api.store.lock();
    require_namespace(&state, resource, &namespace)?;
    let key = ObjectKey::new(resource, &namespace, &name);
    if state.get(&key).is_some() {
        return Err(ApiError::already_exists(
            resource.group,
            resource.plural,
            &name,
        ));
    }
    objects::prepare_create(resource, &mut object);
    if resource.plural == "nodes" {
        status_validation::validate_node_status(&object)?;
    }
    if resource.plural == "pods" {
        admission::admit_pod(&state, &namespace, &mut object)?;
        priority::admit(&mut object)?;
    }
    let stored = state.put(key, events::to_storage(resource, object));
    if resource.plural == "namespaces" {
        admission::populate_namespace(&mut state, &name, &api.config.root_ca_pem);
    }
    Ok((StatusCode::CREATED, events::from_storage(resource, stored)))
}

/// GET on an object.
pub fn get(api: &Api, req: &ResourceRequest) -> ApiResult<Value> {
    let name = required_name(req)?;
    let state = api.store.lock();
    let key = ObjectKey::new(req.resource, req.namespace_or_empty(), name);
    let object = state
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(req.resource.group, req.resource.plural, name))?;
    Ok(events::from_storage(req.resource, object))
}

/// PUT on an object or its `status`.
pub fn update(api: &Api, req: &ResourceRequest, mut object: Value) -> ApiResult<Value> {
    let resource = req.resource;
    let name = required_name(req)?;
    check_type(
        resource,
        &mut object,
        resource.kind,
        &resource.api_version(),
    )?;
    if name_of(&object) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(&object)
        )));
    }
    let mut state = api.store.lock();
    let key = ObjectKey::new(resource, req.namespace_or_empty(), name);
    let old = state
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
    let stored = write_existing(
        &mut state,
        req,
        key,
        old,
        events::to_storage(resource, object),
    )?;
    Ok(events::from_storage(resource, stored))
}

/// Stores `new` over `old` with the update rules: preconditions, status subresource
/// separation, immutable system metadata, generation, finalizer completion, no-op detection.
pub fn write_existing(
    state: &mut State,
    req: &ResourceRequest,
    key: ObjectKey,
    old: Value,
    new: Value,
) -> ApiResult<Value> {
    let resource = req.resource;
    let name = key.name.clone();
    let old_rv = old["metadata"]["resourceVersion"].clone();
    if let Some(given) = new["metadata"]["resourceVersion"].as_str()
        && !given.is_empty()
        && Some(given) != old_rv.as_str()
    {
        return Err(ApiError::conflict(
            resource.group,
            resource.plural,
            &name,
            MODIFIED,
        ));
    }
    let old_uid = old["metadata"]["uid"].as_str().unwrap_or("");
    if let Some(given) = new["metadata"]["uid"].as_str()
        && !given.is_empty()
        && given != old_uid
    {
        return Err(ApiError::precondition_failed(
            resource.group,
            resource.plural,
            &name,
            "UID",
            given,
            old_uid,
        ));
    }
    let mut candidate = if req.subresource.as_deref() == Some("status") {
        let mut candidate = old.clone();
        candidate["status"] = new["status"].clone();
        candidate
    } else {
        let mut candidate = new;
        if resource.has_status() {
            match old.get("status") {
                Some(status) => candidate["status"] = status.clone(),
                None => {
                    if let Some(map) = candidate.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        candidate
    };
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "generation",
        "resourceVersion",
    ] {
        match old["metadata"].get(field) {
            Some(value) => candidate["metadata"][field] = value.clone(),
            None => {
                if let Some(map) = candidate["metadata"].as_object_mut() {
                    map.remove(field);
                }
            }
        }
    }
    if resource.plural == "pods" && req.subresource.is_none() {
        objects::validate_pod_update(&old, &candidate)?;
    }
    if resource.plural == "pods" && req.subresource.as_deref() == Some("status") {
        status_validation::convert_pod_status(&mut candidate);
        status_validation::validate_pod_status(&old, &candidate)?;
    }
    if resource.plural == "nodes" {
        status_validation::validate_node_status(&candidate)?;
    }
    if resource.plural == "secrets" {
        objects::fold_string_data(&mut candidate);
    }
    if candidate.get("spec") != old.get("spec") {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0);
        candidate["metadata"]["generation"] = json!(generation + 1);
    }
    if candidate == old {
        return Ok(old);
    }
    let finalized = candidate["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty);
    let terminating = !candidate["metadata"]["deletionTimestamp"].is_null();
    let grace_over = candidate["metadata"]["deletionGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(0)
        == 0;
    let stored = state.put(key.clone(), candidate);
    if finalized && terminating && grace_over {
        state.remove(&key);
    }
    Ok(stored)
}

/// PATCH on an object or its `status`.
pub fn patch(
    api: &Api,
    req: &ResourceRequest,
    content_type: &str,
    body: &[u8],
) -> ApiResult<(StatusCode, Value)> {
    let resource = req.resource;
    let name = required_name(req)?.to_string();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let parse_json = || {
        serde_json::from_slice::<Value>(body)
            .map_err(|err| ApiError::bad_request(format!("error decoding patch: {err}")))
    };
    let apply = media_type == "application/apply-patch+yaml";
    let patch_document = match media_type {
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => parse_json()?,
        "application/apply-patch+yaml" => {
            if req.param("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    "fieldManager",
                    "Required value: is required for apply patch",
                ));
            }
            serde_yaml_ng::from_slice::<Value>(body)
                .map_err(|err| ApiError::bad_request(format!("error decoding YAML: {err}")))?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let mut state = api.store.lock();
    let key = ObjectKey::new(resource, req.namespace_or_empty(), &name);
    let Some(old) = state.get(&key).cloned() else {
        if apply && req.subresource.is_none() {
            drop(state);
            return create(api, req, patch_document);
        }
        return Err(ApiError::not_found(resource.group, resource.plural, &name));
    };
    let mut patched = events::from_storage(resource, old.clone());
    let outcome = match media_type {
        "application/merge-patch+json" => {
            patch::merge_patch(&mut patched, &patch_document);
            Ok(())
        }
        "application/json-patch+json" => patch::json_patch(&mut patched, &patch_document),
        _ => patch::strategic_merge_patch(&mut patched, &patch_document),
    };
    outcome
        .map_err(|why| ApiError::invalid(resource.group, resource.kind, &name, "patch", &why))?;
    if apply {
        check_type(
            resource,
            &mut patched,
            resource.kind,
            &resource.api_version(),
        )?;
    }
    if name_of(&patched) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(&patched)
        )));
    }
    let stored = write_existing(
        &mut state,
        req,
        key,
        old,
        events::to_storage(resource, patched),
    )?;
    Ok((StatusCode::OK, events::from_storage(resource, stored)))
}

/// POST `pods/<name>/binding`: what the scheduler does to assign a node.
pub fn bind(api: &Api, req: &ResourceRequest, binding: Value) -> ApiResult<(StatusCode, Value)> {
    let name = required_name(req)?;
    let node = binding["target"]["name"]
        .as_str()
        .filter(|node| !node.is_empty())
        .ok_or_else(|| ApiError::invalid("", "Binding", name, "target.name", "Required value"))?;
    let mut state = api.store.lock();
    let key = ObjectKey::new(req.resource, req.namespace_or_empty(), name);
    let mut pod = state
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    if let Some(assigned) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        let why = format!("pod {name} is already assigned to node \"{assigned}\"");
        return Err(ApiError::conflict("", "pods/binding", name, &why));
    }
    pod["spec"]["nodeName"] = json!(node);
    let scheduled = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": objects::now()});
    patch::strategic_merge_patch(&mut pod, &json!({"status": {"conditions": [scheduled]}}))
        .map_err(ApiError::internal)?;
    state.put(key, pod);
    Ok((
        StatusCode::CREATED,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}
