//! What the node as a whole uses, read as cAdvisor reads its root container for the
//! kubelet: CPU time from `/proc/stat`, memory from `/proc/meminfo` the way runc reads the
//! root cgroup on cgroup v2 (usage = MemTotal − MemFree, working set = usage −
//! Inactive(file)), page faults from `/proc/vmstat`, network from `/proc/net/dev` without
//! the devices cAdvisor ignores, file systems with `statvfs`. The parsers are pure; the
//! readers block (call them off the runtime). Layer 6.

use std::path::Path;

use k8s_openapi::jiff::Timestamp;

use crate::systemd::MemoryUsage;

/// Clock ticks per second of `/proc/stat` (`USER_HZ`): 100 on every architecture
/// Debian 12 ships (x86, arm, ppc64el, s390x, mips).
const USER_HZ: u64 = 100;

/// Interfaces cAdvisor leaves out of a container's network (`ignoredDevicePrefixes`).
const IGNORED_INTERFACES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];

/// The node's memory: its figures and its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeMemory {
    /// Usage, working set, RSS and page faults.
    pub usage: MemoryUsage,
    /// MemTotal in bytes.
    pub capacity: u64,
}

/// One network interface's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

/// A file system's size and what is left, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    /// Bytes an unprivileged writer may still use.
    pub available: u64,
    /// Size in bytes.
    pub capacity: u64,
    /// Bytes in use (size − free).
    pub used: u64,
    /// Free inodes.
    pub inodes_free: u64,
    /// Inodes in all.
    pub inodes: u64,
}

/// CPU time of the whole machine in core-nanoseconds: the `cpu` line of `/proc/stat`
/// without idle and iowait (guest time is already in user time).
pub fn cpu_ns(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&index| ticks.get(index))
        .sum();
    Some(busy.saturating_mul(1_000_000_000 / USER_HZ))
}

/// When the machine booted: `btime` of `/proc/stat`.
pub fn boot_time(stat: &str) -> Option<Timestamp> {
    let seconds = stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Timestamp::from_second(seconds).ok()
}

/// The node's memory from `/proc/meminfo` and `/proc/vmstat`.
pub fn memory(meminfo: &str, vmstat: &str) -> Option<NodeMemory> {
    let kib = |key: &str| {
        meminfo.lines().find_map(|line| {
            let (name, rest) = line.split_once(':')?;
            (name == key).then_some(())?;
            let value: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(value.saturating_mul(1024))
        })
    };
    let counter = |key: &str| {
        vmstat.lines().find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == key).then(|| value.trim().parse().ok())?
        })
    };
    let capacity = kib("MemTotal")?;
    let usage = capacity.saturating_sub(kib("MemFree")?);
    let anon = kib("Active(anon)").unwrap_or(0) + kib("Inactive(anon)").unwrap_or(0);
    Some(NodeMemory {
        usage: MemoryUsage {
            usage,
            working_set: usage.saturating_sub(kib("Inactive(file)").unwrap_or(0)),
            rss: anon,
            page_faults: counter("pgfault"),
            major_page_faults: counter("pgmajfault"),
        },
        capacity,
    })
}

/// The interfaces of `/proc/net/dev`, without those cAdvisor ignores.
pub fn interfaces(net_dev: &str) -> Vec<Interface> {
    net_dev
        .lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            if IGNORED_INTERFACES.iter().any(|p| name.starts_with(p)) {
                return None;
            }
            let fields: Vec<u64> = counters
                .split_whitespace()
                .map(|field| field.parse().ok())
                .collect::<Option<_>>()?;
            // receive: bytes packets errs drop fifo frame compressed multicast; transmit: the same
            Some(Interface {
                name: name.to_owned(),
                rx_bytes: *fields.first()?,
                rx_errors: *fields.get(2)?,
                tx_bytes: *fields.get(8)?,
                tx_errors: *fields.get(10)?,
            })
        })
        .collect()
}

/// The file system holding `dir`.
// The statvfs field types are 32-bit on some targets; `from` widens them there.
#[allow(clippy::useless_conversion)]
pub fn file_system(dir: &Path) -> Option<FsUsage> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let fragment = u64::from(stat.fragment_size());
    let blocks = u64::from(stat.blocks());
    Some(FsUsage {
        available: u64::from(stat.blocks_available()).saturating_mul(fragment),
        capacity: blocks.saturating_mul(fragment),
        used: blocks
            .saturating_sub(u64::from(stat.blocks_free()))
            .saturating_mul(fragment),
        inodes_free: u64::from(stat.files_free()),
        inodes: u64::from(stat.files()),
    })
}

/// A file read whole, or empty when it cannot be read (the figure is then left out).
pub fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counts_busy_ticks_as_nanoseconds() {
        let stat = "cpu  1476964 539560 290091 8973529 10408 0 2393 693 0 0\n\
                    cpu0 1 2 3 4 5 6 7 8 9 10\nbtime 1765000000\n";
        let busy = 1_476_964 + 539_560 + 290_091 + 2393 + 693;
        assert_eq!(cpu_ns(stat), Some(busy * 10_000_000));
        assert_eq!(
            boot_time(stat),
            Some(Timestamp::from_second(1_765_000_000).unwrap())
        );
        assert_eq!(cpu_ns("intr 1\n"), None);
    }

    #[test]
    fn node_working_set_is_usage_minus_inactive_file() {
        let meminfo = "MemTotal:  8000 kB\nMemFree:  1000 kB\nActive(anon):  300 kB\n\
                       Inactive(anon):  200 kB\nInactive(file):  500 kB\n";
        let memory = memory(meminfo, "pgfault 42\npgmajfault 3\n").unwrap();
        assert_eq!(memory.capacity, 8000 * 1024);
        assert_eq!(memory.usage.usage, 7000 * 1024);
        assert_eq!(memory.usage.working_set, 6500 * 1024);
        assert_eq!(memory.usage.rss, 500 * 1024);
        assert_eq!(
            (memory.usage.page_faults, memory.usage.major_page_faults),
            (Some(42), Some(3))
        );
    }

    #[test]
    fn net_dev_leaves_out_loopback_and_veths() {
        let net_dev = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  \
            eth0: 5000 40 2 0 0 0 0 0 7000 50 3 0 0 0 0 0\n\
            veth12: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n";
        assert_eq!(
            interfaces(net_dev),
            [Interface {
                name: "eth0".into(),
                rx_bytes: 5000,
                rx_errors: 2,
                tx_bytes: 7000,
                tx_errors: 3,
            }]
        );
    }

    #[test]
    fn this_machines_root_file_system_is_read() {
        let root = file_system(Path::new("/")).unwrap();
        assert!(root.available <= root.capacity && root.used <= root.capacity);
    }
}
