//! `kubectl attach` (issue 13, points 2, 4 and 8 for attach) with the real kubectl through
//! the test API server, which passes the upgrade through to systemk's kubelet API: over
//! SPDY (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`) and kubectl's default WebSocket.
//! Output is the current run's from the attach on (a line printed before is absent);
//! `stdin: true` gives the container a FIFO its socket unit holds, `kubectl attach -i`
//! writes into it, and it outlives the client's end of input and a systemk restart; the
//! socket never starts the container again. Attacks: no certificate, a user without
//! `create` on `nodes/proxy`, refused before any upgrade.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::cluster::harness::{Cluster, in_mount_namespace, pod_manifest};
use crate::cluster_exec::spdy_upgrade;

/// How soon a pod runs, a line arrives, a unit changes.
const SOON: Duration = Duration::from_secs(30);

/// Where the agent writes unit files in the sandbox.
const UNIT_DIR: &str = "/etc/systemd/system";

/// A `kubectl attach` running, its stdout read line by line.
struct Attached {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Attached {
    /// Starts `kubectl attach <args>` with `websockets`; `input` is written to its stdin,
    /// which then closes (as `echo hi | kubectl attach -i` does).
    async fn start(
        cluster: &Cluster,
        websockets: &str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Self {
        let (argv, home) = cluster.kubectl_command();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .arg("attach")
            .args(args)
            .env("HOME", home)
            .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run kubectl attach");
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input).await.expect("kubectl's stdin");
        }
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// The next line kubectl prints, within [`SOON`].
    async fn line(&mut self) -> String {
        let next = tokio::time::timeout(SOON, self.lines.next_line()).await;
        match next {
            Ok(Ok(Some(line))) => line,
            other => panic!("no line from kubectl attach: {other:?}"),
        }
    }

    /// Reads lines until one is `wanted`.
    async fn until(&mut self, wanted: &str) {
        while self.line().await != wanted {}
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The number of a `tick-N` line.
fn tick(line: &str) -> u64 {
    line.strip_prefix("tick-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a tick: {line:?}"))
}

fn pods(namespace: &str, node: &str) -> String {
    let ticker = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "main", "image": "/bin/sh",
            "args": ["-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"],
        }],
    });
    let echo = json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "main", "image": "/bin/sh", "stdin": true,
            "args": ["-c", "while read l; do echo got:$l; done"],
        }],
    });
    [
        pod_manifest("ticker", namespace, node, ticker).to_string(),
        pod_manifest("echo", namespace, node, echo).to_string(),
    ]
    .join("\n---\n")
}

#[tokio::test]
async fn cluster_attach_streams_new_output_and_stdin_over_spdy_and_kubectls_default() {
    let Some(mut cluster) = Cluster::new("cluster_attach").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&pods(&namespace, &node)).await;
    for pod in ["ticker", "echo"] {
        cluster
            .wait_for_pod(pod, "Running", |pod| pod["status"]["phase"] == "Running")
            .await;
    }
    let ns = namespace.as_str();
    for websockets in ["false", "true"] {
        let shown = format!("KUBECTL_REMOTE_COMMAND_WEBSOCKETS={websockets}");
        let before = cluster
            .wait_until(SOON, "ticks in the log", || async {
                let (ok, log, _) = cluster.try_kubectl(&["logs", "ticker", "-n", ns]).await;
                ok.then(|| log.lines().last().map(tick)).flatten()
            })
            .await;
        let mut attached = Attached::start(&cluster, websockets, &["ticker", "-n", ns], None).await;
        for _ in 0..3 {
            let line = attached.line().await;
            assert!(
                tick(&line) > before,
                "{shown}: {line} was printed before the attach ({before})"
            );
        }
        attached.stop().await;

        let input = format!("hi-{websockets}\n");
        let args = ["-i", "echo", "-n", ns];
        let mut attached =
            Attached::start(&cluster, websockets, &args, Some(input.as_bytes())).await;
        attached.until(&format!("got:hi-{websockets}")).await;
        attached.stop().await;

        // Input to a container without stdin is dropped, as the CRI leaves it unwired.
        let args = ["-i", "ticker", "-n", ns];
        let mut attached = Attached::start(&cluster, websockets, &args, Some(b"x\n")).await;
        tick(&attached.line().await);
        attached.stop().await;
    }
    // kubectl's default reached systemk as a WebSocket (GET), SPDY as POST; both upgraded.
    let log = cluster.log();
    for method in ["\"GET\"", "\"POST\""] {
        assert!(
            log.lines()
                .any(|l| l.contains(method) && l.contains("/attach/") && l.contains("101")),
            "no {method} attach upgraded"
        );
    }

    // The FIFO is root's alone; the container's stdin outlives systemk: the same shell
    // reads what an attach writes after a restart.
    let unit = cluster.unit("echo", "main");
    let fifo = cluster.runtime_dir().join("stdin").join(unit.as_str());
    let metadata = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(metadata.file_type().is_fifo(), "{}", fifo.display());
    assert_eq!(
        (metadata.uid(), metadata.permissions().mode() & 0o777),
        (0, 0o600)
    );
    let pid = cluster.unit_status(&unit).await.main_pid;
    cluster.kill_agent().await;
    cluster.start_agent().await;
    let input = b"again\n";
    let args = ["-i", "echo", "-n", ns];
    let attached = cluster
        .wait_until(SOON, "the restarted agent to attach", || async {
            let mut attached = Attached::start(&cluster, "true", &args, Some(input)).await;
            let line =
                tokio::time::timeout(Duration::from_secs(5), attached.lines.next_line()).await;
            matches!(line, Ok(Ok(Some(ref l))) if l == "got:again").then_some(attached)
        })
        .await;
    attached.stop().await;
    assert_eq!(
        cluster.unit_status(&unit).await.main_pid,
        pid,
        "the same shell read it"
    );
    cluster.teardown().await;
}

/// `systemctl show -p <property> --value <unit>`.
async fn show(unit: &str, property: &str) -> String {
    let output = Command::new("systemctl")
        .args(["show", "-p", property, "--value", unit])
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn cluster_attach_is_authorized_and_its_socket_never_starts_the_container() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(mut cluster) = Cluster::new("cluster_attach_auth").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let spec = json!({
        "restartPolicy": "Never",
        "containers": [{
            "name": "main", "image": "/bin/sh", "stdin": true,
            "args": ["-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done"],
        }],
    });
    cluster
        .apply(&pod_manifest("once", &namespace, &node, spec).to_string())
        .await;
    let once = cluster
        .wait_for_pod("once", "Running", |pod| pod["status"]["phase"] == "Running")
        .await;
    let uid = once["metadata"]["uid"].as_str().unwrap().to_owned();

    // The kubelet's mapping: attach is `nodes/proxy`, POST is `create`.
    cluster.server.grant("alice", "create", "nodes", "proxy");
    cluster.server.grant("carol", "get", "nodes", "proxy");
    let path = format!("attach/{namespace}/once/main?input=1&output=1");
    let protocol = "v4.channel.k8s.io";
    assert_eq!(spdy_upgrade(&cluster, None, &path, protocol).await.0, 401);
    let (status, body) = spdy_upgrade(&cluster, Some("carol"), &path, protocol).await;
    assert_eq!(status, 403, "get is not create: {body}");
    assert!(
        body.contains("user=carol, verb=create, resource=nodes, subresource=proxy"),
        "{body}"
    );
    let (status, body) = spdy_upgrade(&cluster, Some("alice"), &path, protocol).await;
    assert_eq!(status, 101, "{body}");
    // The terminal is the container's setting, not the request's, as `GetAttach` takes it.
    let tty = format!("attach/{namespace}/once/main?output=1&tty=1");
    let (status, body) = spdy_upgrade(&cluster, Some("alice"), &tty, protocol).await;
    assert_eq!(status, 101, "{body}");
    let absent = format!("attach/{namespace}/absent/main?output=1");
    let (status, body) = spdy_upgrade(&cluster, Some("alice"), &absent, protocol).await;
    assert_eq!((status, body.as_str()), (404, "pod does not exist"));
    // The path may name the pod's UID too; another pod's UID is the kubelet's 404.
    let named = format!("attach/{namespace}/once/{uid}/main?output=1");
    let (status, body) = spdy_upgrade(&cluster, Some("alice"), &named, protocol).await;
    assert_eq!(status, 101, "{body}");
    let other =
        format!("attach/{namespace}/once/0b0e6a5c-52d5-4c1e-9d9e-000000000000/main?output=1");
    let (status, body) = spdy_upgrade(&cluster, Some("alice"), &other, protocol).await;
    assert_eq!((status, body.as_str()), (404, "pod not found"));

    // The socket unit holds the FIFO; the container exits leaving input unread.
    let unit = cluster.unit("once", "main");
    let socket = unit.as_str().replace(".service", ".socket");
    assert_eq!(show(&socket, "ActiveState").await, "active");
    let fifo = cluster.runtime_dir().join("stdin").join(unit.as_str());
    let mut writer = tokio::net::unix::pipe::OpenOptions::new()
        .open_sender(&fifo)
        .unwrap();
    writer.write_all(b"never read\n").await.unwrap();
    let invocation = cluster.unit_status(&unit).await.invocation_id;
    let pid = cluster.unit_status(&unit).await.main_pid;
    let (touched, _, stderr) = in_mount_namespace(pid, &["touch", "/tmp/go"]).await;
    assert!(touched, "{stderr}");
    cluster
        .wait_for_pod("once", "Succeeded", |pod| {
            pod["status"]["phase"] == "Succeeded"
        })
        .await;
    // The service stays active (exited), so the socket runs and watches nothing: the
    // unread input cannot start the container again.
    assert_eq!(show(&socket, "SubState").await, "running");
    let status = cluster.unit_status(&unit).await;
    assert_eq!((status.invocation_id, status.main_pid), (invocation, 0));
    let (status, body) = spdy_upgrade(&cluster, Some("alice"), &path, protocol).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            format!("container main not found in pod once_{namespace}").as_str()
        )
    );
    drop(writer);

    // Deleting the pod stops the socket, removes the FIFO and the socket's file.
    cluster
        .kubectl(&["delete", "pod", "once", "-n", &namespace, "--wait=false"])
        .await;
    let socket_file = std::path::Path::new(UNIT_DIR).join(&socket);
    cluster
        .wait_until(SOON, "the socket to go with its pod", || async {
            (!socket_file.exists() && !fifo.exists()).then_some(())
        })
        .await;
    cluster.teardown().await;
}
