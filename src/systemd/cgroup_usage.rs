//! What a unit's or slice's cgroup has used, from the kernel's own accounting files, as
//! cAdvisor reads them for the kubelet: CPU time (`cpu.stat` `usage_usec` on the unified
//! hierarchy, else cgroup v1 `cpuacct.usage`) and memory (v2 `memory.current` and
//! `memory.stat`, else v1 `memory.usage_in_bytes` and `memory.stat`), with the working set
//! as cAdvisor computes it: usage minus inactive file pages, floored at 0. Where no memory
//! controller accounts the cgroup (cgroup v1 hosts whose systemd leaves the memory
//! hierarchy alone, as the test sandbox) the resident sets of its processes stand in.
//!
//! The paths come from systemd (`ControlGroup`): from the root of each hierarchy, with
//! systemd's own root in front when systemd runs below it (a nested systemd reports
//! `/<its cgroup>/systemk.slice/…`). The parsers are pure; [`Cgroups::usage`] reads files
//! (blocking: call it off the runtime). Layer 3.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What one cgroup has used; `None` where the kernel does not account it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CgroupUsage {
    /// CPU time of every task in the cgroup and below, in core-nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Memory, when it could be read.
    pub memory: Option<MemoryUsage>,
}

/// A cgroup's memory, in bytes and page-fault counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUsage {
    /// Everything charged (page cache included).
    pub usage: u64,
    /// Usage minus inactive file pages, floored at 0 (cAdvisor's working set).
    pub working_set: u64,
    /// Anonymous memory (v2 `anon`, v1 `total_rss`).
    pub rss: u64,
    /// Minor page faults, when counted.
    pub page_faults: Option<u64>,
    /// Major page faults, when counted.
    pub major_page_faults: Option<u64>,
}

/// The mounted hierarchies that account something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroups {
    /// The unified (v2) hierarchy.
    unified: Option<CgroupMount>,
    /// The v1 `cpuacct` hierarchy.
    cpuacct: Option<CgroupMount>,
    /// The v1 `memory` hierarchy.
    memory: Option<CgroupMount>,
}

impl Cgroups {
    /// Finds the hierarchies mounted here (`/proc/self/mountinfo`); none found leaves
    /// every figure unread.
    pub fn discover() -> Self {
        Self::from_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
    }

    /// The hierarchies of a mountinfo table.
    pub fn from_mountinfo(mountinfo: &str) -> Self {
        let mut cgroups = Self::default();
        for mount in cgroup_mounts(mountinfo) {
            match mount.controllers.as_deref() {
                None => cgroups.unified = Some(mount),
                Some(list) => {
                    let has = |name| list.split(',').any(|c| c == name);
                    if has("cpuacct") {
                        cgroups.cpuacct = Some(mount.clone());
                    }
                    if has("memory") {
                        cgroups.memory = Some(mount);
                    }
                }
            }
        }
        cgroups
    }

    /// The usage of the cgroup systemd names `control_group` (e.g.
    /// `/systemk.slice/systemk-besteffort.slice/…`); nothing for a path that is not
    /// absolute or climbs out of its hierarchy.
    pub fn usage(&self, control_group: &str) -> CgroupUsage {
        if !is_clean(control_group) {
            return CgroupUsage::default();
        }
        let dir = |mount: &Option<CgroupMount>| mount.as_ref()?.dir_of(control_group);
        let read = |mount: &Option<CgroupMount>, file: &str| {
            std::fs::read_to_string(dir(mount)?.join(file)).ok()
        };
        let cpu_ns = read(&self.unified, "cpu.stat")
            .and_then(|text| cpu_stat_ns(&text))
            .or_else(|| read(&self.cpuacct, "cpuacct.usage").and_then(|text| number(&text)));
        let v2 = read(&self.unified, "memory.current").and_then(|current| {
            memory_v2(
                &current,
                &read(&self.unified, "memory.stat").unwrap_or_default(),
            )
        });
        let memory = v2
            .or_else(|| {
                read(&self.memory, "memory.usage_in_bytes").and_then(|usage| {
                    memory_v1(
                        &usage,
                        &read(&self.memory, "memory.stat").unwrap_or_default(),
                    )
                })
            })
            .or_else(|| resident_sets(&dir(&self.unified)?));
        CgroupUsage { cpu_ns, memory }
    }
}

/// One cgroup file system mount.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    /// The v1 controllers (`cpu,cpuacct`, `memory`, `name=systemd`); `None` for cgroup2.
    controllers: Option<String>,
    /// The cgroup path mounted (`/` unless a namespace or bind mount narrowed it).
    root: String,
    /// Where it is mounted.
    mount_point: PathBuf,
}

impl CgroupMount {
    /// Where cgroup `path` of this hierarchy is, when the mount shows it.
    fn dir_of(&self, path: &str) -> Option<PathBuf> {
        let below = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str())
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))?
        };
        Some(self.mount_point.join(below.trim_start_matches('/')))
    }
}

/// The cgroup mounts of a `/proc/<pid>/mountinfo` table.
fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut left = left.split(' ');
            let root = left.nth(3)?;
            let mount_point = left.next()?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let options = right.nth(1)?;
            let controllers = match fs_type {
                "cgroup2" => None,
                "cgroup" => Some(
                    options
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("relatime"))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => return None,
            };
            Some(CgroupMount {
                controllers,
                root: unescape_octal(root),
                mount_point: PathBuf::from(unescape_octal(mount_point)),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|digits| u8::from_str_radix(digits, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `control_group` is absolute, without `.` or `..` parts.
fn is_clean(control_group: &str) -> bool {
    control_group.strip_prefix('/').is_some_and(|relative| {
        Path::new(relative)
            .components()
            .all(|part| matches!(part, std::path::Component::Normal(_)))
    })
}

/// A file holding one number.
fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `usage_usec` of a `cpu.stat`, in nanoseconds.
fn cpu_stat_ns(text: &str) -> Option<u64> {
    flat_keyed(text)
        .get("usage_usec")
        .map(|usec| usec.saturating_mul(1000))
}

/// A flat-keyed file (`key value` lines) as a map; lines that do not parse are skipped.
fn flat_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

/// Memory from cgroup v2's `memory.current` and `memory.stat`.
fn memory_v2(current: &str, stat: &str) -> Option<MemoryUsage> {
    Some(memory(
        number(current)?,
        &flat_keyed(stat),
        "inactive_file",
        "anon",
    ))
}

/// Memory from cgroup v1's `memory.usage_in_bytes` and `memory.stat` (hierarchical
/// `total_*` figures, as cAdvisor with `use_hierarchy`).
fn memory_v1(usage: &str, stat: &str) -> Option<MemoryUsage> {
    Some(memory(
        number(usage)?,
        &flat_keyed(stat),
        "total_inactive_file",
        "total_rss",
    ))
}

fn memory(usage: u64, stat: &HashMap<&str, u64>, inactive_file: &str, rss: &str) -> MemoryUsage {
    MemoryUsage {
        usage,
        working_set: usage.saturating_sub(stat.get(inactive_file).copied().unwrap_or(0)),
        rss: stat.get(rss).copied().unwrap_or(0),
        page_faults: stat.get("pgfault").copied(),
        major_page_faults: stat.get("pgmajfault").copied(),
    }
}

/// The summed resident sets of every process in the cgroup at `dir` and below: the
/// stand-in where no memory controller accounts it. `None` when the cgroup is gone.
fn resident_sets(dir: &Path) -> Option<MemoryUsage> {
    let mut total = 0u64;
    let mut pending = vec![dir.to_owned()];
    let mut found = false;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        found = true;
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()));
            if let Some(bytes) = status.ok().as_deref().and_then(vm_rss) {
                total = total.saturating_add(bytes);
            }
        }
        pending.extend(
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
                .map(|entry| entry.path()),
        );
    }
    found.then_some(MemoryUsage {
        usage: total,
        working_set: total,
        rss: total,
        page_faults: None,
        major_page_faults: None,
    })
}

/// `VmRSS` of a `/proc/<pid>/status` in bytes.
pub(super) fn vm_rss(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests;
