//! What the eviction signals observe on this machine, as the kubelet's
//! `makeSignalObservations`:
//!
//! - `memory.available`: capacity − working set of the machine, the kubelet's
//!   `summary.Node.Memory.AvailableBytes` (cAdvisor's root cgroup). On cgroup v2 runc
//!   computes the root's usage from `/proc/meminfo` (MemTotal − MemFree) and the working
//!   set is usage − inactive file pages, so available = `MemFree + Inactive(file)`. This
//!   is deliberately **not** `MemAvailable`, which also counts active file pages and
//!   reclaimable slab and so reports more than the kubelet would.
//! - `nodefs.*`: `statvfs` of the state directory's file system (bytes available to
//!   unprivileged writers, free inodes); `imagefs.*`: the same of the file system where
//!   systemk keeps images (`--cache-dir`, the downloaded `.deb`s), on most hosts the same
//!   file system as apt's cache and `/usr`.
//! - `pid.available`: `kernel.pid_max` − processes running (`/proc` entries).
//!
//! The parser is pure and unit-tested; [`observe`] does the reading (blocking: call it
//! off the runtime). Layer 4.

use std::collections::BTreeMap;
use std::path::Path;

use super::threshold::{Observation, Signal};

/// One observation per signal that could be read.
pub type Observations = BTreeMap<Signal, Observation>;

/// Reads every signal, `state_dir` on the nodefs and `image_dir` on the imagefs; a signal
/// that cannot be read is left out (and logged), as the kubelet skips a threshold without
/// observation. A missing `image_dir` is looked for up its parents (it is made at the
/// first download).
pub fn observe(state_dir: &Path, image_dir: &Path) -> Observations {
    let mut observations = Observations::new();
    match std::fs::read_to_string("/proc/meminfo") {
        Ok(text) => {
            if let Some(memory) = memory_observation(&text) {
                observations.insert(Signal::MemoryAvailable, memory);
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot read /proc/meminfo"),
    }
    for (dir, bytes, inodes) in [
        (state_dir, Signal::NodeFsAvailable, Signal::NodeFsInodesFree),
        (
            existing_ancestor(image_dir),
            Signal::ImageFsAvailable,
            Signal::ImageFsInodesFree,
        ),
    ] {
        match filesystem(dir) {
            Ok((space, files)) => {
                observations.insert(bytes, space);
                observations.insert(inodes, files);
            }
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "cannot read a file system's usage")
            }
        }
    }
    if let Some(pids) = pid_observation() {
        observations.insert(Signal::PidAvailable, pids);
    }
    observations
}

/// `dir`, or its nearest ancestor that exists.
fn existing_ancestor(dir: &Path) -> &Path {
    dir.ancestors()
        .find(|candidate| candidate.exists())
        .unwrap_or(Path::new("/"))
}

/// `memory.available` from `/proc/meminfo`: MemFree + Inactive(file) of MemTotal.
pub fn memory_observation(meminfo: &str) -> Option<Observation> {
    let total = meminfo_bytes(meminfo, "MemTotal")?;
    let free = meminfo_bytes(meminfo, "MemFree")?;
    let inactive_file = meminfo_bytes(meminfo, "Inactive(file)").unwrap_or(0);
    Some(Observation {
        available: free.saturating_add(inactive_file).min(total),
        capacity: total,
    })
}

/// A `/proc/meminfo` value (in kB there) in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        (name == key).then_some(())?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib.saturating_mul(1024))
    })
}

/// (bytes, inodes) observations of the file system holding `dir`.
// The statvfs field types are 32-bit on some targets; `from` widens them there.
#[allow(clippy::useless_conversion)]
fn filesystem(dir: &Path) -> Result<(Observation, Observation), nix::Error> {
    let stat = nix::sys::statvfs::statvfs(dir)?;
    let fragment = u64::from(stat.fragment_size());
    let bytes = Observation {
        available: u64::from(stat.blocks_available()).saturating_mul(fragment),
        capacity: u64::from(stat.blocks()).saturating_mul(fragment),
    };
    let inodes = Observation {
        available: u64::from(stat.files_free()),
        capacity: u64::from(stat.files()),
    };
    Ok((bytes, inodes))
}

fn pid_observation() -> Option<Observation> {
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let processes = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    Some(Observation {
        available: pid_max.saturating_sub(u64::try_from(processes).unwrap_or(u64::MAX)),
        capacity: pid_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_available_is_free_plus_inactive_file() {
        let meminfo = "MemTotal:  8000 kB\nMemFree:  1000 kB\nMemAvailable:  6000 kB\n\
                       Active(file):  2000 kB\nInactive(file):  500 kB\n";
        assert_eq!(
            memory_observation(meminfo),
            Some(Observation {
                available: 1500 * 1024,
                capacity: 8000 * 1024
            })
        );
        assert_eq!(memory_observation("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn this_machine_is_observed() {
        let observations = observe(Path::new("/"), Path::new("/var/cache/systemk/none/yet"));
        for signal in Signal::ALL {
            let observed = observations[&signal];
            assert!(observed.available <= observed.capacity, "{signal}");
        }
    }
}
