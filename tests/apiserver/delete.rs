//! DELETE on an object, with the registry's graceful-deletion rules: `DeleteOptions` from the
//! body or query, uid/resourceVersion preconditions, pods bound to a node marked with
//! deletionTimestamp (the kubelet finishes the deletion with grace 0), finalizers keeping an
//! object until they are removed, and namespaces taking their contents with them.

use serde_json::{Value, json};

use super::list::Selectors;
use super::objects;
use super::request::ResourceRequest;
use super::resources::{RESOURCES, Resource};
use super::status::{ApiError, ApiResult};
use super::store::{ObjectKey, State};
use super::{Api, events};

/// The parts of `DeleteOptions` the server acts on.
struct DeleteOptions {
    grace_period: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn parse_options(req: &ResourceRequest, body: &[u8]) -> ApiResult<DeleteOptions> {
    let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|err| ApiError::bad_request(format!("error decoding DeleteOptions: {err}")))?
    };
    let query_grace =
        match req.param("gracePeriodSeconds") {
            Some(text) => Some(text.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("invalid gracePeriodSeconds {text:?}"))
            })?),
            None => None,
        };
    let text = |value: &Value| value.as_str().map(str::to_string);
    Ok(DeleteOptions {
        grace_period: options["gracePeriodSeconds"].as_i64().or(query_grace),
        uid: text(&options["preconditions"]["uid"]),
        resource_version: text(&options["preconditions"]["resourceVersion"]),
    })
}

/// The grace period a pod deletion gets: none for unbound or finished pods, as the pod
/// strategy's `CheckGracefulDelete` decides.
fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|node| !node.is_empty());
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if !bound || finished {
        return 0;
    }
    requested
        .unwrap_or_else(|| {
            pod["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30)
        })
        .max(0)
}

/// DELETE on an object; returns the body the real server returns.
pub fn delete(api: &Api, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    let name = req
        .name
        .as_deref()
        .ok_or_else(ApiError::method_not_allowed)?;
    let options = parse_options(req, body)?;
    let mut state = api.store.lock();
    let key = ObjectKey::new(req.resource, req.namespace_or_empty(), name);
    let object = delete_one(&mut state, req.resource, key, &options)?;
    Ok(returned(req.resource, &object))
}

/// DELETE on a collection: every object the selectors match goes through the same rules;
/// the answer lists them as they were left (gone, or marked for graceful deletion).
pub fn delete_collection(api: &Api, req: &ResourceRequest, body: &[u8]) -> ApiResult<Value> {
    let resource = req.resource;
    let selectors = Selectors::from_request(req)?;
    let options = parse_options(req, body)?;
    let mut state = api.store.lock();
    let mut items = Vec::new();
    for (key, object) in state.list(resource, req.namespace.as_deref()) {
        if selectors.matches(&events::from_storage(resource, object)) {
            let left = delete_one(&mut state, resource, key, &options)?;
            items.push(events::from_storage(resource, left));
        }
    }
    Ok(json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": state.revision().to_string()},
        "items": items,
    }))
}

/// Applies the deletion rules to one stored object; returns it as it was left.
fn delete_one(
    state: &mut State,
    resource: &Resource,
    key: ObjectKey,
    options: &DeleteOptions,
) -> ApiResult<Value> {
    let name = key.name.clone();
    let name = name.as_str();
    let mut object = state
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
    let metadata = &object["metadata"];
    let current_uid = metadata["uid"].as_str().unwrap_or("").to_string();
    let current_rv = metadata["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if let Some(uid) = options.uid.as_deref().filter(|uid| *uid != current_uid) {
        return Err(ApiError::precondition_failed(
            resource.group,
            resource.plural,
            name,
            "UID",
            uid,
            &current_uid,
        ));
    }
    if let Some(rv) = options
        .resource_version
        .as_deref()
        .filter(|rv| *rv != current_rv)
    {
        return Err(ApiError::precondition_failed(
            resource.group,
            resource.plural,
            name,
            "ResourceVersion",
            rv,
            &current_rv,
        ));
    }
    if resource.plural == "namespaces" {
        return Ok(delete_namespace(state, key, object));
    }
    let grace = if resource.plural == "pods" {
        pod_grace(&object, options.grace_period)
    } else {
        0
    };
    let has_finalizers = object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|list| !list.is_empty());
    let pending_grace = object["metadata"]["deletionGracePeriodSeconds"].as_i64();
    if grace > 0 || has_finalizers {
        // A graceful deletion only ever shortens: a longer or equal grace changes nothing.
        if pending_grace.is_some_and(|pending| pending <= grace) {
            return Ok(object);
        }
        object["metadata"]["deletionTimestamp"] = json!(objects::now_plus(grace));
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
        if generation > 0 {
            object["metadata"]["generation"] = json!(generation + 1);
        }
        return Ok(state.put(key, object));
    }
    Ok(state.remove(&key).unwrap_or(object))
}

/// Pods and namespaces return the object; everything else a success `Status`.
fn returned(resource: &Resource, object: &Value) -> Value {
    if matches!(resource.plural, "pods" | "namespaces") {
        return object.clone();
    }
    let mut details = json!({
        "name": object["metadata"]["name"],
        "kind": resource.plural,
        "uid": object["metadata"]["uid"],
    });
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Marks the namespace Terminating, removes every object in it at once (the namespace
/// controller's work, done synchronously), then removes the namespace.
fn delete_namespace(state: &mut State, key: ObjectKey, mut namespace: Value) -> Value {
    namespace["metadata"]["deletionTimestamp"] = json!(objects::now());
    namespace["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    namespace["status"]["phase"] = json!("Terminating");
    let terminating = state.put(key.clone(), namespace);
    for resource in RESOURCES.iter().filter(|resource| resource.namespaced) {
        for (object_key, _) in state.list(resource, Some(&key.name)) {
            state.remove(&object_key);
        }
    }
    state.remove(&key);
    terminating
}
