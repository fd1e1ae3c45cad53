//! `/stats/summary` in the kubelet's `stats/v1alpha1` JSON shape
//! (k8s.io/kubelet/pkg/apis/stats/v1alpha1/types.go): the types with their JSON names and
//! omissions, and [`build`], which turns one [`Sample`] into a [`Summary`]. Times are
//! `metav1.Time` (RFC 3339, whole seconds, UTC). `usageNanoCores` is the rate since the
//! previous sample of the same cgroup ([`CpuRates`]), absent on the first. Pure. Layer 6.

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use serde::{Serialize, Serializer};

use super::host::{FsUsage, Interface, NodeMemory};
use crate::systemd::{CgroupUsage, MemoryUsage};

/// cAdvisor's default interface (`network.DefaultInterfaceName`), inlined in a
/// `NetworkStats`.
const DEFAULT_INTERFACE: &str = "eth0";

/// What one reading of the node found.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// When it was read.
    pub time: Timestamp,
    /// The node's name.
    pub node_name: String,
    /// When the machine booted.
    pub boot_time: Option<Timestamp>,
    /// The machine's CPU time, core-nanoseconds.
    pub node_cpu_ns: Option<u64>,
    /// The machine's memory.
    pub node_memory: Option<NodeMemory>,
    /// The machine's interfaces: pods share the host network, so theirs too.
    pub interfaces: Vec<Interface>,
    /// The file system of systemk's state directory (the kubelet's nodefs).
    pub node_fs: Option<FsUsage>,
    /// The file system packages install to, `/` (the imagefs).
    pub image_fs: Option<FsUsage>,
    /// The pods with a running container.
    pub pods: Vec<PodSample>,
}

/// One pod's reading.
#[derive(Debug, Clone, Default)]
pub struct PodSample {
    /// Namespace, name and UID.
    pub pod_ref: PodReference,
    /// The pod's `status.startTime`, else its first container's start.
    pub start_time: Option<Timestamp>,
    /// The pod slice's cgroup, with its key for rates.
    pub usage: Option<(String, CgroupUsage)>,
    /// Its running containers.
    pub containers: Vec<ContainerSample>,
    /// Its emptyDir, configMap and secret volumes: name, usage of their file system,
    /// and bytes and inodes below their directory.
    pub volumes: Vec<(String, FsUsage, u64, u64)>,
}

/// One container's reading.
#[derive(Debug, Clone, Default)]
pub struct ContainerSample {
    /// Its name.
    pub name: String,
    /// When its main process started.
    pub start_time: Option<Timestamp>,
    /// Its unit's cgroup path (the rate key) and usage.
    pub cgroup: String,
    /// What it used.
    pub usage: CgroupUsage,
}

/// The previous CPU reading of each cgroup, for `usageNanoCores`.
#[derive(Debug, Default)]
pub struct CpuRates {
    last: HashMap<String, (Timestamp, u64)>,
}

impl CpuRates {
    /// Nano-cores since the previous reading of `key`, then remembers this one. None on
    /// the first reading, or when the counter went back (a new cgroup of the same name).
    fn rate(&mut self, key: &str, time: Timestamp, cpu_ns: u64) -> Option<u64> {
        let previous = self.last.insert(key.to_owned(), (time, cpu_ns));
        let (then, before) = previous?;
        let elapsed = time.as_nanosecond().checked_sub(then.as_nanosecond())?;
        let used = cpu_ns.checked_sub(before)?;
        (elapsed > 0).then(|| {
            let rate = i128::from(used) * 1_000_000_000 / elapsed;
            u64::try_from(rate).unwrap_or(u64::MAX)
        })
    }

    /// Forgets cgroups not read this time, so the table holds only what runs.
    fn keep(&mut self, keys: &[&str]) {
        self.last.retain(|key, _| keys.contains(&key.as_str()));
    }
}

/// `metav1.Time` on the wire.
fn time<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// `Summary`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `node`.
    pub node: NodeStats,
    /// `pods`.
    pub pods: Vec<PodStats>,
}

/// `NodeStats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    /// `nodeName`.
    pub node_name: String,
    /// `startTime`: when the machine booted.
    #[serde(serialize_with = "time")]
    pub start_time: Timestamp,
    /// `cpu`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    /// `memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// `network`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    /// `fs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsStats>,
    /// `runtime`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeStats>,
}

/// `RuntimeStats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStats {
    /// `imageFs`.
    pub image_fs: FsStats,
}

/// `PodStats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    /// `podRef`.
    pub pod_ref: PodReference,
    /// `startTime`.
    #[serde(serialize_with = "time")]
    pub start_time: Timestamp,
    /// `containers`.
    pub containers: Vec<ContainerStats>,
    /// `cpu`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    /// `memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// `network`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    /// `volume`.
    #[serde(rename = "volume", skip_serializing_if = "Vec::is_empty")]
    pub volume_stats: Vec<VolumeStats>,
}

/// `ContainerStats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    /// `name`.
    pub name: String,
    /// `startTime`.
    #[serde(serialize_with = "time")]
    pub start_time: Timestamp,
    /// `cpu`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStats>,
    /// `memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
}

/// `PodReference`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PodReference {
    /// `name`.
    pub name: String,
    /// `namespace`.
    pub namespace: String,
    /// `uid`.
    pub uid: String,
}

/// `InterfaceStats`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceStats {
    /// `name`.
    pub name: String,
    /// `rxBytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    /// `rxErrors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_errors: Option<u64>,
    /// `txBytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    /// `txErrors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_errors: Option<u64>,
}

/// `NetworkStats`: the default interface inline, then all of them.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkStats {
    /// `time`.
    #[serde(serialize_with = "time")]
    pub time: Timestamp,
    /// The default interface's counters, inline.
    #[serde(flatten)]
    pub default: InterfaceStats,
    /// `interfaces`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
}

/// `CPUStats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// `time`: when it was read.
    #[serde(serialize_with = "time")]
    pub time: Timestamp,
    /// `usageNanoCores`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    /// `usageCoreNanoSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_core_nano_seconds: Option<u64>,
}

/// `MemoryStats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// `time`.
    #[serde(serialize_with = "time")]
    pub time: Timestamp,
    /// `availableBytes`: the limit minus the working set, when there is a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    /// `usageBytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    /// `workingSetBytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    /// `rssBytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// `pageFaults`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_faults: Option<u64>,
    /// `majorPageFaults`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major_page_faults: Option<u64>,
}

/// `FsStats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    /// `time`.
    #[serde(serialize_with = "time")]
    pub time: Timestamp,
    /// `availableBytes`.
    pub available_bytes: u64,
    /// `capacityBytes`.
    pub capacity_bytes: u64,
    /// `usedBytes`.
    pub used_bytes: u64,
    /// `inodesFree`.
    pub inodes_free: u64,
    /// `inodes`.
    pub inodes: u64,
    /// `inodesUsed`.
    pub inodes_used: u64,
}

/// `VolumeStats`.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeStats {
    /// The embedded `FsStats`.
    #[serde(flatten)]
    pub fs: FsStats,
    /// `name`.
    pub name: String,
}

/// The summary of `sample`; with `only_cpu_and_memory` (the kubelet's query parameter)
/// without network, file systems and volumes.
pub fn build(sample: &Sample, rates: &mut CpuRates, only_cpu_and_memory: bool) -> Summary {
    let at = sample.time;
    let mut cpu = |key: &str, cpu_ns: Option<u64>| {
        cpu_ns.map(|ns| CpuStats {
            time: at,
            usage_nano_cores: rates.rate(key, at, ns),
            usage_core_nano_seconds: Some(ns),
        })
    };
    let full = !only_cpu_and_memory;
    let host_network = || full.then(|| network(at, &sample.interfaces));
    let node = NodeStats {
        node_name: sample.node_name.clone(),
        start_time: sample.boot_time.unwrap_or(at),
        cpu: cpu("", sample.node_cpu_ns),
        memory: sample.node_memory.map(|node| MemoryStats {
            available_bytes: Some(node.capacity.saturating_sub(node.usage.working_set)),
            ..memory(at, &node.usage)
        }),
        network: host_network(),
        fs: sample
            .node_fs
            .filter(|_| full)
            .map(|fs| fs_stats(at, &fs, None)),
        runtime: sample.image_fs.filter(|_| full).map(|fs| RuntimeStats {
            image_fs: fs_stats(at, &fs, None),
        }),
    };
    let mut pods = Vec::with_capacity(sample.pods.len());
    for pod in &sample.pods {
        let containers = pod
            .containers
            .iter()
            .map(|container| ContainerStats {
                name: container.name.clone(),
                start_time: container.start_time.unwrap_or(at),
                cpu: cpu(&container.cgroup, container.usage.cpu_ns),
                memory: container.usage.memory.map(|m| memory(at, &m)),
            })
            .collect();
        let (pod_cpu, pod_memory) = match &pod.usage {
            Some((key, usage)) => (cpu(key, usage.cpu_ns), usage.memory.map(|m| memory(at, &m))),
            None => (None, None),
        };
        let volume_stats = pod
            .volumes
            .iter()
            .filter(|_| full)
            .map(|(name, fs, bytes, inodes)| VolumeStats {
                fs: fs_stats(at, fs, Some((*bytes, *inodes))),
                name: name.clone(),
            })
            .collect();
        pods.push(PodStats {
            pod_ref: pod.pod_ref.clone(),
            start_time: pod.start_time.unwrap_or(at),
            containers,
            cpu: pod_cpu,
            memory: pod_memory,
            network: host_network(),
            volume_stats,
        });
    }
    // The node's key is "": no cgroup path is empty.
    let mut keys = vec![""];
    for pod in &sample.pods {
        keys.extend(pod.usage.as_ref().map(|(key, _)| key.as_str()));
        keys.extend(pod.containers.iter().map(|c| c.cgroup.as_str()));
    }
    rates.keep(&keys);
    Summary { node, pods }
}

fn memory(at: Timestamp, usage: &MemoryUsage) -> MemoryStats {
    MemoryStats {
        time: at,
        available_bytes: None,
        usage_bytes: Some(usage.usage),
        working_set_bytes: Some(usage.working_set),
        rss_bytes: Some(usage.rss),
        page_faults: usage.page_faults,
        major_page_faults: usage.major_page_faults,
    }
}

fn network(at: Timestamp, interfaces: &[Interface]) -> NetworkStats {
    let stats = |i: &Interface| InterfaceStats {
        name: i.name.clone(),
        rx_bytes: Some(i.rx_bytes),
        rx_errors: Some(i.rx_errors),
        tx_bytes: Some(i.tx_bytes),
        tx_errors: Some(i.tx_errors),
    };
    NetworkStats {
        time: at,
        default: interfaces
            .iter()
            .find(|i| i.name == DEFAULT_INTERFACE)
            .map(stats)
            .unwrap_or_default(),
        interfaces: interfaces.iter().map(stats).collect(),
    }
}

/// A file system's stats; `used` (bytes, inodes below a volume's directory) replaces
/// the file system's own use for a volume, as the kubelet's `du`-based volume metrics.
fn fs_stats(at: Timestamp, fs: &FsUsage, used: Option<(u64, u64)>) -> FsStats {
    let (used_bytes, inodes_used) =
        used.unwrap_or((fs.used, fs.inodes.saturating_sub(fs.inodes_free)));
    FsStats {
        time: at,
        available_bytes: fs.available,
        capacity_bytes: fs.capacity,
        used_bytes,
        inodes_free: fs.inodes_free,
        inodes: fs.inodes,
        inodes_used,
    }
}

#[cfg(test)]
pub(super) mod tests;
