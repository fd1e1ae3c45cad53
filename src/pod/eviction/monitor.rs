//! The eviction monitor, as the kubelet's eviction manager with hard thresholds only:
//! every [`MONITOR_PERIOD`] it observes the signals ([`super::observe`]); when a
//! threshold is crossed it ranks the pods on this machine for that threshold's resource
//! ([`super::rank`]), evicts the first one that may be evicted — marks it
//! ([`super::marker`]) and stops its units at once — and measures again only at the next
//! period, one pod per pass, as the kubelet does after `evictPod`. The reconciler's pass
//! of the marked pod then deletes its emptyDirs, reports it `Failed`/`Evicted` and sends
//! the event.
//!
//! Which threshold goes first is the kubelet's order (memory, then disk, then PIDs). An
//! `imagefs.*` threshold only sets DiskPressure: packages are not freed by evicting pods
//! (the kubelet would collect images first). Per-pod usage: memory and tasks are the
//! `MemoryCurrent`/`TasksCurrent` of the pod's units (MemoryCurrent counts page cache,
//! which the kubelet's working set does not: systemk may rank a file-heavy pod earlier;
//! without memory accounting the main process' resident set stands in);
//! disk bytes and inodes are what the pod's state directory (its emptyDirs, restart
//! records, `/run` directories) holds. Layer 4.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::marker;
use super::observe::{Observations, observe};
use super::rank::{Candidate, ContainerUsage, eviction_message, is_critical, pick, rank};
use super::threshold::{Signal, Threshold, Thresholds};
use crate::pod::container_unit::{containers, unit_name};
use crate::pod::context::Context;
use crate::pod::desired::{CONFIG_SOURCE_ANNOTATION, SourceId};
use crate::pod::worker::EVICTION_GRACE;
use crate::unit::Quantity;

/// How often the signals are observed: the kubelet's `evictionMonitoringPeriod`.
pub const MONITOR_PERIOD: Duration = Duration::from_secs(10);

/// Watches the signals against `thresholds` until `shutdown`, evicting pods of `ctx` when
/// one is crossed; `(state_dir, image_dir)` are on the nodefs and the imagefs.
pub async fn run(
    ctx: Arc<Context>,
    thresholds: Thresholds,
    (state_dir, image_dir): (PathBuf, PathBuf),
    period: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(period) => {}
        }
        let (nodefs, imagefs) = (state_dir.clone(), image_dir.clone());
        let Ok(observations) =
            tokio::task::spawn_blocking(move || observe(&nodefs, &imagefs)).await
        else {
            continue;
        };
        if let Some(threshold) = reclaimable(&thresholds, &observations) {
            evict_one(&ctx, threshold, &observations).await;
        }
    }
}

/// The first crossed threshold that evicting a pod can relieve.
fn reclaimable<'a>(
    thresholds: &'a Thresholds,
    observations: &Observations,
) -> Option<&'a Threshold> {
    thresholds
        .met(|signal| observations.get(&signal).copied())
        .into_iter()
        .find(|t| {
            !matches!(
                t.signal,
                Signal::ImageFsAvailable | Signal::ImageFsInodesFree
            )
        })
}

/// Evicts the first pod the kubelet's ranking picks for `threshold`, if any may go.
async fn evict_one(ctx: &Context, threshold: &Threshold, observations: &Observations) {
    let signal = threshold.signal;
    let Some(observed) = observations.get(&signal).copied() else {
        return;
    };
    let mut pods = candidates(ctx, signal).await;
    let mut ranked: Vec<Candidate> = pods.iter().map(|(c, _)| c.clone()).collect();
    rank(signal, &mut ranked);
    tracing::debug!(signal = %signal, ranked = ?ranked, "eviction candidates, first to go first");
    let Some(victim) = pick(&ranked) else {
        tracing::warn!(signal = %signal, "eviction threshold crossed, but no pod may be evicted (static and critical pods never are)");
        return;
    };
    let message = eviction_message(
        signal,
        &threshold.display_quantity(observed.capacity),
        observed.available,
        victim,
    );
    tracing::warn!(signal = %signal, pod = %victim.name, pod_uid = %victim.uid, message = %message, "evicting a pod");
    let Some(index) = pods.iter().position(|(c, _)| c.uid == victim.uid) else {
        return;
    };
    let (_, pod) = pods.swap_remove(index);
    let (dirs, uid, text) = (ctx.dirs.clone(), victim.uid.clone(), message.clone());
    let marked = tokio::task::spawn_blocking(move || marker::mark(&dirs, &uid, &text)).await;
    if !matches!(marked, Ok(Ok(()))) {
        tracing::error!(pod_uid = %victim.uid, "cannot mark the pod evicted; not stopping it");
        return;
    }
    // Stopped here, not at the pod's next pass: the pressure must go now. The unit signals
    // give the pod its pass, which sees the mark.
    for container in containers(&pod) {
        if let Ok(name) = unit_name(&pod, container.container)
            && let Err(err) = ctx.systemd.stop(&name, EVICTION_GRACE).await
        {
            tracing::warn!(unit = %name, error = %crate::error_chain::Chain(&err), "cannot stop an evicted container");
        }
    }
}

/// The pods on this machine that run (not terminal, not evicted), with their usage of
/// `signal`'s resource.
async fn candidates(ctx: &Context, signal: Signal) -> Vec<(Candidate, Pod)> {
    let Ok(uids) = ctx.dirs.list_async().await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for uid in uids {
        let (dirs, pod_uid) = (ctx.dirs.clone(), uid.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let evicted = marker::read(&dirs, &pod_uid).is_some();
            let pod = dirs.load_pod(&pod_uid);
            let disk = dir_usage(&dirs.pod_dir(&pod_uid));
            (evicted, pod, disk)
        })
        .await;
        let Ok((false, Some(pod), disk)) = loaded else {
            continue;
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let candidate = match signal {
            Signal::NodeFsAvailable => pod_candidate(
                &uid,
                &pod,
                (disk.map(|d| d.0), pod_request(&pod, "ephemeral-storage")),
                Vec::new(),
            ),
            Signal::NodeFsInodesFree => {
                pod_candidate(&uid, &pod, (disk.map(|d| d.1), 0), Vec::new())
            }
            _ => {
                let per_container = unit_usage(ctx, &pod, signal).await;
                let total = per_container
                    .iter()
                    .map(|c| c.usage)
                    .try_fold(0u64, |sum, usage| usage.map(|u| sum.saturating_add(u)));
                let request = per_container
                    .iter()
                    .map(|c| c.request)
                    .fold(0, u64::saturating_add);
                pod_candidate(&uid, &pod, (total, request), per_container)
            }
        };
        out.push((candidate, pod));
    }
    out
}

/// The candidate for `pod`, using `(usage, request)` of the resource under pressure.
fn pod_candidate(
    uid: &str,
    pod: &Pod,
    (usage, request): (Option<u64>, u64),
    containers: Vec<ContainerUsage>,
) -> Candidate {
    let metadata = &pod.metadata;
    let source = metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_SOURCE_ANNOTATION));
    // The API source sets the annotation on every pod it passes on, over the pod's own.
    let static_pod = source.is_none_or(|s| s != SourceId::Api.as_str());
    let priority = pod.spec.as_ref().and_then(|s| s.priority);
    Candidate {
        uid: uid.to_owned(),
        name: format!(
            "{}/{}",
            metadata.namespace.as_deref().unwrap_or("default"),
            metadata.name.as_deref().unwrap_or_default()
        ),
        priority: priority.unwrap_or(0),
        critical: is_critical(static_pod, priority),
        usage,
        request,
        containers,
    }
}

/// The memory (or task count) of each app container and sidecar from its unit, with its
/// request.
async fn unit_usage(ctx: &Context, pod: &Pod, signal: Signal) -> Vec<ContainerUsage> {
    let mut out = Vec::new();
    for container in containers(pod).into_iter().filter(|c| c.long_running()) {
        let Ok(name) = unit_name(pod, container.container) else {
            continue;
        };
        let usage = ctx.systemd.usage(&name).await.ok();
        let (usage, request) = match signal {
            Signal::PidAvailable => (usage.and_then(|u| u.tasks), 0),
            _ => (
                usage.and_then(|u| u.memory),
                container_request(container.container, "memory"),
            ),
        };
        out.push(ContainerUsage {
            name: container.container.name.clone(),
            usage,
            request,
        });
    }
    out
}

/// A container's request of `resource` in bytes (0 without one).
fn container_request(container: &k8s_openapi::api::core::v1::Container, resource: &str) -> u64 {
    container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|requests: &BTreeMap<_, _>| requests.get(resource))
        .and_then(|quantity| quantity.0.parse::<Quantity>().ok())
        .and_then(|quantity| quantity.ceil_scaled(0))
        .unwrap_or(0)
}

/// The sum of the requests of `resource` of the app containers and sidecars (what runs
/// beside each other once the pod is initialised).
fn pod_request(pod: &Pod, resource: &str) -> u64 {
    containers(pod)
        .iter()
        .filter(|c| c.long_running())
        .map(|c| container_request(c.container, resource))
        .fold(0, u64::saturating_add)
}

/// (bytes allocated, inodes) below `dir`, on its file system only, never following
/// symlinks; `None` when `dir` cannot be read.
pub fn dir_usage(dir: &Path) -> Option<(u64, u64)> {
    let root = std::fs::symlink_metadata(dir).ok()?;
    let device = root.dev();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != device {
            continue;
        }
        bytes = bytes.saturating_add(meta.blocks().saturating_mul(512));
        inodes += 1;
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            pending.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    Some((bytes, inodes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::eviction::Observation;

    #[test]
    fn imagefs_pressure_evicts_nothing_and_memory_goes_first() {
        let thresholds: Thresholds =
            "imagefs.available<15%,nodefs.available<10%,memory.available<1Gi"
                .parse()
                .unwrap();
        let low = Observation {
            available: 1,
            capacity: 100,
        };
        let mut observations = Observations::from([(Signal::ImageFsAvailable, low)]);
        assert!(reclaimable(&thresholds, &observations).is_none());
        observations.insert(Signal::NodeFsAvailable, low);
        assert_eq!(
            reclaimable(&thresholds, &observations).unwrap().signal,
            Signal::NodeFsAvailable
        );
        observations.insert(Signal::MemoryAvailable, low);
        assert_eq!(
            reclaimable(&thresholds, &observations).unwrap().signal,
            Signal::MemoryAvailable
        );
    }

    #[test]
    fn disk_usage_counts_blocks_and_inodes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file"), vec![1u8; 64 * 1024]).unwrap();
        let (bytes, inodes) = dir_usage(dir.path()).unwrap();
        assert_eq!(inodes, 3);
        assert!(bytes >= 64 * 1024, "{bytes}");
        assert_eq!(dir_usage(&dir.path().join("missing")), None);
    }

    #[test]
    fn api_pods_are_not_critical_unless_their_priority_is() {
        let mut pod = Pod::default();
        pod.metadata.annotations = Some(BTreeMap::from([(
            CONFIG_SOURCE_ANNOTATION.to_owned(),
            "api".to_owned(),
        )]));
        assert!(!pod_candidate("u", &pod, (None, 0), Vec::new()).critical);
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            priority: Some(2_000_001_000),
            ..Default::default()
        });
        assert!(pod_candidate("u", &pod, (None, 0), Vec::new()).critical);
        pod.metadata.annotations = None;
        pod.spec = None;
        assert!(pod_candidate("u", &pod, (None, 0), Vec::new()).critical);
    }
}
