//! What `kubectl top` and metrics-server read: `/stats/summary` ([`summary`]) and
//! `/metrics/resource` ([`resource`]), both from one reading of the node, its running
//! containers' cgroups and its pods' slices ([`collect`], [`host`]). Both pass the
//! authorization every kubelet API request passes (`nodes/stats`, `nodes/metrics`).
//! Reads only. Layer 6.

mod collect;
pub mod host;
pub mod resource;
pub mod summary;

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State as Shared};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::State;
use super::error::Error;
pub use summary::CpuRates;

/// `GET /stats/summary[?only_cpu_and_memory=true]`.
pub async fn stats_summary(Shared(state): Shared<Arc<State>>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default();
    match read(&state, only_cpu_and_memory(query)).await {
        Ok(summary) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&summary).unwrap_or_default(),
        )
            .into_response(),
        Err(err) => super::handlers::error_response(&err),
    }
}

/// `GET /metrics/resource`: a failed reading still answers 200, with the scrape error
/// gauges at 1, as the kubelet's collector does.
pub async fn metrics_resource(Shared(state): Shared<Arc<State>>) -> Response {
    let summary = read(&state, true).await;
    if let Err(err) = &summary {
        tracing::warn!(error = %crate::error_chain::Chain(err), "cannot read resource metrics");
    }
    (
        [(header::CONTENT_TYPE, resource::CONTENT_TYPE)],
        resource::render(summary.as_ref().ok()),
    )
        .into_response()
}

/// The kubelet's rule: exactly one `only_cpu_and_memory` parameter, and it is `true`.
fn only_cpu_and_memory(query: &str) -> bool {
    let values: Vec<_> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "only_cpu_and_memory")
        .map(|(_, value)| value)
        .collect();
    matches!(values.as_slice(), [value] if value == "true")
}

async fn read(state: &Arc<State>, only_cpu_and_memory: bool) -> Result<summary::Summary, Error> {
    let units = super::handlers::managed_units(state).await?;
    let shared = state.clone();
    let now = crate::clock::now();
    tokio::task::spawn_blocking(move || {
        let sample = collect::sample(
            &shared.node_name,
            now,
            &units,
            &shared.dirs,
            &shared.cgroups,
        );
        let mut rates = lock(&shared.cpu_rates);
        summary::build(&sample, &mut rates, only_cpu_and_memory)
    })
    .await
    .map_err(|err| Error::Local {
        action: "read the node's resource usage",
        message: err.to_string(),
    })
}

fn lock(rates: &Mutex<CpuRates>) -> std::sync::MutexGuard<'_, CpuRates> {
    // The table is only a cache of previous readings: a panic mid-update loses one rate.
    rates.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_cpu_and_memory_is_one_true_parameter() {
        for (query, expected) in [
            ("only_cpu_and_memory=true", true),
            ("a=b&only_cpu_and_memory=tru%65", true),
            ("only_cpu_and_memory=1", false),
            ("only_cpu_and_memory=true&only_cpu_and_memory=true", false),
            ("", false),
        ] {
            assert_eq!(super::only_cpu_and_memory(query), expected, "{query}");
        }
    }
}
