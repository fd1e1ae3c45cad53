//! Issue 14, point 1, end to end: systemk's pod status is one the API server's validation
//! accepts on a node whose internal and external addresses differ (one IP per family),
//! goes out as a strategic merge patch that keeps conditions other writers set, and
//! honours readiness gates — against the test API server (which validates pod status as
//! kube-apiserver does), with the real kubectl writing the other writers' conditions.

use serde_json::{Value, json};

use crate::cluster::harness::{Cluster, condition, pod_manifest};

/// The gate the test's pod waits for.
const GATE: &str = "example.com/load-balancer";

fn reason<'a>(pod: &'a Value, type_: &str) -> Option<&'a str> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["reason"]
        .as_str()
}

/// Writes `condition` into the pod's status as a controller does: a strategic merge patch
/// of the status subresource, merged by type.
async fn set_condition(cluster: &Cluster, pod: &str, condition: Value) {
    let patch = json!({"status": {"conditions": [condition]}}).to_string();
    cluster
        .kubectl(&[
            "patch",
            "pod",
            pod,
            "-n",
            cluster.namespace(),
            "--subresource=status",
            "--type=strategic",
            "-p",
            &patch,
        ])
        .await;
}

#[tokio::test]
async fn issue_14_status_is_accepted_keeps_other_conditions_and_honours_readiness_gates() {
    let Some(mut cluster) = Cluster::new("cluster_status").await else {
        return;
    };
    // Internal 127.0.0.1 (the harness' --node-ip) and an external address of the same
    // family: the API accepts only one of them in podIPs/hostIPs.
    cluster.add_agent_args(&["--node-external-ip", "203.0.113.5"]);
    cluster.start_agent().await;
    let spec = json!({
        "automountServiceAccountToken": false,
        "readinessGates": [{"conditionType": GATE}],
        "containers": [{"name": "main", "image": "/bin/sleep", "args": ["infinity"]}],
    });
    let manifest = pod_manifest("gated", cluster.namespace(), cluster.node(), spec);
    cluster.apply(&manifest.to_string()).await;

    let pod = cluster
        .wait_for_pod("gated", "running, held back by its gate", |pod| {
            pod["status"]["phase"] == "Running"
                && condition(pod, "ContainersReady") == Some("True")
                && reason(pod, "Ready") == Some("ReadinessGatesNotReady")
        })
        .await;
    let status = &pod["status"];
    assert_eq!(status["podIP"], "127.0.0.1");
    assert_eq!(status["podIPs"], json!([{"ip": "127.0.0.1"}]));
    assert_eq!(status["hostIP"], "127.0.0.1");
    assert_eq!(status["hostIPs"], json!([{"ip": "127.0.0.1"}]));
    assert_eq!(condition(&pod, "Ready"), Some("False"));
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(
        ready["message"],
        format!("corresponding condition of pod readiness gate \"{GATE}\" does not exist.")
    );
    // The node keeps both of its addresses.
    let node = cluster.get(&["node", cluster.node()]).await.unwrap();
    let addresses: Vec<(&str, &str)> = node["status"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["type"].as_str().unwrap(), a["address"].as_str().unwrap()))
        .collect();
    assert!(
        addresses.contains(&("InternalIP", "127.0.0.1")),
        "{addresses:?}"
    );
    assert!(
        addresses.contains(&("ExternalIP", "203.0.113.5")),
        "{addresses:?}"
    );

    // Another writer's condition, then the gate closed and opened by "the load balancer".
    set_condition(
        &cluster,
        "gated",
        json!({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}),
    )
    .await;
    set_condition(&cluster, "gated", json!({"type": GATE, "status": "False"})).await;
    cluster
        .wait_for_pod("gated", "Ready held back by a False gate", |pod| {
            let message = pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .and_then(|c| c["message"].as_str())
                .unwrap_or_default()
                .to_owned();
            message.ends_with("is not \"True\", but False")
        })
        .await;
    set_condition(&cluster, "gated", json!({"type": GATE, "status": "True"})).await;
    let pod = cluster
        .wait_for_pod("gated", "Ready once its gate is True", |pod| {
            condition(pod, "Ready") == Some("True")
        })
        .await;
    // systemk's updates since kept what it does not own.
    assert_eq!(condition(&pod, "DisruptionTarget"), Some("True"), "{pod:#}");
    assert_eq!(condition(&pod, GATE), Some("True"), "{pod:#}");
    assert_eq!(reason(&pod, "Ready"), None, "{pod:#}");
    assert!(
        !cluster.log().contains("may specify no more than one IP"),
        "a status was refused:\n{}",
        cluster.log()
    );
    cluster.teardown().await;
}
