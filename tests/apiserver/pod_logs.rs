//! The `pods/log` subresource as kube-apiserver serves it (`LogREST.Get` + `LogLocation`):
//! validate the PodLogOptions, find the pod, its container and its node's kubelet address,
//! then proxy `GET https://<node>:<port>/containerLogs/<ns>/<pod>/<container>` with the
//! API server's kubelet client certificate and stream the answer back as `text/plain`.
//! Kubelet errors become `Status` errors the way apimachinery's response checker maps them.
//! Owns no storage; reads pods and nodes under the store lock, never across the proxy call.

use std::error::Error as _;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use url::Url;

use super::Api;
use super::request::ResourceRequest;
use super::resources;
use super::status::{ApiError, ApiResult};
use super::store::{ObjectKey, State};

/// The kubelet port when a Node publishes none (kube-apiserver's `--kubelet-port` default).
pub(super) const DEFAULT_KUBELET_PORT: i64 = 10250;
/// How much of a kubelet's error body becomes the message (apimachinery's `maxReadLength`).
const MAX_ERROR_BODY: usize = 50_000;

/// The validated options: the container asked for and the query passed to the kubelet.
struct LogOptions {
    container: Option<String>,
    /// Kubelet query parameters in `url.Values.Encode` order (sorted by key).
    kubelet_query: Vec<(&'static str, String)>,
}

/// `strconv.ParseBool`.
fn parse_bool(key: &str, value: &str) -> ApiResult<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{key}: strconv.ParseBool: parsing {value:?}: invalid syntax"
        ))),
    }
}

fn parse_int(key: &str, value: &str) -> ApiResult<i64> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{key}: strconv.ParseInt: parsing {value:?}: invalid syntax"
        ))
    })
}

/// Decodes and validates the query as `ValidatePodLogOptions` does.
fn parse_options(req: &ResourceRequest, name: &str) -> ApiResult<LogOptions> {
    let flag = |key: &str| req.param(key).map_or(Ok(false), |v| parse_bool(key, v));
    let number = |key: &str| req.param(key).map(|v| parse_int(key, v)).transpose();
    let (follow, previous, timestamps) = (flag("follow")?, flag("previous")?, flag("timestamps")?);
    // Consumed here: kube-apiserver verifies no kubelet certificate anyway (no
    // --kubelet-certificate-authority), so skipping verification changes nothing.
    flag("insecureSkipTLSVerifyBackend")?;
    let (tail_lines, limit_bytes, since_seconds) = (
        number("tailLines")?,
        number("limitBytes")?,
        number("sinceSeconds")?,
    );
    let since_time = req
        .param("sinceTime")
        .map(|value| {
            value.parse::<Timestamp>().map_err(|_| {
                ApiError::bad_request(format!(
                    "sinceTime: parsing time {value:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {value:?}"
                ))
            })
        })
        .transpose()?;
    let mut errors = Vec::new();
    if let Some(lines) = tail_lines.filter(|lines| *lines < 0) {
        let body = format!("Invalid value: {lines}: must be greater than or equal to 0");
        errors.push(("tailLines".to_string(), body));
    }
    if let Some(bytes) = limit_bytes.filter(|bytes| *bytes < 1) {
        let body = format!("Invalid value: {bytes}: must be greater than 0");
        errors.push(("limitBytes".to_string(), body));
    }
    match (since_seconds, since_time) {
        (Some(_), Some(_)) => errors.push((
            String::new(),
            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".to_string(),
        )),
        (Some(seconds), None) if seconds < 1 => errors.push((
            "sinceSeconds".to_string(),
            format!("Invalid value: {seconds}: must be greater than 0"),
        )),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields("", "PodLogOptions", name, &errors));
    }
    let mut kubelet_query = Vec::new();
    if follow {
        kubelet_query.push(("follow", "true".to_string()));
    }
    if let Some(bytes) = limit_bytes {
        kubelet_query.push(("limitBytes", bytes.to_string()));
    }
    if previous {
        kubelet_query.push(("previous", "true".to_string()));
    }
    if let Some(seconds) = since_seconds {
        kubelet_query.push(("sinceSeconds", seconds.to_string()));
    }
    if let Some(time) = since_time {
        kubelet_query.push(("sinceTime", time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
    }
    if let Some(lines) = tail_lines {
        kubelet_query.push(("tailLines", lines.to_string()));
    }
    if timestamps {
        kubelet_query.push(("timestamps", "true".to_string()));
    }
    Ok(LogOptions {
        container: req.param("container").map(str::to_string),
        kubelet_query,
    })
}

fn names(pod: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|field| pod["spec"][*field].as_array().cloned().unwrap_or_default())
        .filter_map(|container| container["name"].as_str().map(str::to_string))
        .collect()
}

/// `validateContainer`: the named container must exist; without a name, the only one.
fn choose_container(pod: &Value, name: &str, wanted: Option<&str>) -> ApiResult<String> {
    let every = names(
        pod,
        &["initContainers", "containers", "ephemeralContainers"],
    );
    if let Some(wanted) = wanted.filter(|w| !w.is_empty()) {
        return if every.iter().any(|c| c == wanted) {
            Ok(wanted.to_string())
        } else {
            Err(ApiError::bad_request(format!(
                "container {wanted} is not valid for pod {name}"
            )))
        };
    }
    match names(pod, &["containers"]).as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            every.join(" ")
        ))),
    }
}

/// `GetPreferredNodeAddress` over the node's `status.addresses`.
pub(super) fn node_address(node: &Value, preferred: &[String]) -> ApiResult<String> {
    let addresses = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for wanted in preferred {
        if let Some(address) = addresses
            .iter()
            .find(|a| a["type"].as_str() == Some(wanted))
            .and_then(|a| a["address"].as_str())
        {
            return Ok(address.to_string());
        }
    }
    let known: Vec<String> = addresses
        .iter()
        .map(|a| {
            let text = |key: &str| a[key].as_str().unwrap_or("").to_string();
            format!("{{{} {}}}", text("type"), text("address"))
        })
        .collect();
    Err(ApiError::unknown(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        ),
    ))
}

/// `LogLocation` and `streamLocation`: the kubelet URL `/<endpoint>/<ns>/<pod>/<container>`
/// with `query`, or `None` for a pod not yet scheduled.
pub(super) fn locate(
    state: &State,
    namespace: &str,
    name: &str,
    (container, endpoint): (Option<&str>, &str),
    query: &[(&'static str, String)],
    preferred_addresses: &[String],
) -> ApiResult<Option<Url>> {
    let pod = state
        .get(&ObjectKey::new(resources::core("pods"), namespace, name))
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let container = choose_container(pod, name, container)?;
    let path = [endpoint, namespace, name, container.as_str()];
    kubelet_url(state, pod, &path, query, preferred_addresses)
}

/// The URL of `path` on the kubelet of `pod`'s node, or `None` when it has no node.
pub(super) fn kubelet_url(
    state: &State,
    pod: &Value,
    path: &[&str],
    query: &[(&'static str, String)],
    preferred_addresses: &[String],
) -> ApiResult<Option<Url>> {
    let Some(node_name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let node = state
        .get(&ObjectKey::new(resources::core("nodes"), "", node_name))
        .ok_or_else(|| ApiError::not_found("", "nodes", node_name))?;
    let address = node_address(node, preferred_addresses)?;
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
    url.path_segments_mut()
        .map_err(|()| ApiError::internal_error("kubelet URL cannot take a path"))?
        .pop_if_empty()
        .extend(path);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(Some(url))
}

/// A failed request to the kubelet, worded as Go's `*url.Error` (`Get "<url>": <cause>`),
/// with a refused connection as the dialer says it.
pub(super) fn transport_error(url: &Url, error: &reqwest::Error) -> ApiError {
    let mut innermost = error.to_string();
    let mut refused = false;
    let mut source = error.source();
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            refused = true;
        }
        innermost = cause.to_string();
        source = cause.source();
    }
    let why = if refused {
        let host = url.host_str().unwrap_or("");
        let port = url.port_or_known_default().unwrap_or(0);
        format!("dial tcp {host}:{port}: connect: connection refused")
    } else {
        innermost
    };
    ApiError::unknown(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Get {:?}: {why}", url.as_str()),
    )
}

/// `GenericHttpResponseChecker`: a kubelet answer outside 200–206 as a `Status` error.
async fn kubelet_error(response: reqwest::Response, name: &str) -> ApiError {
    let code = response.status();
    let body = match response.bytes().await {
        Ok(bytes) => {
            String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]).into_owned()
        }
        Err(err) => return ApiError::internal_error(&err.to_string()),
    };
    match code {
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal_error(&body),
        StatusCode::BAD_REQUEST => ApiError::bad_request(body),
        _ => ApiError::server_response(code, "pods/log", name, &body),
    }
}

/// GET `pods/<name>/log`.
pub async fn logs(api: &Api, req: &ResourceRequest) -> ApiResult<Response> {
    let name = req.name.as_deref().unwrap_or("");
    let options = parse_options(req, name)?;
    let location = {
        let state = api.store.lock();
        let preferred = &api.config.kubelet_preferred_address_types;
        let container = (options.container.as_deref(), "containerLogs");
        let query = &options.kubelet_query;
        locate(
            &state,
            req.namespace_or_empty(),
            name,
            container,
            query,
            preferred,
        )?
    };
    let Some(url) = location else {
        // An unscheduled pod has no location: the real server answers with no content.
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let response = api
        .kubelet_client
        .get(url.as_str())
        .send()
        .await
        .map_err(|err| transport_error(&url, &err))?;
    let code = response.status();
    if code.is_redirection() {
        let message = format!("Get {:?}: redirects forbidden", url.as_str());
        return Err(ApiError::unknown(
            StatusCode::INTERNAL_SERVER_ERROR,
            message,
        ));
    }
    if !(200..=206).contains(&code.as_u16()) {
        return Err(kubelet_error(response, name).await);
    }
    // A stopped server closes its connections; a followed log ends then, as watches do.
    let mut stopped = api.stopped.subscribe();
    let stream = response.bytes_stream().take_until(async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    });
    let body = Body::from_stream(stream);
    Ok(([(header::CONTENT_TYPE, "text/plain")], body).into_response())
}
