//! `kubectl exec` and `kubectl cp` (issue 13, points 1, 4 and 8 for exec) with the real
//! kubectl through the test API server, which passes the upgrade through to systemk's
//! kubelet API: over SPDY (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`) and with kubectl's
//! default, a `v5.channel.k8s.io` WebSocket. The command runs as the container's user and sees its private `/tmp`; stdout
//! and stderr stay apart, stdin streams, the exit code comes back. Attacks: no
//! certificate, or a user without `nodes/proxy`, is refused before any upgrade; the
//! command cannot read the host's secrets, write the host's `/etc` or see the host's
//! `/tmp`.

use std::time::Duration;

use serde_json::json;

use crate::cluster::harness::{Cluster, pod_manifest};

/// `nobody`.
const NOBODY: u32 = 65_534;

/// Reads the host's shadow file, writes to the host's `/etc`, counts the host's files in
/// `/tmp`: only the count may print, and it must be 0.
const ATTACK: &str = "cat /etc/shadow && echo READ; touch /etc/systemk-exec && echo WROTE; \
                      ls /tmp | grep -c systemk-host; true";

/// How soon the pod runs and answers exec.
const START: Duration = Duration::from_secs(30);

fn shell_pod(namespace: &str, node: &str) -> String {
    let spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 2,
        "securityContext": {"runAsUser": NOBODY, "runAsGroup": NOBODY},
        "containers": [{
            "name": "main", "image": "/bin/sh",
            "args": ["-c", "echo private > /tmp/mark; exec sleep infinity"],
        }],
    });
    pod_manifest("shell", namespace, node, spec).to_string()
}

/// kubectl's exit code, stdout and stderr.
async fn exec(
    cluster: &Cluster,
    websockets: &str,
    args: &[&str],
    input: Option<&[u8]>,
) -> (Option<i32>, String, String) {
    let env = [("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets)];
    let output = cluster.run_kubectl(args, &env, input).await;
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cluster_exec_and_cp_over_spdy_and_kubectls_default() {
    let Some(mut cluster) = Cluster::new("cluster_exec").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&shell_pod(&namespace, &node)).await;
    cluster
        .wait_for_pod("shell", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;
    let host_file = format!("/tmp/systemk-host-{}", std::process::id());
    std::fs::write(&host_file, "host").unwrap();
    let ns = namespace.as_str();

    for websockets in ["false", "true"] {
        let shown = format!("KUBECTL_REMOTE_COMMAND_WEBSOCKETS={websockets}");
        let who = cluster
            .wait_until(START, "kubectl exec to answer", || async {
                let args = [
                    "exec",
                    "shell",
                    "-n",
                    ns,
                    "--",
                    "sh",
                    "-c",
                    "id -u; cat /tmp/mark",
                ];
                let (code, stdout, _) = exec(&cluster, websockets, &args, None).await;
                (code == Some(0)).then_some(stdout)
            })
            .await;
        assert_eq!(who, format!("{NOBODY}\nprivate\n"), "{shown}");

        let script = "echo out; echo err >&2; exit 3";
        let args = ["exec", "shell", "-n", ns, "--", "sh", "-c", script];
        let (code, stdout, stderr) = exec(&cluster, websockets, &args, None).await;
        assert_eq!(
            (code, stdout.as_str()),
            (Some(3), "out\n"),
            "{shown}: {stderr}"
        );
        assert!(stderr.starts_with("err\n"), "{shown}: {stderr}");
        assert!(
            stderr.contains("command terminated with exit code 3"),
            "{shown}: {stderr}"
        );
        // A program the container does not have: an internal error, as containerd's.
        let args = ["exec", "shell", "-n", ns, "--", "/nonexistent/program"];
        let (code, _, stderr) = exec(&cluster, websockets, &args, None).await;
        assert_eq!(code, Some(1), "{shown}: {stderr}");
        assert!(
            stderr.contains("Internal error occurred")
                && stderr.contains("\"/nonexistent/program\" not found"),
            "{shown}: {stderr}"
        );

        let args = ["exec", "-i", "shell", "-n", ns, "--", "cat"];
        let (code, stdout, stderr) = exec(&cluster, websockets, &args, Some(b"hi\n")).await;
        assert_eq!(
            (code, stdout.as_str()),
            (Some(0), "hi\n"),
            "{shown}: {stderr}"
        );

        // kubectl cp is tar over exec, both ways; 3 MiB, many times any window or buffer.
        let content: Vec<u8> = (0..3u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let local = cluster
            .state_dir()
            .with_file_name(format!("cp-{websockets}"));
        std::fs::write(&local, &content).unwrap();
        let target = format!("{ns}/shell:/tmp/copied-{websockets}");
        let local_text = local.to_str().unwrap();
        let (code, _, stderr) =
            exec(&cluster, websockets, &["cp", local_text, &target], None).await;
        assert_eq!(code, Some(0), "{shown}: {stderr}");
        let back = local.with_extension("back");
        let back_text = back.to_str().unwrap();
        let (code, _, stderr) = exec(&cluster, websockets, &["cp", &target, back_text], None).await;
        assert_eq!(code, Some(0), "{shown}: {stderr}");
        assert!(
            std::fs::read(&back).unwrap() == content,
            "{shown}: cp changed the file"
        );

        // The host stays out of reach.
        let args = ["exec", "shell", "-n", ns, "--", "sh", "-c", ATTACK];
        let (code, stdout, _) = exec(&cluster, websockets, &args, None).await;
        assert_eq!((code, stdout.as_str()), (Some(0), "0\n"), "{shown}");
        assert!(!std::path::Path::new("/etc/systemk-exec").exists());
    }
    // kubectl going away ends the command and what it started.
    let args = [
        "exec",
        "shell",
        "-n",
        ns,
        "--",
        "sh",
        "-c",
        "sleep 1003 & sleep 1003",
    ];
    let mut kubectl = Box::pin(cluster.run_kubectl(&args, &[], None));
    tokio::select! {
        _ = &mut kubectl => panic!("the command ended by itself"),
        () = cluster.wait_until(START, "the command to run", || async {
            (sleeps_1003() == 2).then_some(())
        }) => {}
    }
    drop(kubectl);
    cluster
        .wait_until(START, "the command's processes to go", || async {
            (sleeps_1003() == 0).then_some(())
        })
        .await;

    // kubectl's default reached systemk as a WebSocket (GET), SPDY as POST; both upgraded.
    let log = cluster.log();
    for method in ["\"GET\"", "\"POST\""] {
        assert!(
            log.lines()
                .any(|l| l.contains(method) && l.contains("/exec/") && l.contains("101")),
            "no {method} exec upgraded"
        );
    }
    std::fs::remove_file(&host_file).unwrap();
    cluster.teardown().await;
}

/// The `sleep 1003` processes on the machine.
fn sleeps_1003() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline.starts_with(b"sleep\x001003"))
        .count()
}

/// A client of the node's kubelet API as user `user` (no certificate: `None`), trusting
/// its self-signed certificate.
pub(crate) fn kubelet_client(cluster: &Cluster, user: Option<&str>) -> reqwest::Client {
    let pem = std::fs::read(cluster.state_dir().join("pki/kubelet.crt")).unwrap();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], cluster.kubelet_port()));
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .resolve(cluster.node(), address)
        .timeout(Duration::from_secs(20));
    if let Some(user) = user {
        let (cert, key) = cluster.server.issue_client_cert(user, &["dev"]);
        let identity = reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
        builder = builder.identity(identity);
    }
    builder.build().unwrap()
}

/// A SPDY exec upgrade of `pod`'s `main` straight to the kubelet API: status and body.
async fn exec_upgrade(cluster: &Cluster, user: Option<&str>, pod: &str) -> (u16, String) {
    let path = format!(
        "exec/{}/{pod}/main?command=id&output=1",
        cluster.namespace()
    );
    spdy_upgrade(cluster, user, &path, "v4.channel.k8s.io").await
}

/// A SPDY upgrade of the kubelet API's `path` as `user` offering `protocol`: status and
/// body (empty when it switched protocols).
pub(crate) async fn spdy_upgrade(
    cluster: &Cluster,
    user: Option<&str>,
    path: &str,
    protocol: &str,
) -> (u16, String) {
    let url = format!(
        "https://{}:{}/{path}",
        cluster.node(),
        cluster.kubelet_port()
    );
    let response = kubelet_client(cluster, user)
        .post(url)
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", protocol)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 101 {
        return (status, String::new());
    }
    (status, response.text().await.unwrap())
}

/// A WebSocket upgrade of `url` as `user` offering `protocol`.
pub(crate) async fn websocket_upgrade(
    cluster: &Cluster,
    user: &str,
    url: &str,
    protocol: &str,
) -> reqwest::Response {
    kubelet_client(cluster, Some(user))
        .get(url)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", protocol)
        .send()
        .await
        .unwrap()
}

/// An exec over a WebSocket with `protocol`, straight to the kubelet API as alice: sends
/// `hi` on stdin to a script that reads a line, writes to stdout and stderr and exits 2;
/// returns what each channel (0–4) received until the server closed.
async fn websocket_exec(cluster: &Cluster, protocol: &str) -> [Vec<u8>; 5] {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let script: String =
        url::form_urlencoded::byte_serialize(b"read x; echo \"got $x\"; echo oops >&2; exit 2")
            .collect();
    let url = format!(
        "https://{}:{}/exec/{}/shell/main?command=sh&command=-c&command={script}&input=1&output=1&error=1",
        cluster.node(),
        cluster.kubelet_port(),
        cluster.namespace()
    );
    let response = websocket_upgrade(cluster, "alice", &url, protocol).await;
    assert_eq!(response.status(), 101, "{protocol}");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    let upgraded = response.upgrade().await.unwrap();
    let mut socket =
        tokio_tungstenite::WebSocketStream::from_raw_socket(upgraded, Role::Client, None).await;
    let base64 = protocol.contains("base64");
    let stdin = if base64 {
        Message::Text(format!("0{}", STANDARD.encode(b"hi\n")).into())
    } else {
        Message::Binary(b"\0hi\n".to_vec().into())
    };
    socket.send(stdin).await.unwrap();
    let mut channels: [Vec<u8>; 5] = Default::default();
    while let Some(Ok(message)) = socket.next().await {
        let (channel, data) = match message {
            Message::Text(text) if base64 => {
                let (digit, data) = text.as_str().split_at(1);
                (
                    digit.parse::<usize>().unwrap(),
                    STANDARD.decode(data).unwrap(),
                )
            }
            Message::Binary(bytes) if !base64 => (usize::from(bytes[0]), bytes[1..].to_vec()),
            Message::Close(_) => break,
            other => panic!("{protocol}: unexpected {other:?}"),
        };
        channels[channel].extend(data);
    }
    channels
}

#[tokio::test]
async fn cluster_exec_is_authorized_before_the_upgrade_and_gives_a_terminal() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(mut cluster) = Cluster::new("cluster_exec_auth").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&shell_pod(&namespace, &node)).await;
    let shell = cluster
        .wait_for_pod("shell", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;
    let uid = shell["metadata"]["uid"].as_str().unwrap().to_owned();

    // The kubelet's mapping: exec is `nodes/proxy`, POST is `create`.
    cluster.server.grant("alice", "create", "nodes", "proxy");
    cluster.server.grant("carol", "get", "nodes", "proxy");
    let (status, _) = exec_upgrade(&cluster, None, "shell").await;
    assert_eq!(status, 401);
    let (status, body) = exec_upgrade(&cluster, Some("bob"), "shell").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("user=bob, verb=create, resource=nodes, subresource=proxy"),
        "{body}"
    );
    let (status, body) = exec_upgrade(&cluster, Some("carol"), "shell").await;
    assert_eq!(status, 403, "get is not create: {body}");
    // Nor over a WebSocket, which is a GET: running a command needs `create` too, so a
    // scraper allowed `get` on nodes/proxy for /pods cannot exec.
    let url = format!(
        "https://{node}:{}/exec/{namespace}/shell/main?command=id&output=1",
        cluster.kubelet_port()
    );
    let refused = websocket_upgrade(&cluster, "carol", &url, "v5.channel.k8s.io").await;
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("user=carol, verb=create, resource=nodes, subresource=proxy"),
        "{body}"
    );
    let (status, body) = exec_upgrade(&cluster, Some("alice"), "shell").await;
    assert_eq!(status, 101, "{body}");
    // Over a WebSocket (a GET, so `get`) with the channel protocols kubectl no longer
    // offers: base64 text frames, and the pre-v4 status as a text.
    cluster.server.grant("alice", "get", "nodes", "proxy");
    let channels = websocket_exec(&cluster, "v4.base64.channel.k8s.io").await;
    assert_eq!(channels[1], b"got hi\n");
    assert_eq!(channels[2], b"oops\n");
    let status: serde_json::Value = serde_json::from_slice(&channels[3]).unwrap();
    assert_eq!(status["details"]["causes"][0]["message"], "2", "{status}");
    let channels = websocket_exec(&cluster, "channel.k8s.io").await;
    assert_eq!(
        (channels[1].as_slice(), channels[3].as_slice()),
        (
            b"got hi\n".as_slice(),
            b"command terminated with non-zero exit code: exit status 2".as_slice()
        )
    );
    // As the kubelet answers: a pod it does not run, a container that does not run.
    let (status, body) = exec_upgrade(&cluster, Some("alice"), "absent").await;
    assert_eq!((status, body.as_str()), (404, "pod does not exist"));
    // The path may name the pod's UID too; another pod's UID is not entered.
    let (status, body) = exec_upgrade(&cluster, Some("alice"), &format!("shell/{uid}")).await;
    assert_eq!(status, 101, "{body}");
    let other_uid = "0b0e6a5c-52d5-4c1e-9d9e-000000000000";
    let (status, body) = exec_upgrade(&cluster, Some("alice"), &format!("shell/{other_uid}")).await;
    assert_eq!((status, body.as_str()), (404, "pod not found"));
    let spec = json!({
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "/bin/sh", "args": ["-c", "true"]}],
    });
    let done = pod_manifest("done", &namespace, &node, spec).to_string();
    cluster.apply(&done).await;
    cluster
        .wait_for_pod("done", "Succeeded", |pod| {
            pod["status"]["phase"] == "Succeeded"
        })
        .await;
    let (status, body) = exec_upgrade(&cluster, Some("alice"), "done").await;
    assert_eq!(
        (status, body.as_str()),
        (500, "container not found (\"main\")")
    );

    // -it needs a terminal on kubectl's side: `script` gives it one, sized 33x100.
    let (argv, home) = cluster.kubectl_command();
    let line = format!(
        "stty cols 100 rows 33; exec {} exec -it shell -n {namespace} -- sh -c 'tty; stty size; exit 4'",
        argv.join(" ")
    );
    let output = tokio::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("HOME", home)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    // `script` answers the end of its stdin with a NUL, which the local terminal echoes
    // as `^@` somewhere in the output.
    let text = String::from_utf8_lossy(&output.stdout).replace("^@", "");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    assert_eq!(output.status.code(), Some(4), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("/dev/pts/")), "{text}");
    assert!(lines.contains(&"33 100"), "{text}");
    cluster.teardown().await;
}
