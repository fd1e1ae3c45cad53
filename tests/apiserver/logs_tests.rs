//! `pods/log` through the test API server to a fake kubelet (`fake_kubelet.rs`) that
//! authenticates the API server's client certificate and echoes the request it got — so the
//! tests see the URL the API server built, the certificate it presented, streaming with
//! `follow`, and how kubelet errors come back. Ends with the real `kubectl logs` and
//! `kubectl logs -f`.

use std::time::Duration;

use axum::http::header;
use futures::StreamExt;
use serde_json::{Value, json};

use super::TestApiServer;
use super::fake_kubelet::FakeKubelet;
use super::http_client::Client;

/// Creates Node `n1` whose kubelet listens on 127.0.0.1:`port`.
pub(super) async fn node(client: &Client, port: u16) {
    node_named(client, "n1", port).await;
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Creates Node `name` whose kubelet listens on 127.0.0.1:`port`.
async fn node_named(client: &Client, name: &str, port: u16) {
    let node = json!({"metadata": {"name": name}, "status": {
        "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }});
    assert_eq!(client.post("/api/v1/nodes", &node).await.0, 201);
}

/// Creates pod `name` in default on `node` with `containers`.
pub(super) async fn pod(client: &Client, name: &str, node: Option<&str>, containers: &[&str]) {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "uptimed"}))
        .collect();
    let mut pod = json!({"metadata": {"name": name}, "spec": {"containers": containers}});
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    let (code, body) = client.post("/api/v1/namespaces/default/pods", &pod).await;
    assert_eq!(code, 201, "{body}");
}

/// GET of a log path: status, content type and body text.
async fn get_text(url: &str, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{url}{path}")).await.unwrap();
    let code = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (code, content_type, response.text().await.unwrap())
}

const LOG: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn log_is_proxied_to_the_kubelet_with_the_api_servers_client_certificate() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main"]).await;

    let (code, content_type, body) = get_text(&url, &format!("{LOG}/web/log")).await;
    assert_eq!(
        (code, content_type.as_str(), body.as_str()),
        (200, "text/plain", "GET /containerLogs/default/web/main\n")
    );
    assert!(kubelet.saw_client("kube-apiserver-kubelet-client"));
    assert!(kubelet.saw_client("system:masters"));

    let query = "container=main&tailLines=5&timestamps=true&sinceSeconds=60&limitBytes=100&previous=1&insecureSkipTLSVerifyBackend=true&unknown=x";
    let (code, _, body) = get_text(&url, &format!("{LOG}/web/log?{query}")).await;
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            "GET /containerLogs/default/web/main?limitBytes=100&previous=true&sinceSeconds=60&tailLines=5&timestamps=true\n"
        )
    );
    let since = "sinceTime=2026-11-28T20:00:00%2B01:00";
    let (_, _, body) = get_text(&url, &format!("{LOG}/web/log?{since}")).await;
    assert_eq!(
        body,
        "GET /containerLogs/default/web/main?sinceTime=2026-11-28T19%3A00%3A00Z\n"
    );
}

#[tokio::test]
async fn log_with_follow_streams_as_the_kubelet_writes() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main"]).await;

    let response = reqwest::get(format!("{url}{LOG}/web/log?follow=true"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut chunks = response.bytes_stream();
    let mut next = async || {
        let chunk = tokio::time::timeout(Duration::from_secs(5), chunks.next()).await;
        chunk.expect("a chunk within 5 s").map(|c| c.unwrap())
    };
    assert_eq!(
        next().await.unwrap(),
        "GET /containerLogs/default/web/main?follow=true\n"
    );
    kubelet.follow.send("second line\n".to_string()).unwrap();
    assert_eq!(next().await.unwrap(), "second line\n");
    kubelet.follow.send("third line\n".to_string()).unwrap();
    assert_eq!(next().await.unwrap(), "third line\n");
    drop(kubelet);
    assert!(next().await.is_none(), "the stream ends with the kubelet's");
}

#[tokio::test]
async fn a_followed_log_ends_when_the_server_stops() {
    let (mut server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main"]).await;
    let response = reqwest::get(format!("{url}{LOG}/web/log?follow=true"))
        .await
        .unwrap();
    let mut chunks = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), chunks.next()).await;
    assert!(first.unwrap().unwrap().is_ok());
    server.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), chunks.next()).await;
    assert!(
        end.unwrap().is_none_or(|chunk| chunk.is_err()),
        "the stream ends"
    );
}

#[tokio::test]
async fn log_picks_the_container_as_kube_apiserver_does() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "pair", Some("n1"), &["app", "sidecar"]).await;

    let (code, status) = client.get(&format!("{LOG}/pair/log")).await;
    assert_eq!(
        (code, status["reason"].as_str(), status["message"].as_str()),
        (
            400,
            Some("BadRequest"),
            Some("a container name must be specified for pod pair, choose one of: [app sidecar]")
        )
    );
    let (code, status) = client.get(&format!("{LOG}/pair/log?container=db")).await;
    assert_eq!(
        (code, status["message"].as_str()),
        (400, Some("container db is not valid for pod pair"))
    );
    let (code, _, body) = get_text(&url, &format!("{LOG}/pair/log?container=sidecar")).await;
    assert_eq!(
        (code, body.as_str()),
        (200, "GET /containerLogs/default/pair/sidecar\n")
    );
}

#[tokio::test]
async fn log_errors_read_as_kube_apiservers() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    let status = async |path: &str| {
        let (code, status) = client.get(&format!("{LOG}/{path}")).await;
        (
            code,
            status["reason"].as_str().map(str::to_string),
            status["message"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        status("ghost/log").await,
        (
            404,
            Some("NotFound".into()),
            "pods \"ghost\" not found".into()
        )
    );

    pod(&client, "pending", None, &["main"]).await;
    let (code, _, body) = get_text(&url, &format!("{LOG}/pending/log")).await;
    assert_eq!((code, body.as_str()), (204, ""));

    pod(&client, "lost", Some("n2"), &["main"]).await;
    assert_eq!(
        status("lost/log").await,
        (
            404,
            Some("NotFound".into()),
            "nodes \"n2\" not found".into()
        )
    );

    pod(
        &client,
        "web",
        Some("n1"),
        &["main", "gone", "denied", "crash"],
    )
    .await;
    assert_eq!(
        status("web/log?tailLines=-1").await,
        (
            422,
            Some("Invalid".into()),
            "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0".into()
        )
    );
    assert_eq!(status("web/log?follow=maybe").await.0, 400);
    assert_eq!(
        status("web/log?container=gone").await,
        (
            404,
            Some("NotFound".into()),
            "the server could not find the requested resource ( pods/log web)".into()
        )
    );
    assert_eq!(
        status("web/log?container=denied").await,
        (
            403,
            Some("Forbidden".into()),
            "Forbidden (user=someone, verb=get, resource=nodes, subresource=proxy) ( pods/log web)"
                .into()
        )
    );
    assert_eq!(
        status("web/log?container=crash").await,
        (
            500,
            Some("InternalError".into()),
            "Internal error occurred: journal unreadable".into()
        )
    );

    let port = closed_port();
    node_named(&client, "down", port).await;
    pod(&client, "stranded", Some("down"), &["main"]).await;
    let refused = status("stranded/log").await;
    assert_eq!(
        refused,
        (
            500,
            None,
            format!(
                "Get \"https://127.0.0.1:{port}/containerLogs/default/stranded/main\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
        )
    );
}

/// kubectl with its own kubeconfig and HOME.
fn kubectl(
    program: &std::path::Path,
    server: &TestApiServer,
    dir: &tempfile::TempDir,
    args: &[&str],
) -> tokio::process::Command {
    let kubeconfig = server.write_kubeconfig(dir.path());
    let mut command = tokio::process::Command::new(program);
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(args)
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn kubectl_logs_and_logs_follow_go_through_the_kubelet() {
    let Some(program) =
        crate::support::kubectl_or_skip("kubectl_logs_and_logs_follow_go_through_the_kubelet")
    else {
        return;
    };
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main", "side"]).await;
    let dir = tempfile::tempdir().unwrap();

    let run = kubectl(
        &program,
        &server,
        &dir,
        &["logs", "web", "--tail=3", "-c", "side"],
    )
    .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "GET /containerLogs/default/web/side?tailLines=3\n"
    );

    let mut follow = kubectl(&program, &server, &dir, &["logs", "-f", "web"])
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(follow.stdout.take().unwrap()));
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a line within 10 s")
            .unwrap()
    };
    // kubectl picks the first container itself and says so on stderr.
    assert_eq!(
        next().await.as_deref(),
        Some("GET /containerLogs/default/web/main?follow=true")
    );
    kubelet.follow.send("streamed\n".to_string()).unwrap();
    assert_eq!(next().await.as_deref(), Some("streamed"));
    drop(kubelet);
    assert_eq!(next().await, None);

    node_named(&client, "down", closed_port()).await;
    pod(&client, "stranded", Some("down"), &["main"]).await;
    let output = kubectl(&program, &server, &dir, &["logs", "stranded"])
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Get \"https://127.0.0.1:")
            && String::from_utf8_lossy(&output.stderr).contains("connect: connection refused"),
        "{output:?}"
    );
}
