//! `kubectl port-forward` (issue 13, points 3, 4 and 8 for port-forward): a pod running
//! Debian's `python3 -m http.server` on the node's loopback, reached with the real kubectl
//! through the test API server (its default WebSocket tunnel and SPDY, two ports at once),
//! and straight through the kubelet API over a WebSocket (the port prefix on each channel, the daemon's answer on the data
//! channel, the kubelet's error text for a port nobody listens on). Attacks: no
//! certificate, or a user without `create` on `nodes/proxy`, is refused before any
//! upgrade, over SPDY and over a WebSocket.

use std::time::Duration;

use serde_json::json;

use crate::cluster::harness::{Cluster, pod_manifest};
use crate::cluster_exec::{spdy_upgrade, websocket_upgrade};

/// A pod serving HTTP on `ports` of the node's loopback, one container each: a listing of
/// `/usr/share/doc/python3-minimal` (python3-minimal, as python3).
fn web_pod(namespace: &str, node: &str, ports: &[u16]) -> String {
    let containers: Vec<serde_json::Value> = ports
        .iter()
        .enumerate()
        .map(|(index, port)| {
            json!({
                "name": format!("http{index}"), "image": "/usr/bin/python3",
                "args": ["-m", "http.server", "--bind", "127.0.0.1",
                         "--directory", "/usr/share/doc/python3-minimal", port.to_string()],
            })
        })
        .collect();
    let spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 2,
        "containers": containers,
    });
    pod_manifest("web", namespace, node, spec).to_string()
}

/// An HTTP/1.0 GET of `/` on `port` of the loopback: the whole answer.
async fn http_get(port: u16) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A port nobody listens on now.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until something answers on `port`.
pub(crate) async fn wait_for_listener(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on {port}");
}

/// A SPDY port-forward upgrade of `pod` straight to the kubelet API: status and body.
async fn port_forward_upgrade(cluster: &Cluster, user: Option<&str>, pod: &str) -> (u16, String) {
    let path = format!("portForward/{}/{pod}", cluster.namespace());
    spdy_upgrade(cluster, user, &path, "portforward.k8s.io").await
}

/// Forwards `ports` over a WebSocket as alice, sends an HTTP request on the first data
/// channel, and returns what each channel received until the server closed.
async fn websocket_forward(cluster: &Cluster, ports: &[u16]) -> Vec<Vec<Vec<u8>>> {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let query: Vec<String> = ports.iter().map(|p| format!("port={p}")).collect();
    let url = format!(
        "https://{}:{}/portForward/{}/web?{}",
        cluster.node(),
        cluster.kubelet_port(),
        cluster.namespace(),
        query.join("&")
    );
    let response = websocket_upgrade(cluster, "alice", &url, "v4.channel.k8s.io").await;
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    let upgraded = response.upgrade().await.unwrap();
    let mut socket =
        tokio_tungstenite::WebSocketStream::from_raw_socket(upgraded, Role::Client, None).await;
    let request = b"\0GET / HTTP/1.0\r\n\r\n".to_vec();
    socket.send(Message::Binary(request.into())).await.unwrap();
    let mut channels = vec![Vec::new(); ports.len() * 2];
    while let Some(Ok(message)) = socket.next().await {
        match message {
            Message::Binary(bytes) => {
                channels[usize::from(bytes[0])].push(bytes[1..].to_vec());
            }
            Message::Close(_) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    channels
}

#[tokio::test]
async fn cluster_port_forward_is_authorized_before_the_upgrade_and_reaches_the_pod() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(mut cluster) = Cluster::new("cluster_port_forward_auth").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let port = free_port();
    cluster.apply(&web_pod(&namespace, &node, &[port])).await;
    let web = cluster
        .wait_for_pod("web", "Running", |pod| pod["status"]["phase"] == "Running")
        .await;
    let uid = web["metadata"]["uid"].as_str().unwrap().to_owned();
    wait_for_listener(port).await;

    // As exec: `nodes/proxy`, and `create` for the SPDY POST and the WebSocket GET alike.
    cluster.server.grant("alice", "create", "nodes", "proxy");
    cluster.server.grant("carol", "get", "nodes", "proxy");
    let (status, _) = port_forward_upgrade(&cluster, None, "web").await;
    assert_eq!(status, 401);
    let (status, body) = port_forward_upgrade(&cluster, Some("bob"), "web").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("user=bob, verb=create, resource=nodes, subresource=proxy"),
        "{body}"
    );
    let url = format!(
        "https://{node}:{}/portForward/{namespace}/web?port={port}",
        cluster.kubelet_port()
    );
    let refused = websocket_upgrade(&cluster, "carol", &url, "v4.channel.k8s.io").await;
    assert_eq!(refused.status(), 403);
    let (status, body) = port_forward_upgrade(&cluster, Some("alice"), "web").await;
    assert_eq!(status, 101, "{body}");
    let (status, body) = port_forward_upgrade(&cluster, Some("alice"), "absent").await;
    assert_eq!((status, body.as_str()), (404, "pod does not exist"));
    // The path may name the pod's UID too; another pod's UID is the kubelet's 404.
    let (status, body) = port_forward_upgrade(&cluster, Some("alice"), &format!("web/{uid}")).await;
    assert_eq!(status, 101, "{body}");
    let other_uid = "0b0e6a5c-52d5-4c1e-9d9e-000000000000";
    let (status, body) =
        port_forward_upgrade(&cluster, Some("alice"), &format!("web/{other_uid}")).await;
    assert_eq!((status, body.as_str()), (404, "pod not found"));
    // A pod whose containers all ended: the kubelet finds it not among the running pods.
    let spec = json!({
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "/bin/sh", "args": ["-c", "true"]}],
    });
    cluster
        .apply(&pod_manifest("done", &namespace, &node, spec).to_string())
        .await;
    cluster
        .wait_for_pod("done", "Succeeded", |pod| {
            pod["status"]["phase"] == "Succeeded"
        })
        .await;
    let (status, body) = port_forward_upgrade(&cluster, Some("alice"), "done").await;
    let not_running = format!("pod not found (\"done_{namespace}\")");
    assert_eq!((status, body.as_str()), (500, not_running.as_str()));

    // Over a WebSocket: the daemon's answer on port 0's data channel; port 1, where nothing
    // listens, ends with the kubelet's text on its error channel.
    cluster.server.grant("alice", "get", "nodes", "proxy");
    let closed = free_port();
    let channels = websocket_forward(&cluster, &[port, closed]).await;
    for (channel, messages) in channels.iter().enumerate() {
        let expected = if channel < 2 { port } else { closed };
        assert_eq!(messages[0], expected.to_le_bytes(), "channel {channel}");
    }
    let answer = String::from_utf8(channels[0][1..].concat()).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer}");
    let error = String::from_utf8(channels[3][1..].concat()).unwrap();
    let uid_at = format!("error forwarding port {closed} to pod web, uid ");
    assert!(error.starts_with(&uid_at), "{error}");
    assert!(error.contains("connection refused"), "{error}");
    cluster.teardown().await;
}

#[tokio::test]
async fn cluster_kubectl_port_forward_reaches_a_debian_daemon_over_websocket_and_spdy() {
    let Some(mut cluster) = Cluster::new("cluster_port_forward").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let ports = [free_port(), free_port()];
    cluster.apply(&web_pod(&namespace, &node, &ports)).await;
    cluster
        .wait_for_pod("web", "Running", |pod| pod["status"]["phase"] == "Running")
        .await;
    for port in ports {
        wait_for_listener(port).await;
    }
    let (argv, home) = cluster.kubectl_command();
    for websockets in ["true", "false"] {
        let shown = format!("KUBECTL_PORT_FORWARD_WEBSOCKETS={websockets}");
        let local = [free_port(), free_port()];
        let mappings: Vec<String> = local
            .iter()
            .zip(ports)
            .map(|(local, port)| format!("{local}:{port}"))
            .collect();
        let mut kubectl = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .args(["port-forward", "-v=6", "-n", &namespace, "pod/web"])
            .args(&mappings)
            .env("HOME", home)
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for local in local {
            wait_for_listener(local).await;
            let answer = http_get(local).await;
            assert!(answer.starts_with("HTTP/1.0 200 OK"), "{shown}: {answer}");
            assert!(
                answer.contains("copyright"),
                "{shown}: the listing: {answer}"
            );
        }
        kubectl.start_kill().unwrap();
        let log = kubectl.wait_with_output().await.unwrap().stderr;
        let log = String::from_utf8_lossy(&log);
        // The WebSocket tunnel is a GET answered 101, not a fallback to SPDY's POST.
        let method = if websockets == "true" { "GET" } else { "POST" };
        let upgraded = log.lines().any(|line| {
            line.contains(&format!("verb=\"{method}\""))
                && line.contains("/pods/web/portforward\"")
                && line.contains("status=\"101 Switching Protocols\"")
        });
        assert!(upgraded, "{shown}: {log}");
    }
    cluster.teardown().await;
}
