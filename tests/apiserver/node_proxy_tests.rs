//! `nodes/proxy` through the test API server to the fake kubelet (`fake_kubelet.rs`),
//! which authenticates the API server's client certificate and echoes the request it got:
//! the kubelet path and query arrive unchanged, an unknown node is 404, a user without
//! `get nodes/proxy` is refused before anything reaches the kubelet, and the real
//! `kubectl get --raw` reads through it.

use std::time::Duration;

use serde_json::json;

use super::fake_kubelet::FakeKubelet;
use super::http_client::Client;
use super::https_tests::cert_client;
use super::{Config, TestApiServer};

const PROXY: &str = "/api/v1/nodes/n1/proxy";

/// Creates Node `n1` whose kubelet listens on 127.0.0.1:`port`.
async fn node(client: &Client, port: u16) {
    let node = json!({"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }});
    assert_eq!(client.post("/api/v1/nodes", &node).await.0, 201);
}

#[tokio::test]
async fn node_proxy_reaches_the_kubelet_path_with_the_api_servers_certificate() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;

    let response = reqwest::get(format!("{url}{PROXY}/metrics/resource?a=b"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "GET /metrics/resource?a=b\n"
    );
    assert!(kubelet.saw_client("kube-apiserver-kubelet-client"));

    let (code, status) = client.get("/api/v1/nodes/n9/proxy/metrics/resource").await;
    assert_eq!(
        (code, status["message"].as_str()),
        (404, Some("nodes \"n9\" not found"))
    );
    let (code, _) = client
        .send(reqwest::Method::POST, &format!("{PROXY}/pods"), "", None)
        .await;
    assert_eq!(code, 405);
}

#[tokio::test]
async fn attack_node_proxy_needs_get_on_nodes_proxy() {
    let (server, url) = TestApiServer::start_with(Config {
        https: true,
        ..Config::default()
    })
    .await;
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    let (cert, key) = server.issue_client_cert("admin", &["system:masters"]);
    let admin = cert_client(&server, &cert, &key);
    node(&admin, kubelet.port).await;
    assert!(url.starts_with("https://"));

    let (cert, key) = server.issue_client_cert("bob", &["dev"]);
    let bob = cert_client(&server, &cert, &key);
    let (code, status) = bob.get(&format!("{PROXY}/metrics/resource")).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "nodes \"n1\" is forbidden: User \"bob\" cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope"
    );
    assert!(
        !kubelet.saw_client("kube-apiserver-kubelet-client"),
        "nothing reached the kubelet"
    );

    server.grant("bob", "get", "nodes", "proxy");
    assert_eq!(bob.get(&format!("{PROXY}/metrics/resource")).await.0, 200);
    assert_eq!(admin.get(&format!("{PROXY}/stats/summary")).await.0, 200);
}

#[tokio::test]
async fn kubectl_get_raw_reads_through_node_proxy() {
    let Some(program) = crate::support::kubectl_or_skip("kubectl_get_raw_reads_through_node_proxy")
    else {
        return;
    };
    let (server, url) = TestApiServer::start().await;
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&Client::new(&url), kubelet.port).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    let run = tokio::process::Command::new(program)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", "--raw", &format!("{PROXY}/metrics/resource")])
        .env("HOME", dir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "GET /metrics/resource\n"
    );
}
