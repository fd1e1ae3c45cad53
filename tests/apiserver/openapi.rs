//! OpenAPI v3 documents (`/openapi/v3` and one per group/version) that describe the served
//! paths and operations truthfully — the PATCH content types and the `fieldValidation` query
//! parameter — but publish no type schemas. That is what kubectl 1.32 needs: `apply` learns
//! that the server validates fields itself (so it skips client-side schema validation), finds
//! no schema to build a strategic merge patch from, and falls back to its compiled-in Go types,
//! which carry the same patch metadata for every built-in kind. `/openapi/v2` is not served.

use serde_json::{Map, Value, json};

use super::resources::{RESOURCES, Resource, group_versions};

/// Path of a group/version in the v3 index: `api/v1`, `apis/apps/v1`.
fn index_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`.
pub fn index() -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions() {
        let path = index_path(group, version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}")}),
        );
    }
    json!({"paths": paths})
}

fn query_parameter(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(resource: &Resource, action: &str, parameters: &[&str]) -> Value {
    json!({
        "operationId": format!("{action}{}", resource.kind),
        "parameters": parameters.iter().map(|name| query_parameter(name)).collect::<Vec<_>>(),
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
    })
}

fn item_path(resource: &Resource) -> Value {
    let mut patch = operation(
        resource,
        "patch",
        &["fieldManager", "fieldValidation", "force"],
    );
    patch["requestBody"] = json!({"content": {
        "application/json-patch+json": {"schema": {}},
        "application/merge-patch+json": {"schema": {}},
        "application/strategic-merge-patch+json": {"schema": {}},
        "application/apply-patch+yaml": {"schema": {}},
    }});
    json!({
        "get": operation(resource, "get", &[]),
        "put": operation(resource, "put", &["fieldManager", "fieldValidation"]),
        "patch": patch,
        "delete": operation(resource, "delete", &["gracePeriodSeconds", "propagationPolicy"]),
    })
}

fn collection_path(resource: &Resource) -> Value {
    json!({
        "get": operation(resource, "list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "resourceVersionMatch", "watch", "allowWatchBookmarks", "timeoutSeconds", "sendInitialEvents"]),
        "post": operation(resource, "post", &["fieldManager", "fieldValidation"]),
    })
}

/// `/openapi/v3/<api|apis/group>/<version>`, when served.
pub fn group_version_document(path: &str) -> Option<Value> {
    let (group, version) = group_versions()
        .into_iter()
        .find(|(g, v)| index_path(g, v) == path)?;
    let mut paths = Map::new();
    for resource in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let scope = if resource.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let collection = format!("/{path}/{scope}{}", resource.plural);
        if resource.verbs.contains(&"get") {
            paths.insert(format!("{collection}/{{name}}"), item_path(resource));
            paths.insert(collection, collection_path(resource));
        } else {
            // Create-only resources (reviews) have just the POST.
            let post = operation(resource, "post", &["fieldManager", "fieldValidation"]);
            paths.insert(collection, json!({"post": post}));
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
