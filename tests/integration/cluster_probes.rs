//! Probes of an API pod (issue 12, point 1) against the test API server, with the real
//! kubectl: a failing readiness probe keeps `Ready` False and shows as `Unhealthy`
//! events carrying the probe's output; once it passes the pod is Ready; a failed
//! liveness probe is a `Killing` event and a counted restart.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::harness::{Cluster, condition, pod_manifest};

/// A liveness kill, the first restart back-off (10 s) and the new run.
const RESTART_DEADLINE: Duration = Duration::from_secs(90);

/// `(reason, message)` of the events about `pod`.
async fn events(cluster: &Cluster, pod: &str) -> Vec<(String, String)> {
    let selector = format!("involvedObject.name={pod}");
    let Some(list) = cluster
        .get(&[
            "events",
            "-n",
            cluster.namespace(),
            "--field-selector",
            &selector,
        ])
        .await
    else {
        return Vec::new();
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
            (text("reason"), text("message"))
        })
        .collect()
}

#[tokio::test]
async fn cluster_probes_readiness_and_liveness_speak_as_the_kubelet() {
    let Some(mut cluster) = Cluster::new("cluster_probes").await else {
        return;
    };
    cluster.start_agent().await;
    // Ready once /tmp/ready exists in the container's own /tmp; alive while it has not
    // made /tmp/stop.
    let spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 3,
        "containers": [{
            "name": "main", "image": "/bin/sh",
            "command": ["/bin/sh", "-c", "sleep 6; touch /tmp/ready; sleep 8; touch /tmp/stop; exec sleep 600"],
            "readinessProbe": {
                "exec": {"command": ["/bin/sh", "-c", "test -e /tmp/ready || { echo not yet; exit 1; }"]},
                "periodSeconds": 1,
            },
            "livenessProbe": {
                "exec": {"command": ["/bin/sh", "-c", "test ! -e /tmp/stop || { echo stop asked; exit 1; }"]},
                "periodSeconds": 1, "failureThreshold": 2,
            },
        }],
    });
    let manifest = pod_manifest("probed", cluster.namespace(), cluster.node(), spec);
    cluster.apply(&manifest.to_string()).await;

    let pod = cluster
        .wait_for_pod("probed", "running, not ready", |pod| {
            pod["status"]["phase"] == "Running" && condition(pod, "Ready") == Some("False")
        })
        .await;
    assert_eq!(condition(&pod, "ContainersReady"), Some("False"));
    cluster
        .wait_for_pod("probed", "ready", |pod| {
            condition(pod, "Ready") == Some("True")
        })
        .await;
    let unhealthy = events(&cluster, "probed").await;
    assert!(
        unhealthy
            .iter()
            .any(|(reason, message)| reason == "Unhealthy"
                && message.starts_with("Readiness probe failed: not yet")),
        "{unhealthy:?}"
    );

    let restarted = |pod: &Value| {
        pod["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .is_some_and(|count| count >= 1)
    };
    cluster
        .wait_for_pod_within(
            "probed",
            "restarted by its liveness probe",
            RESTART_DEADLINE,
            restarted,
        )
        .await;
    let told = events(&cluster, "probed").await;
    assert!(
        told.iter().any(|(reason, message)| reason == "Unhealthy"
            && message.starts_with("Liveness probe failed: stop asked")),
        "{told:?}"
    );
    assert!(
        told.iter().any(|(reason, message)| reason == "Killing"
            && message == "Container main failed liveness probe, will be restarted"),
        "{told:?}"
    );
    cluster.teardown().await;
}
