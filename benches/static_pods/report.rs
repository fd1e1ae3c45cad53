//! The benchmark's figures: the printed table and the JSON file.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::api_path::ApiFigures;
use crate::cell::{ms, p50_p99};
use crate::crash::CrashFigures;
use crate::exec::ExecFigures;
use crate::scale::ScaleFigures;
use crate::single::SingleFigures;

/// Everything one run measured. Times in milliseconds.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Pods started.
    pub n: usize,
    /// N units written and all started (no daemon-reload), until the last is active.
    pub floor_ms: f64,
    /// First manifest renamed in until the last pod's container is active.
    pub systemk_ms: f64,
    /// `systemk_ms / floor_ms`.
    pub ratio: f64,
    /// Median of the per-pod times from manifest renamed in to container active.
    pub pod_p50_ms: f64,
    /// 99th percentile of the same.
    pub pod_p99_ms: f64,
    /// The slowest pod.
    pub pod_max_ms: f64,
    /// systemk's largest resident set while idle with N pods.
    pub idle_rss_kib: u64,
    /// systemk's CPU time while idle, percent of one CPU.
    pub idle_cpu_percent: f64,
    /// How long the idle window lasted, seconds.
    pub idle_seconds: u64,
    /// What N pods with a 1 s readiness probe each add to the idle CPU, percent of one
    /// CPU, over a window as long.
    pub probe_cpu_percent: f64,
    /// The floor under the exec half of those probes: their command run as often with
    /// nothing else, percent of one CPU.
    pub probe_exec_floor_cpu_percent: f64,
    /// CPUs of this machine.
    pub cpus: usize,
    /// One pod more on the node running N, and its floor.
    #[serde(flatten)]
    pub single: SingleFigures,
    /// The burst of 1000 pods and what follows it; absent with `--quick`.
    #[serde(flatten)]
    pub scale: Option<ScaleFigures>,
    /// Static pods' containers killed until their saved status shows it.
    #[serde(flatten)]
    pub crash: CrashFigures,
    /// The exec round trip and its floors.
    #[serde(flatten)]
    pub exec: ExecFigures,
    /// Pods through the test API server, and systemk's requests to it.
    #[serde(flatten)]
    pub api: ApiFigures,
}

impl Report {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("pods", self.n.to_string()),
            ("floor: units started directly", ms(self.floor_ms)),
            ("systemk: manifests to all running", ms(self.systemk_ms)),
            ("ratio systemk/floor", format!("{:.2}", self.ratio)),
            ("per pod p50", ms(self.pod_p50_ms)),
            ("per pod p99", ms(self.pod_p99_ms)),
            ("per pod max", ms(self.pod_max_ms)),
            ("idle RSS (max)", format!("{} KiB", self.idle_rss_kib)),
            (
                "idle CPU",
                format!(
                    "{:.2} % over {} s",
                    self.idle_cpu_percent, self.idle_seconds
                ),
            ),
            (
                "probes: 1 s readiness on each pod",
                format!("+{:.2} % CPU", self.probe_cpu_percent),
            ),
            (
                "probes floor: their commands alone",
                format!("{:.2} % CPU", self.probe_exec_floor_cpu_percent),
            ),
            (
                "one pod more: manifest to running",
                p50_p99(self.single.single_p50_ms, self.single.single_p99_ms),
            ),
            (
                "one pod more: floor, its unit started",
                p50_p99(
                    self.single.single_floor_p50_ms,
                    self.single.single_floor_p99_ms,
                ),
            ),
        ];
        if let Some(scale) = &self.scale {
            rows.extend(scale.rows());
        }
        rows.extend([
            (
                "exec: kubectl exec pod -- true",
                p50_p99(self.exec.exec_p50_ms, self.exec.exec_p99_ms),
            ),
            (
                "exec floor: systemd-run --wait --pipe",
                p50_p99(self.exec.exec_floor_p50_ms, self.exec.exec_floor_p99_ms),
            ),
            (
                "kubectl floor: kubectl get pod",
                p50_p99(
                    self.exec.kubectl_floor_p50_ms,
                    self.exec.kubectl_floor_p99_ms,
                ),
            ),
            ("CPUs", self.cpus.to_string()),
        ]);
        rows.extend(self.failure_and_api_rows());
        let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(label, value)| format!("{label:<width$}  {value}\n"))
            .collect()
    }

    /// The rows of the failure path and the API path.
    fn failure_and_api_rows(&self) -> Vec<(&'static str, String)> {
        let api = &self.api;
        vec![
            (
                "crash: kill to status saved (static)",
                p50_p99(
                    self.crash.crash_to_status_p50_ms,
                    self.crash.crash_to_status_p99_ms,
                ),
            ),
            (
                "crash: kill to status watched (API)",
                p50_p99(
                    api.api_crash_to_status_p50_ms,
                    api.api_crash_to_status_p99_ms,
                ),
            ),
            (
                "API: N pods, create to Running",
                p50_p99(
                    api.api_create_to_running_p50_ms,
                    api.api_create_to_running_p99_ms,
                ),
            ),
            ("API: first create to last Running", ms(api.api_burst_ms)),
            (
                "API: one pod more, create to Running",
                p50_p99(api.api_single_p50_ms, api.api_single_p99_ms),
            ),
            (
                "API: systemk's requests per pod",
                format!(
                    "{:.2} ({})",
                    api.api_requests_per_pod,
                    join(&api.api_requests_per_pod_by_verb, |v| format!("{v:.2}"))
                ),
            ),
            (
                "API: systemk's requests while idle",
                join(&api.api_idle_requests, u64::to_string),
            ),
        ]
    }

    /// Writes the report as JSON to `path`, creating its directory.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("write {}", path.display()))
    }
}

/// `key value, key value…` of a map, `none` when empty.
fn join<V>(map: &std::collections::BTreeMap<String, V>, value: impl Fn(&V) -> String) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(key, v)| format!("{key} {}", value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}
