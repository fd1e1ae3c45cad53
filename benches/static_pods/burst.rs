//! A burst: N manifests renamed into the watched directory of a fresh agent at once,
//! until every pod's container is active, after the floor of the very same units started
//! directly. The main phase runs it with the bench's N pods, the scale phase with 1000.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use systemk::unit::UnitName;

use crate::agent::Agent;
use crate::{
    NAMESPACE, SYNC_DEADLINE, SYSTEMK, UNIT_DIR, bus, floor, manifest, monotonic_us, pod_name,
    wait_active,
};

/// What a burst measured, and the agent still running its N pods.
pub struct Burst {
    /// N units written and all started directly, until the last is active.
    pub floor_ms: f64,
    /// First manifest renamed in until the last pod's container is active.
    pub systemk_ms: f64,
    /// Per pod, manifest renamed in → its container active.
    pub pod_ms: Vec<f64>,
    /// The agent, running the N pods.
    pub agent: Agent,
    /// The directory it watches.
    pub watched: PathBuf,
    /// Its state directory.
    pub state: PathBuf,
}

/// Runs the floor, then a burst of `n` pods through a new agent, its files under
/// `work/<tag>-*` and its log at `log`.
pub async fn run(
    bus: &zbus::Connection,
    work: &Path,
    tag: &str,
    n: usize,
    node: &str,
    log: &Path,
) -> anyhow::Result<Burst> {
    let manifests: Vec<String> = (0..n).map(|i| manifest(&pod_name(i))).collect();
    eprintln!("{tag}: the floor, {n} units started directly");
    let floor_ms = floor(bus, work, &format!("{tag}-floor"), &manifests).await?;

    eprintln!("{tag}: {n} static pods through systemk");
    let watched = work.join(format!("{tag}-manifests"));
    std::fs::create_dir(&watched)?;
    // Written hidden before the agent starts; only the renames below make them manifests.
    for (i, text) in manifests.iter().enumerate() {
        std::fs::write(watched.join(format!(".{}.yaml.tmp", pod_name(i))), text)?;
    }
    std::fs::create_dir_all(log.parent().context("log dir")?)?;
    let state = work.join(format!("{tag}-state"));
    let cache = work.join(format!("{tag}-cache"));
    // The kubelet's default of 110 pods is below the scale phase's; room for one more.
    let max_pods = (n + 1).max(110).to_string();
    let args: Vec<&OsStr> = vec![
        "--max-pods".as_ref(),
        max_pods.as_ref(),
        "--pod-manifest-path".as_ref(),
        watched.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--unit-dir".as_ref(),
        UNIT_DIR.as_ref(),
        "--cache-dir".as_ref(),
        cache.as_os_str(),
        // The kubelet API is not measured; the port may be taken on a shared machine.
        "--kubelet-port".as_ref(),
        "0".as_ref(),
    ];
    let agent = Agent::start(SYSTEMK, &args, log)?;
    agent.wait_synced(SYNC_DEADLINE)?;
    let mut renamed_us = Vec::with_capacity(n);
    for i in 0..n {
        let name = pod_name(i);
        renamed_us.push(monotonic_us()?);
        std::fs::rename(
            watched.join(format!(".{name}.yaml.tmp")),
            watched.join(format!("{name}.yaml")),
        )?;
    }
    wait_active(bus, &format!("systemk.{NAMESPACE}.*"), n).await?;
    let mut pod_ms = Vec::with_capacity(n);
    let mut last_us = 0;
    for (i, renamed) in renamed_us.iter().enumerate() {
        let unit = UnitName::for_container(NAMESPACE, &format!("{}-{node}", pod_name(i)), "main")?;
        let active = bus::active_enter_monotonic_us(bus, unit.as_str()).await?;
        last_us = last_us.max(active);
        pod_ms.push(active.saturating_sub(*renamed) as f64 / 1000.0);
    }
    let systemk_ms = last_us.saturating_sub(renamed_us[0]) as f64 / 1000.0;
    eprintln!("{tag}: all {n} pods running after {systemk_ms:.1} ms");
    Ok(Burst {
        floor_ms,
        systemk_ms,
        pod_ms,
        agent,
        watched,
        state,
    })
}
