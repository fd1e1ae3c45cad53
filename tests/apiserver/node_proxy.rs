//! The `nodes/proxy` subresource as kube-apiserver serves it (`ProxyREST` with
//! `node.ResourceLocation`): `GET /api/v1/nodes/<name>/proxy/<path>` is authorized as `get`
//! on `nodes/proxy` (members of `system:masters`, or a user with a grant), then proxied to
//! `https://<node address>:<kubelet port>/<path>?<query>` with the API server's kubelet
//! client certificate; the kubelet's status, content type and body come back unchanged, as
//! the upgrade-aware proxy passes them. GET only: the tests need nothing else. Owns no
//! storage; reads the node under the store lock, never across the proxy call.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use url::Url;

use super::Api;
use super::authn::User;
use super::pki::MASTERS_GROUP;
use super::pod_logs::{DEFAULT_KUBELET_PORT, node_address, transport_error};
use super::resources;
use super::status::{ApiError, ApiResult};
use super::store::ObjectKey;

/// `/api/v1/nodes/<name>/proxy[/<path>]` as (name, path below the kubelet's root).
pub fn split(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/api/v1/nodes/")?;
    let (name, rest) = rest.split_once('/')?;
    let below = rest.strip_prefix("proxy")?;
    (below.is_empty() || below.starts_with('/')).then_some((name, below))
}

/// The request's `nodes/proxy` authorization: `system:masters`, or a grant of the verb.
fn authorize(api: &Api, user: Option<&User>, name: &str) -> ApiResult<()> {
    let Some(user) = user else {
        // Plain HTTP mode authenticates nobody and allows everything.
        return Ok(());
    };
    let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
    let attributes = json!({"verb": "get", "resource": "nodes", "subresource": "proxy"});
    if user.in_group(MASTERS_GROUP)
        || api
            .grants
            .allowing(&user.name, &groups, &attributes)
            .is_some()
    {
        return Ok(());
    }
    let why = format!(
        "User {:?} cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope",
        user.name
    );
    // As `responsewriters.Forbidden`: the subresource is in the reason, not the prefix.
    Err(ApiError::forbidden_request("", "nodes", name, &why))
}

/// The kubelet URL of `path` on node `name`.
fn locate(api: &Api, name: &str, path: &str, query: Option<&str>) -> ApiResult<Url> {
    let state = api.store.lock();
    let node = state
        .get(&ObjectKey::new(resources::core("nodes"), "", name))
        .ok_or_else(|| ApiError::not_found("", "nodes", name))?;
    let address = node_address(node, &api.config.kubelet_preferred_address_types)?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .filter(|port| *port > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address
    };
    let mut url = Url::parse(&format!("https://{host}:{port}/"))
        .map_err(|err| ApiError::internal_error(&err.to_string()))?;
    // Segment by segment: an encoded `/` or `..` stays inside its segment.
    url.path_segments_mut()
        .map_err(|()| ApiError::internal_error("kubelet URL cannot take a path"))?
        .pop_if_empty()
        .extend(path.trim_start_matches('/').split('/'));
    url.set_query(query);
    Ok(url)
}

/// `GET /api/v1/nodes/<name>/proxy/<path>`.
pub async fn proxy(
    api: &Api,
    user: Option<&User>,
    method: &Method,
    name: &str,
    path: &str,
    query: Option<&str>,
) -> ApiResult<Response> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    authorize(api, user, name)?;
    let url = locate(api, name, path, query)?;
    let response = api
        .kubelet_client
        .get(url.as_str())
        .send()
        .await
        .map_err(|err| transport_error(&url, &err))?;
    let code = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = response
        .bytes()
        .await
        .map_err(|err| ApiError::internal_error(&err.to_string()))?;
    let mut answer = (
        StatusCode::from_u16(code.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
        .into_response();
    if let Some(value) = content_type {
        answer.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn proxy_paths_name_the_node_and_the_kubelet_path() {
        assert_eq!(
            split("/api/v1/nodes/n1/proxy/metrics/resource"),
            Some(("n1", "/metrics/resource"))
        );
        assert_eq!(split("/api/v1/nodes/n1/proxy"), Some(("n1", "")));
        assert_eq!(split("/api/v1/nodes/n1/proxyx"), None);
        assert_eq!(split("/api/v1/nodes/n1/status"), None);
        assert_eq!(split("/api/v1/nodes/n1"), None);
    }
}
