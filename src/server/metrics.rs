//! `/metrics`: systemk's own metrics in Prometheus text format, from the registry `main`
//! builds (reconcile passes, image installs, daemon-reloads: [`crate::pod::PodMetrics`],
//! [`crate::systemd::Systemd::daemon_reloads`]) plus [`PodGauges`], which this endpoint
//! sets from the pods systemk runs at each scrape; `/metrics/probes`: the kubelet's
//! `prober_probe_total`, from a registry of its own as the kubelet keeps one. Authorized
//! as `nodes/metrics`. Layer 6.

use std::sync::Arc;

use axum::extract::State as Shared;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text::{CONTENT_TYPE, encode};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::State;

/// A pod phase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: String,
}

/// A container state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabels {
    /// `waiting`, `running` or `terminated`.
    pub state: &'static str,
}

/// Gauges of the pods systemk runs, set at each scrape.
#[derive(Debug, Clone, Default)]
pub struct PodGauges {
    pods: Family<PhaseLabels, Gauge>,
    containers: Family<StateLabels, Gauge>,
    restarts: Gauge,
}

impl PodGauges {
    /// Registers the gauges under their `systemk_` names.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "systemk_pods",
            "Pods this node runs, by phase",
            self.pods.clone(),
        );
        registry.register(
            "systemk_containers",
            "Containers of the pods this node runs, by state",
            self.containers.clone(),
        );
        registry.register(
            "systemk_container_restarts",
            "Restarts of the containers of the pods this node runs, summed",
            self.restarts.clone(),
        );
    }

    /// Sets the gauges to what `pods` show; phases and states no pod has are dropped.
    fn set(&self, pods: &[Pod]) {
        self.pods.clear();
        self.containers.clear();
        let mut restarts = 0i64;
        for pod in pods {
            let status = pod.status.as_ref();
            let phase = status.and_then(|s| s.phase.clone());
            let phase = phase.unwrap_or_else(|| "Unknown".to_owned());
            self.pods.get_or_create(&PhaseLabels { phase }).inc();
            let statuses = status
                .into_iter()
                .flat_map(|s| [&s.init_container_statuses, &s.container_statuses])
                .flatten()
                .flatten();
            for container in statuses {
                restarts += i64::from(container.restart_count);
                let state = container.state.as_ref();
                let state = match state {
                    Some(s) if s.running.is_some() => "running",
                    Some(s) if s.terminated.is_some() => "terminated",
                    _ => "waiting",
                };
                self.containers.get_or_create(&StateLabels { state }).inc();
            }
        }
        self.restarts.set(restarts);
    }
}

/// The registries and the gauges `/metrics` sets.
pub struct OwnMetrics {
    /// Everything `/metrics` shows.
    pub registry: Arc<Registry>,
    /// What `/metrics/probes` shows.
    pub probes: Arc<Registry>,
    /// Set from the pods at each scrape.
    pub gauges: PodGauges,
}

/// `GET /metrics`.
pub async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    let Some(own) = state.own_metrics.get() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match super::handlers::list_pods(&state).await {
        Ok(pods) => own.gauges.set(&pods),
        Err(err) => {
            tracing::warn!(error = %crate::error_chain::Chain(&err), "/metrics: cannot read the pods")
        }
    }
    text(&own.registry)
}

/// `GET /metrics/probes`.
pub async fn probes(Shared(state): Shared<Arc<State>>) -> Response {
    match state.own_metrics.get() {
        Some(own) => text(&own.probes),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn text(registry: &Registry) -> Response {
    let mut text = String::new();
    if encode(&mut text, registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn gauges_follow_the_pods() {
        let gauges = PodGauges::default();
        let mut registry = Registry::default();
        gauges.register(&mut registry);
        let pod: Pod = serde_json::from_value(json!({"status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "image": "x", "imageID": "", "ready": true, "restartCount": 2,
                 "state": {"running": {}}},
                {"name": "b", "image": "x", "imageID": "", "ready": false, "restartCount": 1,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        }}))
        .unwrap();
        gauges.set(&[pod.clone(), pod]);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "systemk_pods{phase=\"Running\"} 2",
            "systemk_containers{state=\"running\"} 2",
            "systemk_containers{state=\"waiting\"} 2",
            "systemk_container_restarts 6",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        gauges.set(&[]);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(!text.contains("phase=\"Running\""), "{text}");
    }
}
