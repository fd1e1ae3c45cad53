//! The real `kubectl` (1.32: `$SYSTEMK_KUBECTL` or the first on `PATH`; each test is skipped,
//! loudly, without one) against the test API server: apply, get with selectors, describe,
//! delete, wait and watch, as the cluster tests and humans use them. Also the
//! `serve_until_killed` entry for manual use.

use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::TestApiServer;
use super::http_client::Client;

/// kubectl with its own kubeconfig, HOME and discovery cache.
pub(super) struct Kubectl {
    program: PathBuf,
    dir: TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// `None` when there is no kubectl: the skip of `test` is reported.
    pub(super) fn new(server: &TestApiServer, test: &str) -> Option<Self> {
        let program = crate::support::kubectl_or_skip(test)?;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path());
        Some(Self {
            program,
            dir,
            kubeconfig,
        })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        command
    }

    /// Runs kubectl to completion (bounded by 30 s) and returns its output.
    pub(super) async fn output(&self, args: &[&str]) -> Output {
        let run = self.command(args).output();
        tokio::time::timeout(std::time::Duration::from_secs(30), run)
            .await
            .expect("kubectl finished")
            .unwrap()
    }

    /// Runs kubectl, asserts success, returns stdout.
    pub(super) async fn run(&self, args: &[&str]) -> String {
        let output = self.output(args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Writes `manifest` to a file and returns its path.
    fn manifest(&self, name: &str, manifest: impl ToString) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, manifest.to_string()).unwrap();
        path.to_string_lossy().to_string()
    }
}

/// Serves until killed, for manual kubectl use:
/// `cargo test --test integration apiserver::kubectl_tests::serve_until_killed -- --ignored --nocapture`
/// prints the URL and a kubeconfig path.
#[tokio::test]
#[ignore = "serves until killed; for manual kubectl use"]
async fn serve_until_killed() {
    let (server, url) = TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    println!(
        "test API server at {url}\nexport KUBECONFIG={}",
        kubeconfig.display()
    );
    std::future::pending::<()>().await;
}

/// Reads lines of a running kubectl until one satisfies `done`, within a deadline.
async fn read_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: &mut Vec<String>,
    done: impl Fn(&str) -> bool,
) {
    let deadline = std::time::Duration::from_secs(10);
    tokio::time::timeout(deadline, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let finished = done(&line);
            seen.push(line);
            if finished {
                return;
            }
        }
        panic!("kubectl output ended before the expected line");
    })
    .await
    .unwrap_or_else(|_| panic!("expected line not seen within {deadline:?}; got {seen:?}"));
}

fn web_pod(image: &str, labels: Value, env: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "demo", "labels": labels},
        "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": image, "env": env}]},
    })
}

fn config_map(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "demo"}, "data": data})
}

/// A multi-document YAML file body (JSON documents are YAML).
fn documents(items: &[Value]) -> String {
    items
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test]
async fn kubectl_creates_applies_and_gets_with_selectors() {
    let (server, url) = TestApiServer::start().await;
    let Some(kubectl) = Kubectl::new(&server, "kubectl_creates_applies_and_gets_with_selectors")
    else {
        return;
    };
    assert_eq!(
        kubectl.run(&["create", "namespace", "demo"]).await.trim(),
        "namespace/demo created"
    );

    let first = kubectl.manifest(
        "v1.yaml",
        documents(&[
            web_pod(
                "uptimed",
                json!({"app": "x"}),
                json!([{"name": "A", "value": "1"}]),
            ),
            config_map(json!({"a": "1"})),
        ]),
    );
    let out = kubectl.run(&["apply", "-f", &first]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["pod/web created", "configmap/settings created"]
    );

    // A second field manager adds an env var; client-side apply's strategic merge keeps it.
    let client = Client::new(&url);
    let extra =
        json!({"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}]}});
    let (code, _) = client
        .patch(
            "/api/v1/namespaces/demo/pods/web",
            "application/strategic-merge-patch+json",
            &extra,
        )
        .await;
    assert_eq!(
        code, 422,
        "env is immutable on a running pod, as in kube-apiserver"
    );

    let second = kubectl.manifest(
        "v2.yaml",
        documents(&[
            web_pod(
                "uptimed=1:0.4.6-3",
                json!({"app": "x", "tier": "web"}),
                json!([{"name": "A", "value": "1"}]),
            ),
            config_map(json!({"a": "2", "b": "3"})),
        ]),
    );
    let out = kubectl.run(&["apply", "-f", &second]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["pod/web configured", "configmap/settings configured"]
    );

    let pod: Value = serde_json::from_str(
        &kubectl
            .run(&["get", "pod", "web", "-n", "demo", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(pod["spec"]["containers"][0]["image"], "uptimed=1:0.4.6-3");
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"app": "x", "tier": "web"})
    );
    assert_eq!(pod["metadata"]["generation"], 2);
    let settings: Value = serde_json::from_str(
        &kubectl
            .run(&["get", "configmap", "settings", "-n", "demo", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(settings["data"], json!({"a": "2", "b": "3"}));

    let other = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other", "namespace": "demo", "labels": {"app": "y"}},
        "spec": {"nodeName": "n2", "containers": [{"name": "main", "image": "uptimed"}]}});
    kubectl
        .run(&["apply", "-f", &kubectl.manifest("other.json", &other)])
        .await;
    let kubectl = &kubectl;
    let names = |args: &'static [&'static str]| async move {
        let mut full = vec!["get", "pods", "-n", "demo", "-o", "name"];
        full.extend_from_slice(args);
        kubectl
            .run(&full)
            .await
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&["--field-selector", "spec.nodeName=n1"]).await,
        ["pod/web"]
    );
    assert_eq!(names(&["-l", "app=y"]).await, ["pod/other"]);
    assert_eq!(
        names(&[
            "-l",
            "app in (x,y)",
            "--field-selector",
            "spec.nodeName!=n1"
        ])
        .await,
        ["pod/other"]
    );
    let all: Value =
        serde_json::from_str(&kubectl.run(&["get", "pods", "-A", "-o", "json"]).await).unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let bad = kubectl
        .output(&["get", "pods", "--field-selector", "spec.image=x"])
        .await;
    assert!(String::from_utf8_lossy(&bad.stderr).contains("field label not supported: spec.image"));
}

#[tokio::test]
async fn kubectl_describe_shows_the_pods_events() {
    let (server, url) = TestApiServer::start().await;
    let Some(kubectl) = Kubectl::new(&server, "kubectl_describe_shows_the_pods_events") else {
        return;
    };
    let client = Client::new(&url);
    let (_, pod) = client.post("/api/v1/namespaces/default/pods", &json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "uptimed"}]}})).await;
    // Written as kube-rs' Recorder writes it (events.k8s.io/v1), read by kubectl as core/v1.
    let event = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"generateName": "web."},
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web", "uid": pod["metadata"]["uid"], "apiVersion": "v1"},
        "action": "Install", "reason": "Installing", "note": "installing package uptimed", "type": "Normal",
        "reportingController": "systemk", "reportingInstance": "n1",
        "eventTime": "2026-01-01T00:00:00.000000Z",
    });
    assert_eq!(
        client
            .post("/apis/events.k8s.io/v1/namespaces/default/events", &event)
            .await
            .0,
        201
    );
    let out = kubectl.run(&["describe", "pod", "web"]).await;
    let events = out.split("Events:").nth(1).unwrap();
    assert!(
        events.contains("Installing")
            && events.contains("installing package uptimed")
            && events.contains("systemk"),
        "{out}"
    );
}

#[tokio::test]
async fn kubectl_delete_marks_a_bound_pod_and_wait_sees_it_go() {
    let (server, url) = TestApiServer::start().await;
    let Some(kubectl) = Kubectl::new(
        &server,
        "kubectl_delete_marks_a_bound_pod_and_wait_sees_it_go",
    ) else {
        return;
    };
    let client = Client::new(&url);
    client.post("/api/v1/namespaces/default/pods", &json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "uptimed"}]}})).await;
    assert_eq!(
        kubectl
            .run(&["delete", "pod", "web", "--wait=false"])
            .await
            .trim(),
        "pod \"web\" deleted"
    );
    let (code, marked) = client.get("/api/v1/namespaces/default/pods/web").await;
    assert_eq!(
        (
            code,
            marked["metadata"]["deletionGracePeriodSeconds"].as_i64()
        ),
        (200, Some(30))
    );
    assert!(marked["metadata"]["deletionTimestamp"].is_string());

    let wait = kubectl
        .command(&["wait", "--for=delete", "pod/web", "--timeout=10s"])
        .output();
    let waiting = tokio::spawn(wait);
    server.wait_for_watches(1).await;
    let uid = marked["metadata"]["uid"].clone();
    let (code, _) = client
        .delete(
            "/api/v1/namespaces/default/pods/web",
            Some(&json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})),
        )
        .await;
    assert_eq!(code, 200);
    let output = waiting.await.unwrap().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "pod/web condition met"
    );
}

#[tokio::test]
async fn kubectl_wait_for_ready_sees_a_status_patch() {
    let (server, url) = TestApiServer::start().await;
    let Some(kubectl) = Kubectl::new(&server, "kubectl_wait_for_ready_sees_a_status_patch") else {
        return;
    };
    let client = Client::new(&url);
    client.post("/api/v1/namespaces/default/pods", &json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "uptimed"}]}})).await;
    let waiting = tokio::spawn(
        kubectl
            .command(&["wait", "--for=condition=Ready", "pod/web", "--timeout=10s"])
            .output(),
    );
    server.wait_for_watches(1).await;
    let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    let (code, _) = client
        .patch(
            "/api/v1/namespaces/default/pods/web/status",
            "application/strategic-merge-patch+json",
            &ready,
        )
        .await;
    assert_eq!(code, 200);
    let output = waiting.await.unwrap().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "pod/web condition met"
    );
}

#[tokio::test]
async fn kubectl_get_watch_prints_table_rows_as_changes_happen() {
    let (server, url) = TestApiServer::start().await;
    let Some(kubectl) = Kubectl::new(
        &server,
        "kubectl_get_watch_prints_table_rows_as_changes_happen",
    ) else {
        return;
    };
    let client = Client::new(&url);
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "uptimed"}]}});
    client.post(pods, &pod).await;
    let mut child = kubectl
        .command(&["get", "pods", "--watch", "--request-timeout=20s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let mut seen = Vec::new();
    let columns = |line: &str| {
        line.split_whitespace()
            .take(4)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    read_until(&mut lines, &mut seen, |line| {
        columns(line) == ["web", "0/1", "Pending", "0"]
    })
    .await;
    server.wait_for_watches(1).await;
    let running = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "main", "ready": true, "restartCount": 1, "state": {"running": {}}}]}});
    client
        .patch(
            &format!("{pods}/web/status"),
            "application/merge-patch+json",
            &running,
        )
        .await;
    read_until(&mut lines, &mut seen, |line| {
        columns(line) == ["web", "1/1", "Running", "1"]
    })
    .await;
    client.delete(&format!("{pods}/web"), None).await;
    read_until(&mut lines, &mut seen, |line| {
        columns(line) == ["web", "1/1", "Terminating", "1"]
    })
    .await;
    child.kill().await.unwrap();
    assert_eq!(
        seen[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
}
