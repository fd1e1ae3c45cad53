//! `pods/portforward` through the test API server to the fake kubelet (`fake_kubelet.rs`),
//! which answers an upgrade with 101, writes the request line and echoes: SPDY passed
//! through as it came, kubectl's WebSocket tunnel carried as SPDY to the kubelet, and the
//! API server's own refusals before any upgrade.

use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::TestApiServer;
use super::fake_kubelet::{FakeKubelet, expect_passed_through};
use super::http_client::Client;
use super::logs_tests::{node, pod};
use super::pod_portforward::TUNNEL_PROTOCOL;

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn started() -> (TestApiServer, String, FakeKubelet) {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main"]).await;
    pod(&client, "pending", None, &["main"]).await;
    (server, url, kubelet)
}

#[tokio::test]
async fn port_forward_passes_spdy_through_to_the_kubelet() {
    let (_server, url, kubelet) = started().await;
    let response = reqwest::Client::new()
        .post(format!("{url}{PODS}/web/portforward"))
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "portforward.k8s.io")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["x-stream-protocol-version"],
        "portforward.k8s.io"
    );
    expect_passed_through(response, "POST /portForward/default/web\n").await;
    assert!(kubelet.saw_client("kube-apiserver-kubelet-client"));
}

#[tokio::test]
async fn kubectls_websocket_tunnel_reaches_the_kubelet_as_spdy() {
    let (_server, url, _kubelet) = started().await;
    let response = reqwest::Client::new()
        .get(format!("{url}{PODS}/web/portforward?ports=8080"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", TUNNEL_PROTOCOL)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        TUNNEL_PROTOCOL
    );
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let upgraded = response.upgrade().await.unwrap();
    let mut socket =
        tokio_tungstenite::WebSocketStream::from_raw_socket(upgraded, Role::Client, None).await;
    let expected = b"GET /portForward/default/web?port=8080\nboth ways".to_vec();
    socket
        .send(Message::Binary(b"both ways".to_vec().into()))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => got.extend_from_slice(&bytes),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}

#[tokio::test]
async fn port_forward_refusals_come_before_any_upgrade() {
    let (_server, url, _kubelet) = started().await;
    let status = |path: String| {
        let url = url.clone();
        async move {
            let response = reqwest::Client::new()
                .post(format!("{url}{path}"))
                .header("connection", "Upgrade")
                .header("upgrade", "SPDY/3.1")
                .header("x-stream-protocol-version", "portforward.k8s.io")
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (code, body) = status(format!("{PODS}/pending/portforward")).await;
    assert_eq!(code, 400);
    assert!(
        body.contains("pod pending does not have a host assigned"),
        "{body}"
    );
    let (code, _) = status(format!("{PODS}/absent/portforward")).await;
    assert_eq!(code, 404);
    let (code, body) = status(format!("{PODS}/web/portforward?ports=http")).await;
    assert_eq!(code, 400, "{body}");
    let plain = reqwest::Client::new()
        .post(format!("{url}{PODS}/web/portforward"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert!(
        plain
            .text()
            .await
            .unwrap()
            .contains("Upgrade request required")
    );
}
