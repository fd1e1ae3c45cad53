//! The `pods/portforward` subresource as kube-apiserver serves it (`PortForwardREST.Connect`,
//! `PortForwardLocation`): the pod (404), a pod without a node 400, then the request goes to
//! `https://<node>:<port>/portForward/<ns>/<pod>` with `PodPortForwardOptions.ports` as
//! `port` parameters, the upgrade passed through as for `pods/exec`. kubectl's WebSocket
//! (`SPDY/3.1+portforward.k8s.io`, KEP-4006's tunnel, `PortForwardWebsockets`) is
//! translated as the real server's `TunnelingHandler` does: SPDY/3.1 towards the kubelet,
//! its bytes carried in binary WebSocket messages towards the client. Authorization
//! (`create`, and for a GET also `create`) happened in `access`.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use url::Url;

use super::Api;
use super::pod_exec::{Connect, is_upgrade, pass_upgrade};
use super::pod_logs::{kubelet_url, transport_error};
use super::request::ResourceRequest;
use super::resources;
use super::status::{ApiError, ApiResult};
use super::store::ObjectKey;

/// The WebSocket subprotocol of kubectl's SPDY tunnel.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// RFC 6455's key suffix.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `PodPortForwardOptions` from the query: `ports` repeats, each an int32.
fn parse_ports(query: &str) -> ApiResult<Vec<(&'static str, String)>> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "ports")
        .map(|(_, value)| {
            value
                .parse::<i32>()
                .map(|port| ("port", port.to_string()))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "ports: strconv.ParseInt: parsing {value:?}: invalid syntax"
                    ))
                })
        })
        .collect()
}

/// GET or POST `pods/<name>/portforward`.
pub async fn port_forward(
    api: &Api,
    req: &ResourceRequest,
    connect: Connect<'_>,
) -> ApiResult<Response> {
    let name = req.name.as_deref().unwrap_or("");
    let namespace = req.namespace_or_empty();
    let query = parse_ports(connect.query)?;
    let location = {
        let state = api.store.lock();
        let pod = state
            .get(&ObjectKey::new(resources::core("pods"), namespace, name))
            .ok_or_else(|| ApiError::not_found("", "pods", name))?;
        let preferred = &api.config.kubelet_preferred_address_types;
        let path = ["portForward", namespace, name];
        kubelet_url(&state, pod, &path, &query, preferred)?
    };
    let Some(url) = location else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    if offers_tunnel(&connect) {
        tunnel(api, &url, connect).await
    } else {
        pass_upgrade(api, &url, connect).await
    }
}

/// `wsstream.IsWebSocketRequestWithTunnelingProtocol`.
fn offers_tunnel(connect: &Connect<'_>) -> bool {
    let websocket = connect
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    websocket
        && connect
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == TUNNEL_PROTOCOL)
}

/// The tunnel: a SPDY upgrade to the kubelet; on its 101 the client's WebSocket is
/// accepted and joined to it, each binary message carrying SPDY bytes.
async fn tunnel(api: &Api, url: &Url, connect: Connect<'_>) -> ApiResult<Response> {
    let key = connect.headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(client_upgrade), Some(key)) =
        (is_upgrade(connect.headers), connect.upgrade, key)
    else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let response = api
        .kubelet_client
        .request(Method::GET, url.as_str())
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("x-stream-protocol-version", "portforward.k8s.io")
        .send()
        .await
        .map_err(|err| transport_error(url, &err))?;
    let code = response.status();
    if code != StatusCode::SWITCHING_PROTOCOLS {
        let body = response.bytes().await.unwrap_or_default();
        return Ok((code, body).into_response());
    }
    let mut answer = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = answer.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key(key.as_bytes()));
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(TUNNEL_PROTOCOL),
    );
    let mut stopped = api.stopped.subscribe();
    tokio::spawn(async move {
        let (Ok(client), Ok(kubelet)) = (client_upgrade.await, response.upgrade().await) else {
            return;
        };
        let socket = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None);
        tokio::select! {
            () = join(socket.await, kubelet) => {}
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
    });
    Ok(answer)
}

/// Copies WebSocket messages to the kubelet's SPDY bytes and back until either side closes.
async fn join<S, K>(socket: WebSocketStream<S>, kubelet: K)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    K: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut messages) = socket.split();
    let (mut from_kubelet, mut to_kubelet) = tokio::io::split(kubelet);
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if to_kubelet.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            read = from_kubelet.read(&mut buffer) => match read {
                Ok(read @ 1..) => {
                    let message = Message::Binary(buffer[..read].to_vec().into());
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
        }
    }
    let _ = sink.close().await;
    let _ = to_kubelet.shutdown().await;
}

/// `Sec-WebSocket-Accept` for the client's key (RFC 6455, 4.2.2).
fn accept_key(key: &[u8]) -> HeaderValue {
    let digest = Sha1::new()
        .chain_update(key)
        .chain_update(WEBSOCKET_GUID)
        .finalize();
    let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_become_the_kubelets_port_parameters() {
        let query = parse_ports("ports=8080&ports=53&other=x").unwrap();
        assert_eq!(
            query,
            [("port", "8080".to_owned()), ("port", "53".to_owned())]
        );
        assert!(parse_ports("ports=http").is_err());
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
