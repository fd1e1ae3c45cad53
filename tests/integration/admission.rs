//! Issue 12, points 8 and 9, end to end against the test API server: pods bound to the
//! node that do not fit are refused as the kubelet refuses them (phase `Failed`, the
//! kubelet's reason, a message naming the conflict, a Warning event) and their units are
//! never written — a second pod on a running pod's port (the attack: taking over a port
//! on the shared host network), a pod asking for more cpu than the node has, a pod that
//! tolerates nothing on a node with a `NoExecute` taint, a node selector the node fails —
//! while pods that fit (including on an admin's label) run; and a pod past its
//! `activeDeadlineSeconds` fails with `DeadlineExceeded`, its containers stopped.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::harness::{Cluster, UNIT_DIR, pod_manifest};
use crate::support::free_port;
use systemk::systemd::ActiveState;

/// The toleration of the test node's `NoExecute` taint (and of systemk's own).
fn tolerations() -> Value {
    json!([
        {"key": "virtual-kubelet.io/provider", "operator": "Exists"},
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"},
    ])
}

/// A sleeping pod with `fields` in its spec, tolerating the node's taints unless
/// `fields` says otherwise.
fn sleeping(cluster: &Cluster, name: &str, container: Value, fields: Value) -> String {
    let mut main = json!({"name": "main", "image": "/bin/sleep", "args": ["infinity"]});
    for (key, value) in container.as_object().unwrap() {
        main[key] = value.clone();
    }
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "tolerations": tolerations(),
        "containers": [main],
    });
    for (key, value) in fields.as_object().unwrap() {
        spec[key] = value.clone();
    }
    pod_manifest(name, cluster.namespace(), cluster.node(), spec).to_string()
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

/// Waits until the pod is `Failed` with `reason`; returns its message.
async fn refused(cluster: &Cluster, name: &str, reason: &str) -> String {
    let pod = cluster
        .wait_for_pod(name, &format!("Failed with {reason}"), |pod| {
            phase(pod) == "Failed"
        })
        .await;
    assert_eq!(pod["status"]["reason"], reason, "{pod:#}");
    let unit = Path::new(UNIT_DIR).join(cluster.unit(name, "main").as_str());
    assert!(
        !unit.exists(),
        "{} was written for a refused pod",
        unit.display()
    );
    pod["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn issue_12_pods_that_do_not_fit_are_refused_as_the_kubelet_refuses_them() {
    let Some(mut cluster) = Cluster::new("admission").await else {
        return;
    };
    // The Node exists before systemk registers: an admin's label and NoExecute taint,
    // which systemk keeps and admission honours.
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": cluster.node(), "labels": {"example.com/zone": "a"}},
        "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]},
    });
    cluster.apply(&node.to_string()).await;
    cluster.start_agent().await;
    let port = i64::from(free_port());

    let holder = sleeping(
        &cluster,
        "holder",
        json!({"ports": [{"containerPort": port}]}),
        json!({}),
    );
    cluster.apply(&holder).await;
    let running = cluster
        .wait_for_pod("holder", "running", |pod| phase(pod) == "Running")
        .await;

    // The attack: the same port as the running pod, as a containerPort and as a hostPort.
    let clash = sleeping(
        &cluster,
        "clash",
        json!({"ports": [{"containerPort": port}]}),
        json!({}),
    );
    cluster.apply(&clash).await;
    let message = refused(&cluster, "clash", "NodePorts").await;
    assert!(
        message.starts_with(
            "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
        ),
        "{message}"
    );
    let holder_name = format!("{}/holder", cluster.namespace());
    assert!(message.contains(&holder_name), "{message}");
    assert!(message.contains(&format!("TCP port {port}")), "{message}");
    let host_port = sleeping(
        &cluster,
        "host-port",
        json!({"ports": [{"containerPort": 1, "hostPort": port}]}),
        json!({}),
    );
    cluster.apply(&host_port).await;
    refused(&cluster, "host-port", "NodePorts").await;

    // A static pod on the same port: static pods skip only the taint check. Its mirror
    // pod shows the refusal.
    let static_clash = sleeping(
        &cluster,
        "static-clash",
        json!({"ports": [{"containerPort": port}]}),
        json!({}),
    );
    std::fs::write(cluster.manifests().join("static-clash.yaml"), static_clash).unwrap();
    let mirror = format!("static-clash-{}", cluster.node());
    let pod = cluster
        .wait_for_pod(&mirror, "mirrored, Failed", |pod| phase(pod) == "Failed")
        .await;
    assert_eq!(pod["status"]["reason"], "NodePorts", "{pod:#}");
    let written: Vec<String> = std::fs::read_dir(UNIT_DIR)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("static-clash"))
        .collect();
    assert!(
        written.is_empty(),
        "units of a refused static pod: {written:?}"
    );

    // Far more cpu than the node has.
    let huge = sleeping(
        &cluster,
        "huge",
        json!({"resources": {"requests": {"cpu": "100000", "memory": "1Mi"}}}),
        json!({}),
    );
    cluster.apply(&huge).await;
    let message = refused(&cluster, "huge", "OutOfcpu").await;
    assert!(
        message.starts_with(
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 100000000"
        ),
        "{message}"
    );

    // Tolerating nothing on a node with a NoExecute taint.
    let intolerant = sleeping(
        &cluster,
        "intolerant",
        json!({}),
        json!({"tolerations": []}),
    );
    cluster.apply(&intolerant).await;
    let message = refused(&cluster, "intolerant", "TaintToleration").await;
    assert!(message.contains("dedicated=db:NoExecute"), "{message}");

    // A node selector the node fails; one naming the admin's label runs.
    let elsewhere = sleeping(
        &cluster,
        "elsewhere",
        json!({}),
        json!({"nodeSelector": {"example.com/zone": "b"}}),
    );
    cluster.apply(&elsewhere).await;
    refused(&cluster, "elsewhere", "NodeAffinity").await;
    let here = sleeping(
        &cluster,
        "here",
        json!({}),
        json!({"nodeSelector": {"example.com/zone": "a"}}),
    );
    cluster.apply(&here).await;
    cluster
        .wait_for_pod("here", "running on the admin's label", |pod| {
            phase(pod) == "Running"
        })
        .await;

    // Each refusal is an event with the kubelet's reason.
    let events = cluster
        .kubectl(&["get", "events", "-n", cluster.namespace(), "-o", "json"])
        .await;
    let events: Value = serde_json::from_str(&events).unwrap();
    let reasons: Vec<(&str, &str, &str)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["involvedObject"]["name"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
                e["type"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for (pod, reason) in [
        ("clash", "NodePorts"),
        ("host-port", "NodePorts"),
        ("huge", "OutOfcpu"),
        ("intolerant", "TaintToleration"),
        ("elsewhere", "NodeAffinity"),
    ] {
        assert!(
            reasons.contains(&(pod, reason, "Warning")),
            "no {reason} event for {pod}: {reasons:?}"
        );
    }
    // The pod holding the port never noticed.
    let holder_now = cluster.pod("holder").await.unwrap();
    assert_eq!(phase(&holder_now), "Running");
    assert_eq!(
        holder_now["status"]["containerStatuses"][0]["containerID"],
        running["status"]["containerStatuses"][0]["containerID"]
    );
    cluster.teardown().await;
}

#[tokio::test]
async fn issue_12_a_pod_past_its_active_deadline_fails_and_is_stopped() {
    let Some(mut cluster) = Cluster::new("deadline").await else {
        return;
    };
    cluster.start_agent().await;
    let pod = sleeping(
        &cluster,
        "bounded",
        json!({}),
        json!({"activeDeadlineSeconds": 3, "restartPolicy": "Always"}),
    );
    cluster.apply(&pod).await;
    cluster
        .wait_for_pod("bounded", "running", |pod| phase(pod) == "Running")
        .await;
    let pod = cluster
        .wait_for_pod_within(
            "bounded",
            "failed past its deadline",
            Duration::from_secs(30),
            |pod| phase(pod) == "Failed",
        )
        .await;
    assert_eq!(pod["status"]["reason"], "DeadlineExceeded", "{pod:#}");
    assert_eq!(
        pod["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    let unit = cluster.unit("bounded", "main");
    let status = cluster.unit_status(&unit).await;
    assert!(
        matches!(
            status.active_state,
            ActiveState::Inactive | ActiveState::Failed
        ),
        "{status:?}"
    );
    let events = cluster
        .kubectl(&["get", "events", "-n", cluster.namespace()])
        .await;
    assert!(events.contains("DeadlineExceeded"), "{events}");
    // Only after its deadline, counted from its start time.
    let start: k8s_openapi::jiff::Timestamp = pod["status"]["startTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let finished: k8s_openapi::jiff::Timestamp =
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
            .as_str()
            .unwrap_or_else(|| panic!("not terminated: {pod:#}"))
            .parse()
            .unwrap();
    assert!(finished.duration_since(start).as_secs() >= 3, "{pod:#}");
    cluster.teardown().await;
}
