//! The HTTP/1.1 upgrade that turns an exec, attach or port-forward request into a SPDY/3.1
//! connection, answered as the kubelet answers it (apimachinery `httpstream.Handshake`, then
//! `spdy.responseUpgrader`): pick the first `X-Stream-Protocol-Version` the client offers that
//! systemk speaks, check `Connection: Upgrade` and `Upgrade: SPDY/3.1`, answer 101. Pure over
//! headers; the handler does the hijacking. Layer: server.

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

/// The `Upgrade` token.
pub const SPDY_31: &str = "SPDY/3.1";
/// The header that carries the subprotocols offered, then the one chosen.
pub const PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
/// The header a refusal lists the subprotocols systemk speaks in.
pub const ACCEPTED_PROTOCOL_VERSIONS: &str = "X-Accepted-Stream-Protocol-Versions";
/// exec and attach over SPDY: v5 is v4 on SPDY (its CLOSE signal is WebSocket-only), and v4
/// is the first with the exit code in the status stream. Older ones are not offered by any
/// client systemk supports.
pub const REMOTE_COMMAND_PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// port-forward over SPDY.
pub const PORT_FORWARD_PROTOCOLS: &[&str] = &["portforward.k8s.io"];

/// Why an upgrade is refused, with the HTTP answer the kubelet gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400 for missing headers, 403 for no common subprotocol.
    pub status: StatusCode,
    /// The body.
    pub message: String,
    /// Listed in `X-Accepted-Stream-Protocol-Versions` on a 403.
    pub accepted: &'static [&'static str],
}

impl Refusal {
    /// The response to send instead of 101.
    pub fn response(&self) -> Response<String> {
        let mut response = Response::new(self.message.clone());
        *response.status_mut() = self.status;
        for protocol in self.accepted {
            response.headers_mut().append(
                ACCEPTED_PROTOCOL_VERSIONS,
                HeaderValue::from_static(protocol),
            );
        }
        response
    }
}

/// Picks the subprotocol for a SPDY upgrade request: the first the client offers (in its
/// order, as the kubelet does) that is in `supported`.
pub fn negotiate(
    headers: &HeaderMap,
    supported: &'static [&'static str],
) -> Result<&'static str, Refusal> {
    let offered: Vec<&str> = headers
        .get_all(PROTOCOL_VERSION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Err(bad_request(format!(
            "unable to upgrade: {PROTOCOL_VERSION} is required"
        )));
    }
    let Some(chosen) = offered
        .iter()
        .find_map(|o| supported.iter().find(|s| *s == o))
    else {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, \
                 server accepts {supported:?}"
            ),
            accepted: supported,
        });
    };
    if !header_contains(headers, CONNECTION, "upgrade")
        || !header_contains(headers, UPGRADE, &SPDY_31.to_ascii_lowercase())
    {
        return Err(bad_request(
            "unable to upgrade: missing upgrade headers in request".into(),
        ));
    }
    Ok(chosen)
}

/// The 101 answer that starts the SPDY session with `protocol`.
pub fn switching_protocols(protocol: &'static str) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static(SPDY_31));
    headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(protocol));
    response
}

/// Whether the request asks for a WebSocket rather than SPDY (apimachinery
/// `wsstream.IsWebSocketRequest`: `Upgrade: websocket` and an `upgrade` Connection token).
pub fn is_websocket(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    upgrade.eq_ignore_ascii_case("websocket")
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

fn header_contains(headers: &HeaderMap, name: http::header::HeaderName, lowercase: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains(lowercase))
}

fn bad_request(message: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        message,
        accepted: &[],
    }
}

#[cfg(test)]
#[path = "upgrade/tests.rs"]
mod tests;
