//! What the pod layer counts for `/metrics`: how long reconcile passes take and why they
//! fail (D-Bus failures show as `SystemdError`/`SystemdUnavailable`), how long image
//! installs take and why they fail; and for `/metrics/probes` the kubelet's
//! `prober_probe_total` (pkg/kubelet/prober: labels `probe_type`, `result` =
//! `successful`/`failed`/`unknown`, `container`, `pod`, `namespace`, `pod_uid`; a
//! container's series go when its probes stop, as the kubelet deletes them). The handles
//! share their values with their clones; `main` registers them in its registries
//! ([`PodMetrics::register`], [`PodMetrics::register_probes`]), the layer only records.
//! No global state. Layer 4.

use k8s_openapi::api::core::v1::Pod;
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

/// A failed pass: what it did and why it failed (the error's reason: `SystemdError`,
/// `SystemdUnavailable` for D-Bus failures, `ErrImagePull`…).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PassFailureLabels {
    /// `reconcile`, `terminate` or `cleanup`.
    pub pass: &'static str,
    /// The error's reason.
    pub reason: &'static str,
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

/// One probe's series: `prober_probe_total`'s labels, in the name order client_golang
/// writes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProbeLabels {
    /// The container.
    pub container: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// `Liveness`, `Readiness` or `Startup`.
    pub probe_type: &'static str,
    /// `successful` or `failed` (systemk has no `unknown` result).
    pub result: &'static str,
}

/// Counts the attempts of one probe of one container.
#[derive(Debug, Clone)]
pub struct ProbeCounter {
    family: Family<ProbeLabels, Counter>,
    labels: ProbeLabels,
}

impl ProbeCounter {
    /// Counts one attempt; a warning passed.
    pub fn count(&self, passed: bool) {
        let mut labels = self.labels.clone();
        labels.result = if passed { "successful" } else { "failed" };
        self.family.get_or_create(&labels).inc();
    }

    /// Drops the probe's series: its container is no longer probed.
    pub fn forget(&self) {
        for result in ["successful", "failed"] {
            let mut labels = self.labels.clone();
            labels.result = result;
            self.family.remove(&labels);
        }
    }
}

/// The pod layer's metrics.
#[derive(Debug, Clone)]
pub struct PodMetrics {
    /// Seconds per reconcile pass.
    pub passes: Family<PassLabels, Histogram, Buckets>,
    /// Failed passes by reason.
    pub pass_failures: Family<PassFailureLabels, Counter>,
    /// Seconds per image install (a package install, or the check that it is there).
    pub installs: Family<InstallLabels, Histogram, Buckets>,
    /// Failed image installs by reason.
    pub install_failures: Family<FailureLabels, Counter>,
    /// Probe attempts by result.
    pub probes: Family<ProbeLabels, Counter>,
}

impl Default for PodMetrics {
    fn default() -> Self {
        Self {
            passes: Family::new_with_constructor(Buckets),
            pass_failures: Family::default(),
            installs: Family::new_with_constructor(Buckets),
            install_failures: Family::default(),
            probes: Family::default(),
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
            "systemk_reconcile_pass_failures",
            "Failed reconcile passes, by pass and the error's reason",
            self.pass_failures.clone(),
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

    /// Registers `prober_probe_total`, the kubelet's name and help (with component-base's
    /// stability mark; the crate ends help with the period).
    pub fn register_probes(&self, registry: &mut Registry) {
        registry.register(
            "prober_probe",
            "[BETA] Cumulative number of a liveness, readiness or startup probe for a container by result",
            self.probes.clone(),
        );
    }

    /// The counter of the `probe_type` probe of `container` in `pod`.
    pub fn probe_counter(
        &self,
        probe_type: &'static str,
        pod: &Pod,
        container: &str,
    ) -> ProbeCounter {
        let meta = &pod.metadata;
        ProbeCounter {
            family: self.probes.clone(),
            labels: ProbeLabels {
                container: container.to_owned(),
                namespace: meta.namespace.clone().unwrap_or_default(),
                pod: meta.name.clone().unwrap_or_default(),
                pod_uid: meta.uid.clone().unwrap_or_default(),
                probe_type,
                result: "successful",
            },
        }
    }

    /// Records a pass of kind `pass` that took `seconds` and failed with `failure`'s
    /// reason, if it failed.
    pub fn pass(&self, pass: &'static str, failure: Option<&'static str>, seconds: f64) {
        let result = if failure.is_some() { "error" } else { "ok" };
        self.passes
            .get_or_create(&PassLabels { pass, result })
            .observe(seconds);
        if let Some(reason) = failure {
            self.pass_failures
                .get_or_create(&PassFailureLabels { pass, reason })
                .inc();
        }
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
        metrics.pass("reconcile", None, 0.02);
        metrics.pass("cleanup", Some("SystemdUnavailable"), 0.5);
        metrics.install(Some("ErrImagePull"), 3.0);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"}
        }))
        .unwrap();
        let mut probes = Registry::default();
        metrics.register_probes(&mut probes);
        let counter = metrics.probe_counter("Liveness", &pod, "app");
        counter.count(true);
        counter.count(false);
        counter.count(true);
        let mut probe_text = String::new();
        encode(&mut probe_text, &probes).unwrap();
        let mut lines: Vec<&str> = probe_text.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "# HELP prober_probe_total [BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.",
                "# TYPE prober_probe_total counter",
                "prober_probe_total{container=\"app\",namespace=\"shop\",pod=\"web\",pod_uid=\"u1\",probe_type=\"Liveness\",result=\"failed\"} 1",
                "prober_probe_total{container=\"app\",namespace=\"shop\",pod=\"web\",pod_uid=\"u1\",probe_type=\"Liveness\",result=\"successful\"} 2",
            ]
        );
        counter.forget();
        probe_text.clear();
        encode(&mut probe_text, &probes).unwrap();
        assert!(!probe_text.contains("container=\"app\""), "{probe_text}");
        for line in [
            "# TYPE systemk_reconcile_pass_duration_seconds histogram",
            "systemk_reconcile_pass_duration_seconds_count{pass=\"reconcile\",result=\"ok\"} 1",
            "systemk_image_install_duration_seconds_count{result=\"error\"} 1",
            "systemk_image_install_failures_total{reason=\"ErrImagePull\"} 1",
            "systemk_reconcile_pass_failures_total{pass=\"cleanup\",reason=\"SystemdUnavailable\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
