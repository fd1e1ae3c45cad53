//! One pod more on a node already running N (issue 15, point 1): from its manifest renamed
//! into the watched directory to its container active (`single_*`), against the floor of
//! the unit `systemk render` makes of the same manifest, written and started directly
//! without a reload (`single_floor_*`). Each trial runs alone and is removed (its unit gone,
//! the daemon-reload the agent owes for it done, and half a second passed) before the
//! next; both ends on `CLOCK_MONOTONIC`, as the burst's.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;
use systemk::unit::UnitName;

use crate::percentile::percentile;
use crate::{NAMESPACE, UNIT_DIR, bus, floor_units, manifest, monotonic_us, remove_floor};

/// Trials of each kind unless `--trials` says otherwise.
pub const TRIALS: usize = 50;
/// How often a trial looks whether its unit is active, or gone.
const POLL: Duration = Duration::from_millis(5);
/// Longest wait for one unit.
const DEADLINE: Duration = Duration::from_secs(60);
/// Quiet time after a trial's pod is gone, and after the daemon-reload the agent owes for
/// its removal: each trial starts on a quiet node.
const SETTLE: Duration = Duration::from_millis(500);
/// Longest wait for that reload: the agent pays it at most 30 s after the removal.
const RELOAD_DEADLINE: Duration = Duration::from_secs(40);

/// The figures of this phase.
#[derive(Debug, Clone, Serialize)]
pub struct SingleFigures {
    /// Trials of each kind.
    pub single_runs: usize,
    /// Manifest renamed in → its container active, median.
    pub single_p50_ms: f64,
    /// The same, 99th percentile.
    pub single_p99_ms: f64,
    /// The same unit written and started directly → active, median.
    pub single_floor_p50_ms: f64,
    /// The same, 99th percentile.
    pub single_floor_p99_ms: f64,
}

/// Runs `trials` trials of each kind against the agent watching `watched` on node `node`.
pub async fn measure(
    bus: &zbus::Connection,
    work: &Path,
    watched: &Path,
    node: &str,
    trials: usize,
) -> anyhow::Result<SingleFigures> {
    let mut pod_ms = Vec::with_capacity(trials);
    for trial in 0..trials {
        let name = format!("single-{trial:02}");
        let hidden = watched.join(format!(".{name}.yaml.tmp"));
        let visible = watched.join(format!("{name}.yaml"));
        std::fs::write(&hidden, manifest(&name))?;
        let unit = UnitName::for_container(NAMESPACE, &format!("{name}-{node}"), "main")?;
        let renamed = monotonic_us()?;
        std::fs::rename(&hidden, &visible)?;
        wait_until(bus, unit.as_str(), true).await?;
        let active = bus::active_enter_monotonic_us(bus, unit.as_str()).await?;
        pod_ms.push(active.saturating_sub(renamed) as f64 / 1000.0);
        let mut reloads = bus::reloads(bus).await?;
        std::fs::remove_file(&visible)?;
        wait_until(bus, unit.as_str(), false).await?;
        quiet_after_removal(&mut reloads).await?;
    }
    let manifests: Vec<String> = (0..trials)
        .map(|trial| manifest(&format!("single-floor-{trial:02}")))
        .collect();
    let units = floor_units(work, "single-floor", &manifests)?;
    let mut floor_ms = Vec::with_capacity(trials);
    for (name, text) in &units {
        let written = monotonic_us()?;
        std::fs::write(Path::new(UNIT_DIR).join(name), text)?;
        bus::start_all(bus, std::slice::from_ref(name)).await?;
        wait_until(bus, name, true).await?;
        let active = bus::active_enter_monotonic_us(bus, name).await?;
        floor_ms.push(active.saturating_sub(written) as f64 / 1000.0);
        remove_floor(bus, std::slice::from_ref(name)).await?;
        tokio::time::sleep(SETTLE).await;
    }
    Ok(SingleFigures {
        single_runs: trials,
        single_p50_ms: percentile(&pod_ms, 50.0),
        single_p99_ms: percentile(&pod_ms, 99.0),
        single_floor_p50_ms: percentile(&floor_ms, 50.0),
        single_floor_p99_ms: percentile(&floor_ms, 99.0),
    })
}

/// Waits until the daemon-reload the agent owes for a removal is done (`reloads` began
/// before the removal), then [`SETTLE`].
pub async fn quiet_after_removal(reloads: &mut zbus::MessageStream) -> anyhow::Result<()> {
    bus::reload_done(reloads, RELOAD_DEADLINE).await?;
    tokio::time::sleep(SETTLE).await;
    Ok(())
}

/// Waits until `unit` is active (`active`), or inactive with its file gone.
async fn wait_until(bus: &zbus::Connection, unit: &str, active: bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let is_active = bus::count_active(bus, unit).await? > 0;
        let done = if active {
            is_active
        } else {
            !is_active && !Path::new(UNIT_DIR).join(unit).exists()
        };
        if done {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{unit} not {} after {DEADLINE:?}",
                if active { "active" } else { "gone" }
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
