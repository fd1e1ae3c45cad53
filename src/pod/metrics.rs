//! What the pod layer counts for `/metrics`: how long reconcile passes take, how long
//! image installs take and why they fail. The handles share their values with their
//! clones; `main` registers them in its registry ([`PodMetrics::register`]), the layer only
//! records. No global state. Layer 4.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Histogram buckets in seconds: 5 ms doubling to about 82 s, from a pass that only reads
/// status to one that installs a package.
#[derive(Debug, Clone, Copy, Default)]
pub struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.005, 2.0, 15))
    }
}

/// A reconcile pass: what it did and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PassLabels {
    /// `reconcile`, `terminate` or `cleanup`.
    pub pass: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// An image install: how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct InstallLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Why an image install failed: the error's reason (`ErrImagePull`, `ImageNotFound`…).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FailureLabels {
    /// The error's reason.
    pub reason: &'static str,
}

/// The pod layer's metrics.
#[derive(Debug, Clone)]
pub struct PodMetrics {
    /// Seconds per reconcile pass.
    pub passes: Family<PassLabels, Histogram, Buckets>,
    /// Seconds per image install (a package install, or the check that it is there).
    pub installs: Family<InstallLabels, Histogram, Buckets>,
    /// Failed image installs by reason.
    pub install_failures: Family<FailureLabels, Counter>,
}

impl Default for PodMetrics {
    fn default() -> Self {
        Self {
            passes: Family::new_with_constructor(Buckets),
            installs: Family::new_with_constructor(Buckets),
            install_failures: Family::default(),
        }
    }
}

impl PodMetrics {
    /// Registers every metric under its `systemk_` name.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "systemk_reconcile_pass_duration_seconds",
            "Seconds a reconcile pass of one pod took, by pass and result",
            self.passes.clone(),
        );
        registry.register(
            "systemk_image_install_duration_seconds",
            "Seconds an image install took, by result",
            self.installs.clone(),
        );
        registry.register(
            "systemk_image_install_failures",
            "Failed image installs, by reason",
            self.install_failures.clone(),
        );
    }

    /// Records a pass of kind `pass` that took `seconds`.
    pub fn pass(&self, pass: &'static str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.passes
            .get_or_create(&PassLabels { pass, result })
            .observe(seconds);
    }

    /// Records an install that took `seconds`, failed with `reason` when it failed.
    pub fn install(&self, failure: Option<&'static str>, seconds: f64) {
        let result = if failure.is_some() { "error" } else { "ok" };
        self.installs
            .get_or_create(&InstallLabels { result })
            .observe(seconds);
        if let Some(reason) = failure {
            self.install_failures
                .get_or_create(&FailureLabels { reason })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::prometheus_text::encode;

    use super::*;

    #[test]
    fn passes_and_installs_are_counted_under_their_names() {
        let metrics = PodMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.pass("reconcile", true, 0.02);
        metrics.install(Some("ErrImagePull"), 3.0);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "# TYPE systemk_reconcile_pass_duration_seconds histogram",
            "systemk_reconcile_pass_duration_seconds_count{pass=\"reconcile\",result=\"ok\"} 1",
            "systemk_image_install_duration_seconds_count{result=\"error\"} 1",
            "systemk_image_install_failures_total{reason=\"ErrImagePull\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
