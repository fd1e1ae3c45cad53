//! `kubectl top`'s sources end to end: the real `systemk` agent, a node of the test API
//! server, runs a pod that burns a little CPU and writes into its emptyDir; over HTTPS a
//! user granted `nodes/metrics` and `nodes/stats` reads `/metrics/resource` (the series
//! metrics-server needs, with timestamps and values above zero: metrics-server drops a pod
//! with a zero) and `/stats/summary` (the pod, its container, its emptyDir's use, node
//! file systems and network, a CPU rate from the second reading on); users without those
//! subresources are refused by SubjectAccessReview; systemk's own `/metrics` counts the
//! pod, its pass and its image install, `/metrics/probes` its readiness probe; and the
//! real `kubectl get --raw` reads the metrics through the API server's `nodes/proxy`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster::harness::{Cluster, pod_manifest};
use crate::kubelet_api::Kubelet;

/// How soon the pod runs and its figures show.
const START: Duration = Duration::from_secs(30);

fn burner(namespace: &str, node: &str) -> String {
    let spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 2,
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [{
            "name": "app",
            "image": "/bin/sh",
            // A fraction of a second of CPU, then idle: the machine is shared.
            "args": ["-c", "head -c 65536 /dev/zero > /var/tmp/scratch/file; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep infinity"],
            "volumeMounts": [{"name": "scratch", "mountPath": "/var/tmp/scratch"}],
            "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
        }],
    });
    pod_manifest("burner", namespace, node, spec).to_string()
}

/// The value and timestamp of the series `name{labels}` of a text exposition.
fn series(text: &str, name_and_labels: &str) -> Option<(f64, Option<i64>)> {
    let line = text.lines().find(|line| {
        line.starts_with(name_and_labels) && line[name_and_labels.len()..].starts_with(' ')
    })?;
    let mut fields = line[name_and_labels.len()..].split_whitespace();
    let value = fields.next()?.parse().ok()?;
    Some((value, fields.next().and_then(|t| t.parse().ok())))
}

#[tokio::test]
async fn kubectl_top_sources_show_a_running_pod_to_authorized_users_only() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(mut cluster) = Cluster::new("kubelet_api_stats").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&burner(&namespace, &node)).await;
    cluster
        .wait_for_pod("burner", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;

    let pem = std::fs::read(cluster.state_dir().join("pki/kubelet.crt")).unwrap();
    let kubelet = Kubelet {
        port: cluster.kubelet_port(),
        server_cert: reqwest::Certificate::from_pem(&pem).unwrap(),
        host: node.clone(),
    };
    let user = |name: &str| {
        let (cert, key) = cluster.server.issue_client_cert(name, &["dev"]);
        kubelet.client(Some(
            reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap(),
        ))
    };
    cluster.server.grant("alice", "get", "nodes", "metrics");
    cluster.server.grant("alice", "get", "nodes", "stats");
    let alice = user("alice");

    let container = format!(
        "container_cpu_usage_seconds_total{{container=\"app\",namespace=\"{namespace}\",pod=\"burner\"}}"
    );
    let metrics = cluster
        .wait_until(
            START,
            "the container's CPU in /metrics/resource",
            || async {
                let (status, text) = kubelet.get(&alice, "/metrics/resource").await;
                assert_eq!(status, StatusCode::OK, "{text}");
                series(&text, &container)
                    .is_some_and(|(cpu, _)| cpu > 0.0)
                    .then_some(text)
            },
        )
        .await;
    let memory = container.replace("cpu_usage_seconds_total", "memory_working_set_bytes");
    let start = container.replace("cpu_usage_seconds_total", "start_time_seconds");
    let pod = format!("pod_cpu_usage_seconds_total{{namespace=\"{namespace}\",pod=\"burner\"}}");
    for name in [
        container.as_str(),
        &memory,
        "node_cpu_usage_seconds_total",
        "node_memory_working_set_bytes",
        &pod,
    ] {
        let (value, at) = series(&metrics, name).unwrap_or_else(|| panic!("{name} in\n{metrics}"));
        assert!(
            value > 0.0 && at.is_some_and(|ms| ms > 1_700_000_000_000),
            "{name}: {value} {at:?}"
        );
    }
    let (started, at) = series(&metrics, &start).unwrap();
    assert!(started > 1.7e9 && at.is_none(), "{started} {at:?}");
    assert_eq!(series(&metrics, "resource_scrape_error"), Some((0.0, None)));

    let summary = |body: String| -> Value { serde_json::from_str(&body).unwrap() };
    let read = || async {
        let (status, body) = kubelet.get(&alice, "/stats/summary").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        summary(body)
    };
    read().await;
    let second = read().await;
    assert_eq!(second["node"]["nodeName"], node.as_str());
    assert!(
        second["node"]["fs"]["capacityBytes"].as_u64() > Some(0),
        "{second}"
    );
    assert!(second["node"]["memory"]["workingSetBytes"].as_u64() > Some(0));
    let pod = second["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["name"] == "burner")
        .unwrap_or_else(|| panic!("burner in {second}"));
    assert_eq!(pod["podRef"]["namespace"], namespace.as_str());
    let app = &pod["containers"][0];
    assert_eq!(app["name"], "app");
    assert!(
        app["cpu"]["usageCoreNanoSeconds"].as_u64() > Some(0),
        "{pod}"
    );
    assert!(
        app["cpu"]["usageNanoCores"].is_u64(),
        "a rate from the second reading: {pod}"
    );
    assert!(app["memory"]["workingSetBytes"].as_u64() > Some(0), "{pod}");
    assert!(
        pod["network"]["interfaces"].is_array() || pod.get("network").is_some(),
        "{pod}"
    );
    let (status, body) = kubelet
        .get(&alice, "/stats/summary?only_cpu_and_memory=true")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(summary(body)["node"].get("fs").is_none());

    // systemk's own metrics, on the same authorization as the kubelet's `/metrics`.
    let (status, own) = kubelet.get(&alice, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{own}");
    for line in [
        "systemk_pods{phase=\"Running\"} 1",
        "systemk_containers{state=\"running\"} 1",
        "systemk_image_install_duration_seconds_count{result=\"ok\"} 1",
    ] {
        assert!(own.lines().any(|l| l == line), "{line} in\n{own}");
    }
    let passes = "systemk_reconcile_pass_duration_seconds_count{pass=\"reconcile\",result=\"ok\"}";
    assert!(series(&own, passes).is_some_and(|(n, _)| n >= 1.0), "{own}");
    // A new pod's units need no daemon-reload (systemd reads them when first started).
    assert_eq!(
        series(&own, "systemk_systemd_daemon_reloads_total").map(|(n, _)| n),
        Some(0.0),
        "{own}"
    );
    // Every request to the API server counts, by the API server's verb and resource.
    for counted in [
        "systemk_api_requests_total{verb=\"watch\",resource=\"pods\",code=\"200\"}",
        "systemk_api_requests_total{verb=\"patch\",resource=\"pods/status\",code=\"200\"}",
    ] {
        assert!(
            series(&own, counted).is_some_and(|(n, _)| n >= 1.0),
            "{counted} in\n{own}"
        );
    }

    // The kubelet's probe counter, on its own endpoint.
    let probe = format!(
        "prober_probe_total{{container=\"app\",namespace=\"{namespace}\",pod=\"burner\",pod_uid=\"{}\",probe_type=\"Readiness\",result=\"successful\"}}",
        pod["podRef"]["uid"].as_str().unwrap()
    );
    cluster
        .wait_until(START, "a counted readiness probe", || async {
            let (status, text) = kubelet.get(&alice, "/metrics/probes").await;
            assert_eq!(status, StatusCode::OK, "{text}");
            series(&text, &probe).filter(|(n, _)| *n >= 1.0)
        })
        .await;

    // Without `nodes/stats` or `nodes/metrics`: refused, whatever else is granted.
    cluster.server.grant("bob", "get", "nodes", "proxy");
    let bob = user("bob");
    for (path, subresource) in [
        ("/stats/summary", "stats"),
        ("/metrics/resource", "metrics"),
    ] {
        let (status, body) = kubelet.get(&bob, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(
            body.contains(&format!(
                "user=bob, verb=get, resource=nodes, subresource={subresource}"
            )),
            "{body}"
        );
    }

    // The real kubectl through the API server's nodes/proxy, as `kubectl get --raw` does.
    let raw = cluster
        .kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{node}/proxy/metrics/resource"),
        ])
        .await;
    assert!(series(&raw, &container).is_some(), "{raw}");
    cluster.teardown().await;
}
