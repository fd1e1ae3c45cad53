//! What a unit's or slice's cgroup has used, from the kernel's own accounting files, as
//! cAdvisor reads them for the kubelet: CPU time (`cpu.stat` `usage_usec` on the unified
//! hierarchy, else cgroup v1 `cpuacct.usage`) and memory (v2 `memory.current` and
//! `memory.stat`, else v1 `memory.usage_in_bytes` and `memory.stat`), with the working set
//! as cAdvisor computes it: usage minus inactive file pages, floored at 0. Where no memory
//! controller accounts the cgroup (cgroup v1 hosts whose systemd leaves the memory
//! hierarchy alone, as the test sandbox) the resident sets of its processes stand in.
//!
//! The paths come from systemd (`ControlGroup`), relative to systemd's root in each
//! hierarchy, which is found as systemd finds it: PID 1's cgroup without `/init.scope`.
//! The parsers are pure; [`Cgroups::usage`] reads files (blocking: call it off the
//! runtime). Layer 3.

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

/// Where systemd's cgroup tree is in each hierarchy that accounts something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroups {
    /// systemd's root in the unified (v2) hierarchy.
    unified: Option<PathBuf>,
    /// systemd's root in the v1 `cpuacct` hierarchy.
    cpuacct: Option<PathBuf>,
    /// systemd's root in the v1 `memory` hierarchy.
    memory: Option<PathBuf>,
    /// Whether the unified hierarchy has the memory controller (pure v2 with it on).
    unified_memory: bool,
}

/// systemd's own cgroup below its root (cg_get_root_path strips it).
const INIT_SCOPE: &str = "/init.scope";

impl Cgroups {
    /// Finds the hierarchies on this machine: `/proc/self/mountinfo` and PID 1's
    /// `/proc/1/cgroup`. Nothing found leaves every figure unread.
    pub fn discover() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let mut cgroups = Self::from_tables(&read("/proc/self/mountinfo"), &read("/proc/1/cgroup"));
        cgroups.unified_memory = cgroups.unified.as_ref().is_some_and(|root| {
            std::fs::read_to_string(root.join("cgroup.controllers"))
                .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "memory"))
        });
        cgroups
    }

    /// The hierarchies' roots from a mountinfo table and PID 1's cgroup file.
    pub fn from_tables(mountinfo: &str, init_cgroup: &str) -> Self {
        let mounts = cgroup_mounts(mountinfo);
        let mut cgroups = Self::default();
        for line in init_cgroup.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let root = path.strip_suffix(INIT_SCOPE).unwrap_or(path);
            let key = if controllers.is_empty() {
                None
            } else {
                Some(controllers)
            };
            let Some(dir) = mounts
                .iter()
                .find(|mount| mount.controllers.as_deref() == key)
                .and_then(|mount| mount.dir_of(root))
            else {
                continue;
            };
            match key {
                None => cgroups.unified = Some(dir),
                Some(list) => {
                    let has = |name| list.split(',').any(|c| c == name);
                    if has("cpuacct") {
                        cgroups.cpuacct = Some(dir.clone());
                    }
                    if has("memory") {
                        cgroups.memory = Some(dir);
                    }
                }
            }
        }
        cgroups
    }

    /// The usage of the cgroup systemd names `control_group` (e.g.
    /// `/systemk.slice/systemk-besteffort.slice/…`); nothing for a path that is not
    /// absolute or climbs out of systemd's tree.
    pub fn usage(&self, control_group: &str) -> CgroupUsage {
        let Some(relative) = relative(control_group) else {
            return CgroupUsage::default();
        };
        let read = |dir: &Option<PathBuf>, file: &str| {
            std::fs::read_to_string(dir.as_ref()?.join(relative).join(file)).ok()
        };
        let cpu_ns = read(&self.unified, "cpu.stat")
            .and_then(|text| cpu_stat_ns(&text))
            .or_else(|| read(&self.cpuacct, "cpuacct.usage").and_then(|text| number(&text)));
        let memory = if self.unified_memory {
            read(&self.unified, "memory.current").and_then(|current| {
                memory_v2(
                    &current,
                    &read(&self.unified, "memory.stat").unwrap_or_default(),
                )
            })
        } else {
            read(&self.memory, "memory.usage_in_bytes").and_then(|usage| {
                memory_v1(
                    &usage,
                    &read(&self.memory, "memory.stat").unwrap_or_default(),
                )
            })
        };
        let memory = memory.or_else(|| {
            let dir = self.unified.as_ref()?.join(relative);
            resident_sets(&dir)
        });
        CgroupUsage { cpu_ns, memory }
    }
}

/// One cgroup file system mount.
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
            path.strip_prefix(self.root.as_str())?
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

/// `control_group` below a hierarchy's root: absolute, without `.` or `..` parts.
fn relative(control_group: &str) -> Option<&Path> {
    let relative = control_group.strip_prefix('/')?;
    let clean = Path::new(relative)
        .components()
        .all(|part| matches!(part, std::path::Component::Normal(_)));
    clean.then_some(Path::new(relative))
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
