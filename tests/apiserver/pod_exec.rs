//! The `pods/exec` and `pods/attach` subresources as kube-apiserver serves them
//! (`ExecREST.Connect`/`AttachREST.Connect`, `ExecLocation`/`AttachLocation` and
//! `streamLocation`, then `UpgradeAwareHandler` with `UpgradeRequired`):
//! PodExecOptions (PodAttachOptions: the same without `command`) decoded from the query (booleans as `strconv.ParseBool`, `command`
//! repeated), the pod (404), its container as for logs (400), a pod without a node 400
//! `pod <name> does not have a host assigned`, a request that is not an upgrade 400
//! `Upgrade request required`. Then the request goes to `https://<node>:<port>/exec/<ns>/
//! <pod>/<container>?command=…&input=1&output=1&error=1&tty=1` (`/attach/…` without
//! `command`) with the kubelet client
//! certificate, carrying the client's upgrade headers; a 101 is passed back and the two
//! connections are joined byte for byte, any other answer is passed back as it is. The real
//! server translates a `v5.channel.k8s.io` WebSocket into SPDY towards the kubelet
//! (`TranslateStreamCloseWebsocketRequests`); this one passes every upgrade through as it
//! came. Authorization (`create`, and for a GET also `create`, as 1.35's
//! `AuthorizePodWebsocketUpgradeCreatePermission`) happened in `access`.

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use url::Url;

use super::Api;
use super::pod_logs::{locate, transport_error};
use super::request::ResourceRequest;
use super::status::{ApiError, ApiResult};

/// The headers of an upgrade the proxy passes on (SPDY's and WebSocket's).
const UPGRADE_HEADERS: [&str; 7] = [
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// What the connect request brings besides its path.
pub struct Connect<'a> {
    /// GET (WebSocket) or POST (SPDY).
    pub method: &'a Method,
    /// The raw query: `command` repeats.
    pub query: &'a str,
    /// The client's headers.
    pub headers: &'a HeaderMap,
    /// The client's connection, once answered with 101.
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// `strconv.ParseBool`, as the query decoder of PodExecOptions reads booleans.
fn parse_bool(key: &str, value: &str) -> ApiResult<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{key}: strconv.ParseBool: parsing {value:?}: invalid syntax"
        ))),
    }
}

/// Query parameters for the kubelet, in order.
type KubeletQuery = Vec<(&'static str, String)>;

/// The container asked for and the kubelet's query (`streamParams`).
fn parse_options(query: &str) -> ApiResult<(Option<String>, KubeletQuery)> {
    let mut container = None;
    let mut flags = [
        ("input", false),
        ("output", false),
        ("error", false),
        ("tty", false),
    ];
    let mut commands = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "stdin" => 0,
            "stdout" => 1,
            "stderr" => 2,
            "tty" => 3,
            "command" => {
                commands.push(("command", value.into_owned()));
                continue;
            }
            "container" => {
                container = Some(value.into_owned());
                continue;
            }
            _ => continue,
        };
        flags[slot].1 = parse_bool(&key, &value)?;
    }
    let mut kubelet_query: KubeletQuery = flags
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| (name, "1".to_owned()))
        .collect();
    kubelet_query.extend(commands);
    Ok((container, kubelet_query))
}

/// `httpstream.IsUpgradeRequest`: a `Connection` header with the `upgrade` token.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// GET or POST `pods/<name>/exec` or `pods/<name>/attach` (`endpoint`: the kubelet's
/// path, `exec` or `attach`).
pub async fn connect(
    api: &Api,
    req: &ResourceRequest,
    connect: Connect<'_>,
    endpoint: &'static str,
) -> ApiResult<Response> {
    let name = req.name.as_deref().unwrap_or("");
    let namespace = req.namespace_or_empty();
    let (container, mut query) = parse_options(connect.query)?;
    if endpoint == "attach" {
        // PodAttachOptions has no command.
        query.retain(|(key, _)| *key != "command");
    }
    let location = {
        let state = api.store.lock();
        let preferred = &api.config.kubelet_preferred_address_types;
        let container = (container.as_deref(), endpoint);
        locate(&state, namespace, name, container, &query, preferred)?
    };
    let Some(url) = location else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    pass_upgrade(api, &url, connect).await
}

/// `UpgradeAwareHandler` with `UpgradeRequired`: the client's upgrade goes to the kubelet
/// at `url`; a 101 is passed back and the two connections are joined byte for byte, any
/// other answer is passed back as it is.
pub(super) async fn pass_upgrade(
    api: &Api,
    url: &Url,
    connect: Connect<'_>,
) -> ApiResult<Response> {
    let (true, Some(client_upgrade)) = (is_upgrade(connect.headers), connect.upgrade) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let mut request = api
        .kubelet_client
        .request(connect.method.clone(), url.as_str());
    for name in UPGRADE_HEADERS {
        for value in connect.headers.get_all(name) {
            request = request.header(name, value);
        }
    }
    let response = request
        .send()
        .await
        .map_err(|err| transport_error(url, &err))?;
    let code = response.status();
    if code != StatusCode::SWITCHING_PROTOCOLS {
        if code.is_success() {
            return Err(ApiError::internal_error(&format!(
                "the kubelet answered {code} to an upgrade"
            )));
        }
        // UpgradeAwareHandler writes the kubelet's refusal back as it is.
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|err| ApiError::internal_error(&err.to_string()))?;
        let mut answer = (code, body).into_response();
        for (key, value) in &headers {
            if key == header::CONTENT_TYPE || key.as_str() == "x-accepted-stream-protocol-versions"
            {
                answer.headers_mut().append(key, value.clone());
            }
        }
        return Ok(answer);
    }
    let mut answer = StatusCode::SWITCHING_PROTOCOLS.into_response();
    for (key, value) in response.headers() {
        answer.headers_mut().append(key, value.clone());
    }
    let mut stopped = api.stopped.subscribe();
    tokio::spawn(async move {
        let (Ok(client), Ok(mut kubelet)) = (client_upgrade.await, response.upgrade().await) else {
            return;
        };
        let mut client = TokioIo::new(client);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet) => {}
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
    });
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_options_become_the_kubelets_query() {
        let (container, query) =
            parse_options("command=sh&command=-c&command=echo+hi&container=app&stdin=true&stdout=1&stderr=false&tty=false")
                .unwrap();
        assert_eq!(container.as_deref(), Some("app"));
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            query,
            [
                ("input", "1"),
                ("output", "1"),
                ("command", "sh"),
                ("command", "-c"),
                ("command", "echo hi")
            ]
        );
        assert!(parse_options("tty=yes").is_err());
    }
}
