//! Monitoring: Prometheus (k3s/examples/prometheus.yaml runs it) and its node exporter.

use std::time::Duration;

use super::{Case, Probe, run_case};

#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn prometheus_node_exporter_serves_metrics() {
    run_case(Case::new(
        "suite_node_exporter",
        "prometheus-node-exporter",
        &[
            "prometheus-node-exporter",
            "prometheus-node-exporter-collectors",
        ],
        Probe::http(
            9100,
            b"GET /metrics HTTP/1.0\r\n\r\n",
            b"node_exporter_build_info",
        ),
    ))
    .await;
}

#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn prometheus_is_ready() {
    run_case(Case {
        probe_deadline: Duration::from_secs(60),
        ..Case::new(
            "suite_prometheus",
            "prometheus",
            &["prometheus"],
            Probe::http(
                9090,
                b"GET /-/ready HTTP/1.0\r\n\r\n",
                b"Prometheus Server is Ready",
            ),
        )
    })
    .await;
}
