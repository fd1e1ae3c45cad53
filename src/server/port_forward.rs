//! `GET`/`POST /portForward/{namespace}/{pod}`: `kubectl port-forward`. Answered as the
//! kubelet answers (`getPortForward`, `portforward.NewV4Options`, `ServePortForward`): bad
//! `port` parameters of a WebSocket request 400, a pod this node does not run 404 `pod does
//! not exist`, a pod none of whose containers runs 500 `pod not found ("<name>_<namespace>")`
//! (`GetPortForward` looks among the running pods); then SPDY/3.1 with
//! `portforward.k8s.io` ([`spdy`]) or a WebSocket with `v4.channel.k8s.io` or
//! `v4.base64.channel.k8s.io` ([`websocket`]). Each forwarded connection reaches
//! `127.0.0.1:<port>`: pods share the node's network. Like the kubelet, any port is
//! forwarded, declared by the pod or not. Authorization happened before (`nodes/proxy`, in
//! the middleware). Layer 6.

mod connection;
mod spdy;
mod websocket;

use std::sync::Arc;

use axum::extract::{Path, Request, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;

use super::State;
use super::conn::{self, Connection};
use super::stream::channel::ChannelProtocol;
use super::stream::spdy::upgrade::{PORT_FORWARD_PROTOCOLS, is_websocket};
use super::stream_session::{STREAM_CREATION_TIMEOUT, Timeouts};
use super::streaming::{offered_protocols, pod_units, text, upgrade_spdy, upgrade_websocket};
use connection::Target;

/// The WebSocket subprotocols of port-forward; a client that offers none gets the first.
const WEBSOCKET_PROTOCOLS: [ChannelProtocol; 2] = [ChannelProtocol::V4, ChannelProtocol::V4Base64];
/// Ports of one WebSocket request: two channels each, and channels are one byte.
const MAX_PORTS: usize = 64;
/// Ports with base64 channels, whose numbers are one digit.
const MAX_BASE64_PORTS: usize = 5;

/// The port-forward endpoint.
pub async fn port_forward(
    Shared(state): Shared<Arc<State>>,
    Path((namespace, pod)): Path<(String, String)>,
    request: Request,
) -> Response {
    serve(&state, namespace, pod, None, request).await
}

/// The port-forward endpoint that names the pod's UID too
/// (`/portForward/{namespace}/{pod}/{uid}`): a pod of that name with another UID is the
/// kubelet's 404 `pod not found`.
pub async fn port_forward_with_uid(
    Shared(state): Shared<Arc<State>>,
    Path((namespace, pod, uid)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    serve(&state, namespace, pod, Some(uid), request).await
}

async fn serve(
    state: &State,
    namespace: String,
    pod: String,
    uid: Option<String>,
    request: Request,
) -> Response {
    let websocket = is_websocket(request.headers());
    let ports = if websocket {
        match websocket_ports(request.uri().query().unwrap_or_default()) {
            Ok(ports) => ports,
            Err(message) => return text(StatusCode::BAD_REQUEST, message),
        }
    } else {
        Vec::new()
    };
    let units = match pod_units(state, &namespace, &pod).await {
        Ok(units) => units,
        Err(response) => return response,
    };
    if uid.is_some_and(|uid| units.iter().all(|unit| unit.meta.pod_uid != uid)) {
        return text(StatusCode::NOT_FOUND, "pod not found".into());
    }
    if units.iter().all(|unit| unit.status.main_pid == 0) {
        let message = format!("pod not found (\"{pod}_{namespace}\")");
        return text(StatusCode::INTERNAL_SERVER_ERROR, message);
    }
    let target = Target {
        pod,
        uid: units[0].meta.pod_uid.clone(),
    };
    let held = request
        .extensions()
        .get::<Arc<Connection>>()
        .cloned()
        .map(conn::hold);
    let timeouts = Timeouts {
        creation: STREAM_CREATION_TIMEOUT,
        idle: state.limits.stream_idle_timeout,
    };
    if !websocket {
        return upgrade_spdy(
            request,
            PORT_FORWARD_PROTOCOLS,
            "port-forward",
            move |io| async move {
                let _held = held;
                spdy::serve(io, target, timeouts).await;
                tracing::info!("port-forward: session ended");
            },
        );
    }
    let offered = offered_protocols(request.headers());
    let Some(protocol) = negotiate(offered.as_deref()) else {
        let message = format!(
            "requested protocol(s) are not supported: {}",
            offered.unwrap_or_default()
        );
        return text(StatusCode::BAD_REQUEST, message);
    };
    if protocol == ChannelProtocol::V4Base64 && ports.len() > MAX_BASE64_PORTS {
        let message = format!("at most {MAX_BASE64_PORTS} ports with {}", protocol.name());
        return text(StatusCode::BAD_REQUEST, message);
    }
    let selected = offered.is_some().then(|| protocol.name());
    match upgrade_websocket(request, selected).await {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| async move {
            let _held = held;
            websocket::serve(socket, protocol, ports, target, timeouts.idle).await;
            tracing::info!("port-forward: session ended");
        }),
        Err(response) => response,
    }
}

/// The first of the client's WebSocket subprotocols that port-forward speaks.
fn negotiate(offered: Option<&str>) -> Option<ChannelProtocol> {
    let Some(offered) = offered else {
        return Some(WEBSOCKET_PROTOCOLS[0]);
    };
    offered
        .split(',')
        .map(str::trim)
        .find_map(|name| WEBSOCKET_PROTOCOLS.into_iter().find(|p| p.name() == name))
}

/// The ports of a WebSocket request (`NewV4Options`): `port` repeats, each a
/// comma-separated list.
fn websocket_ports(query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "port" {
            continue;
        }
        if value.is_empty() {
            return Err("query parameter \"port\" cannot be empty".into());
        }
        for port in value.split(',') {
            let port = port
                .parse::<u16>()
                .map_err(|err| format!("unable to parse {value:?} as a port: {err}"))?;
            if port == 0 {
                return Err(format!("port {value:?} must be > 0"));
            }
            ports.push(port);
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    if ports.len() > MAX_PORTS {
        return Err(format!("at most {MAX_PORTS} ports"));
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_ports_are_read_as_the_kubelet_reads_them() {
        assert_eq!(
            websocket_ports("port=8080&port=53,9090"),
            Ok(vec![8080, 53, 9090])
        );
        assert_eq!(
            websocket_ports(""),
            Err("query parameter \"port\" is required".into())
        );
        assert_eq!(
            websocket_ports("port="),
            Err("query parameter \"port\" cannot be empty".into())
        );
        assert_eq!(
            websocket_ports("port=0"),
            Err("port \"0\" must be > 0".into())
        );
    }

    #[test]
    fn attack_bad_or_too_many_ports_are_a_bad_request() {
        for query in ["port=65536", "port=-1", "port=80,x", "port=%00"] {
            assert!(websocket_ports(query).is_err(), "{query}");
        }
        let many = vec!["port=1"; MAX_PORTS + 1].join("&");
        assert!(websocket_ports(&many).is_err());
    }

    #[test]
    fn the_websocket_protocols_are_the_kubelets() {
        assert_eq!(negotiate(None), Some(ChannelProtocol::V4));
        assert_eq!(
            negotiate(Some("v5.channel.k8s.io, v4.base64.channel.k8s.io")),
            Some(ChannelProtocol::V4Base64)
        );
        assert_eq!(negotiate(Some("v5.channel.k8s.io,channel.k8s.io")), None);
    }
}
