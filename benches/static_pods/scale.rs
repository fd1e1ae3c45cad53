//! The scale phase (issue 15, point 3): a burst of 1000 pods (`--scale-pods`) on a node
//! of its own against the floor for as many units, systemk's memory and CPU while idle
//! with them running, and one pod more on that node (`single.rs`). Run after the main
//! phase's pods are gone; skipped by `--quick`. Keys `n1000_*`, whatever the count:
//! `n1000_pods` says it.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cell::{ms, p50_p99};
use crate::percentile::percentile;
use crate::{SETTLE, burst, single};

/// The figures of this phase.
#[derive(Debug, Serialize)]
pub struct ScaleFigures {
    /// Pods of the burst.
    pub n1000_pods: usize,
    /// Their units written and all started directly, until the last is active.
    pub n1000_floor_ms: f64,
    /// First manifest renamed in until the last pod's container is active.
    pub n1000_systemk_ms: f64,
    /// `n1000_systemk_ms / n1000_floor_ms`.
    pub n1000_ratio: f64,
    /// Median of the per-pod times, manifest renamed in → container active.
    pub n1000_pod_p50_ms: f64,
    /// 99th percentile of the same.
    pub n1000_pod_p99_ms: f64,
    /// systemk's largest resident set while idle with the pods running.
    pub n1000_rss_kib: u64,
    /// systemk's CPU time while idle, percent of one CPU.
    pub n1000_idle_cpu_percent: f64,
    /// One pod more on this node: manifest renamed in → its container active, median.
    pub n1000_single_p50_ms: f64,
    /// The same, 99th percentile.
    pub n1000_single_p99_ms: f64,
    /// Its floor, the same unit started directly, median.
    pub n1000_single_floor_p50_ms: f64,
}

/// Runs the phase with `pods` pods, idling for `window`, one pod more `trials` times; the
/// agent's log at `log`.
pub async fn measure(
    bus: &zbus::Connection,
    work: &Path,
    node: &str,
    pods: usize,
    window: Duration,
    trials: usize,
    log: &Path,
) -> anyhow::Result<ScaleFigures> {
    let burst = burst::run(bus, work, "scale", pods, node, log).await?;
    tokio::time::sleep(SETTLE).await;
    let agent = burst.agent;
    let (agent, idle) = tokio::task::spawn_blocking(move || {
        let idle = agent.sample_idle(window);
        (agent, idle)
    })
    .await?;
    let idle = idle?;
    eprintln!("scale: one pod more on the node of {pods}, {trials} times, and its floor");
    let single = single::measure(bus, work, &burst.watched, node, trials).await?;
    drop(agent);
    Ok(ScaleFigures {
        n1000_pods: pods,
        n1000_floor_ms: burst.floor_ms,
        n1000_systemk_ms: burst.systemk_ms,
        n1000_ratio: burst.systemk_ms / burst.floor_ms,
        n1000_pod_p50_ms: percentile(&burst.pod_ms, 50.0),
        n1000_pod_p99_ms: percentile(&burst.pod_ms, 99.0),
        n1000_rss_kib: idle.max_rss_kib,
        n1000_idle_cpu_percent: idle.cpu_percent,
        n1000_single_p50_ms: single.single_p50_ms,
        n1000_single_p99_ms: single.single_p99_ms,
        n1000_single_floor_p50_ms: single.single_floor_p50_ms,
    })
}

impl ScaleFigures {
    /// Its rows of the printed table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let n = self.n1000_pods;
        vec![
            ("scale: pods", n.to_string()),
            (
                "scale: floor, units started directly",
                ms(self.n1000_floor_ms),
            ),
            ("scale: manifests to all running", ms(self.n1000_systemk_ms)),
            (
                "scale: ratio systemk/floor",
                format!("{:.2}", self.n1000_ratio),
            ),
            (
                "scale: per pod",
                p50_p99(self.n1000_pod_p50_ms, self.n1000_pod_p99_ms),
            ),
            (
                "scale: idle RSS (max)",
                format!("{} KiB", self.n1000_rss_kib),
            ),
            (
                "scale: idle CPU",
                format!("{:.2} %", self.n1000_idle_cpu_percent),
            ),
            (
                "scale: one pod more",
                p50_p99(self.n1000_single_p50_ms, self.n1000_single_p99_ms),
            ),
            (
                "scale: one pod more, floor p50",
                ms(self.n1000_single_floor_p50_ms),
            ),
        ]
    }
}
