//! What exec and port-forward share before their sessions start: the plain-text answers
//! the kubelet gives, the pod's units (404 `pod does not exist` when this node runs none),
//! the WebSocket subprotocols a client offers, and the SPDY upgrade that hands the
//! connection to a session task. Layer 6.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts as _, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

use super::State;
use super::stream::spdy::upgrade::{negotiate, switching_protocols};
use crate::systemd::ManagedUnit;

/// The connection once upgraded to SPDY.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// A plain-text answer, as the kubelet writes its errors.
pub fn text(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], message).into_response()
}

/// The units of a pod this node runs, or the kubelet's 404.
pub async fn pod_units(
    state: &State,
    namespace: &str,
    pod: &str,
) -> Result<Vec<ManagedUnit>, Response> {
    let units = state
        .systemd
        .pod_units(&state.unit_dir, namespace, pod)
        .await
        .map_err(|err| {
            tracing::warn!(error = %crate::error_chain::Chain(&err), "cannot list the pod's units");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot list the pod's units".into(),
            )
        })?;
    if units.is_empty() {
        return Err(text(StatusCode::NOT_FOUND, "pod does not exist".into()));
    }
    Ok(units)
}

/// The `Sec-WebSocket-Protocol` list the client offers, joined; `None` when it offers none.
pub fn offered_protocols(headers: &HeaderMap) -> Option<String> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!offered.is_empty()).then(|| offered.join(","))
}

/// Answers a SPDY upgrade with 101 and the first of `supported` the client offers (or the
/// kubelet's refusal), and runs `session` on the connection once the client has it.
pub fn upgrade_spdy<F>(
    mut request: Request,
    supported: &'static [&'static str],
    what: &'static str,
    session: impl FnOnce(Upgraded) -> F + Send + 'static,
) -> Response
where
    F: Future<Output = ()> + Send,
{
    let protocol = match negotiate(request.headers(), supported) {
        Ok(protocol) => protocol,
        Err(refusal) => return refusal.response().into_response(),
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => session(TokioIo::new(upgraded)).await,
            Err(error) => tracing::info!(%error, what, "the upgrade did not complete"),
        }
    });
    switching_protocols(protocol)
        .map(|()| axum::body::Body::empty())
        .into_response()
}

/// The WebSocket upgrade of `request`, answering with `selected` as the subprotocol when the
/// client offered one.
pub async fn upgrade_websocket(
    request: Request,
    selected: Option<&'static str>,
) -> Result<WebSocketUpgrade, Response> {
    let (mut parts, _) = request.into_parts();
    let mut upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(IntoResponse::into_response)?;
    if let Some(selected) = selected {
        upgrade.set_selected_protocol(HeaderValue::from_static(selected));
    }
    Ok(upgrade)
}
