//! The failure path (issue 15, point 4): a pod's container killed, until its status shows
//! it. The start mark is taken just before `SIGKILL` goes to the unit's main process (its
//! `MainPID` over D-Bus, read beforehand); the end mark is the moment the new status is
//! visible, without polling: for a static pod, `pod.json` renamed into its directory (the
//! status `systemk pods` shows) seen through inotify, then read; for an API pod, the
//! status patch as a watch on the test API server delivers it (`api_path.rs`). Each trial
//! kills a different pod of the node, once: a restarted container would wait its back-off.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use inotify::{Inotify, WatchMask};
use k8s_openapi::api::core::v1::Pod;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use systemk::pod::PodDirs;
use systemk::systemd::{ManagedUnit, Systemd};

use crate::percentile::percentile;
use crate::pod_watch::{PodWatch, main_status, shows_crash};
use crate::{NAMESPACE, UNIT_DIR};

/// Trials of each kind: pods killed, at most.
pub const TRIALS: usize = 50;
/// Longest wait for one status.
const DEADLINE: Duration = Duration::from_secs(30);
/// Pause between trials: the agent is done with one crash before the next.
const PAUSE: Duration = Duration::from_millis(200);
/// The file a static pod's status is saved in (`PodDirs::save_pod`).
const POD_FILE: &str = "pod.json";

/// The static pods' figures.
#[derive(Debug, Serialize)]
pub struct CrashFigures {
    /// Pods killed.
    pub crash_runs: usize,
    /// Kill → the new status saved, median.
    pub crash_to_status_p50_ms: f64,
    /// The same, 99th percentile.
    pub crash_to_status_p99_ms: f64,
}

/// The `main` containers of the benchmark's running pods whose names start with `prefix`,
/// by pod name: `TRIALS` of them, or all when fewer (`--pods` below it).
pub async fn victims(prefix: &str) -> anyhow::Result<Vec<ManagedUnit>> {
    let mut units: Vec<ManagedUnit> = Systemd::connect()
        .await?
        .list_managed(Path::new(UNIT_DIR))
        .await?
        .into_iter()
        .filter(|unit| {
            unit.meta.namespace == NAMESPACE
                && unit.meta.container == "main"
                && unit.meta.pod_name.starts_with(prefix)
                && unit.status.main_pid != 0
        })
        .collect();
    units.sort_by(|a, b| a.meta.pod_name.cmp(&b.meta.pod_name));
    if units.is_empty() {
        bail!("no running pods named {prefix}* to kill");
    }
    units.truncate(TRIALS);
    Ok(units)
}

/// Kills up to `TRIALS` static pods named `prefix*` of the agent keeping its state in `state`, one at a time.
pub async fn measure_static(state: &Path, prefix: &str) -> anyhow::Result<CrashFigures> {
    // The runtime directory holds no status; any path does.
    let dirs = PodDirs::new(state, state);
    let mut times = Vec::with_capacity(TRIALS);
    for unit in victims(prefix).await? {
        let dir = dirs.pod_dir(&unit.meta.pod_uid);
        let inotify = Inotify::init()?;
        inotify
            .watches()
            .add(&dir, WatchMask::MOVED_TO | WatchMask::CLOSE_WRITE)?;
        let mut events = inotify.into_event_stream([0u8; 4096])?;
        let killed = kill_main(&unit)?;
        let seen = tokio::time::timeout(DEADLINE, async {
            while let Some(event) = events.next().await {
                let at = Instant::now();
                if event?.name.is_some_and(|name| name == POD_FILE) && saved_crash(&dir)? {
                    return Ok(at);
                }
            }
            bail!("the inotify stream ended")
        })
        .await
        .with_context(|| format!("{}: no crash in {POD_FILE}", unit.meta.pod_name))??;
        times.push(ms(seen - killed));
        tokio::time::sleep(PAUSE).await;
    }
    Ok(CrashFigures {
        crash_runs: times.len(),
        crash_to_status_p50_ms: percentile(&times, 50.0),
        crash_to_status_p99_ms: percentile(&times, 99.0),
    })
}

/// Kills up to `TRIALS` API pods named `prefix*`, one at a time, each until `watch` shows its
/// crash: the times in milliseconds.
pub async fn measure_api(watch: &mut PodWatch, prefix: &str) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(TRIALS);
    for unit in victims(prefix).await? {
        let name = &unit.meta.pod_name;
        // Updates still queued are older than the kill.
        watch.drain();
        let killed = kill_main(&unit)?;
        loop {
            let seen = watch.next(DEADLINE).await?;
            let crashed = seen
                .pod
                .as_ref()
                .and_then(main_status)
                .is_some_and(shows_crash);
            if &seen.name == name && crashed {
                times.push(ms(seen.at - killed));
                break;
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    Ok(times)
}

/// SIGKILL to the unit's main process; the moment just before.
fn kill_main(unit: &ManagedUnit) -> anyhow::Result<Instant> {
    let pid = Pid::from_raw(i32::try_from(unit.status.main_pid)?);
    let killed = Instant::now();
    kill(pid, Signal::SIGKILL).with_context(|| format!("kill {pid}"))?;
    Ok(killed)
}

/// Whether the pod saved in `dir` shows its container ended.
fn saved_crash(dir: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(dir.join(POD_FILE))?;
    let pod: Pod = serde_json::from_str(&text)?;
    Ok(main_status(&pod).is_some_and(shows_crash))
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}
