//! Parsing a request URL into what it addresses: the resource, namespace, name, subresource
//! and query options, following the REST layout `/api/v1/…` and `/apis/<group>/<version>/…`.
//! Pure; no store access.

use std::collections::HashMap;

use super::resources::{self, Resource};
use super::status::ApiError;

/// A request for a served resource.
pub struct ResourceRequest {
    /// The addressed resource.
    pub resource: &'static Resource,
    /// Namespace from the path; `None` for cluster-scoped paths and all-namespace lists.
    pub namespace: Option<String>,
    /// Object name, `None` for collection requests.
    pub name: Option<String>,
    /// Subresource after the name.
    pub subresource: Option<String>,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
}

impl ResourceRequest {
    /// A query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// A boolean query parameter (`1`, `true`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("1" | "true" | "True"))
    }

    /// The namespace, or "" for cluster-scoped objects.
    pub fn namespace_or_empty(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

/// Decodes a query string.
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Resolves `/api/v1/...` or `/apis/g/v/...` to a resource request; `None` when the path is not
/// a resource path at all.
pub fn parse_resource_path(
    path: &str,
    query: Option<&str>,
) -> Option<Result<ResourceRequest, ApiError>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return None,
    };
    let find = |plural: &str| resources::find(group, version, plural);
    let (resource, namespace, name, subresource) = match rest {
        ["namespaces", namespace, plural, tail @ ..]
            if find(plural).is_some_and(|r| r.namespaced) =>
        {
            let resource = find(plural)?;
            match tail {
                [] => (resource, Some(*namespace), None, None),
                [name] => (resource, Some(*namespace), Some(*name), None),
                [name, sub] => (resource, Some(*namespace), Some(*name), Some(*sub)),
                _ => return Some(Err(ApiError::no_route())),
            }
        }
        [plural, tail @ ..] => {
            let Some(resource) = find(plural) else {
                return Some(Err(ApiError::no_route()));
            };
            match tail {
                [] => (resource, None, None, None),
                [name] => (resource, None, Some(*name), None),
                [name, sub] if resource.subresource(sub).is_some() => {
                    (resource, None, Some(*name), Some(*sub))
                }
                _ => return Some(Err(ApiError::no_route())),
            }
        }
        [] => return None,
    };
    if let Some(sub) = subresource
        && resource.subresource(sub).is_none()
    {
        return Some(Err(ApiError::no_route()));
    }
    Some(Ok(ResourceRequest {
        resource,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: subresource.map(str::to_string),
        query: parse_query(query),
    }))
}
