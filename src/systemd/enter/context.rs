//! The context a command enters, read from systemd (D-Bus properties of the unit) and its
//! main process (`/proc/<MainPID>`), never from the pod spec. The main process is held by
//! a pidfd while `/proc` is read; it is still alive afterwards, so what was read is its,
//! not a recycled pid's. Parsing is pure and unit-tested; layer 3.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::Error;
use super::pidfd;
use super::settings::{self, WorkingDirectory};
use crate::systemd::Systemd;
use crate::unit::UnitName;

/// Where the host's cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The user and groups the main process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Credentials {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) groups: Vec<u32>,
}

/// What `/proc/<pid>/status` says about the main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProcStatus {
    pub(super) credentials: Credentials,
    pub(super) no_new_privs: bool,
    /// `Seccomp:` 0 none, 1 strict, 2 filter.
    pub(super) seccomp_mode: u32,
    /// `Seccomp_filters:`.
    pub(super) seccomp_filters: usize,
}

/// Everything needed to enter a running unit.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) unit: String,
    pub(super) main_pid: u32,
    /// The main process's start time (`/proc/<pid>/stat` field 22): with the pid, it names
    /// one process for the seccomp cache.
    pub(super) start_time: u64,
    pub(super) pidfd: OwnedFd,
    /// The `cgroup.procs` of each mounted hierarchy the main process is in.
    pub(super) cgroup_procs: Vec<PathBuf>,
    pub(super) status: ProcStatus,
    /// `CapabilityBoundingSet` of the unit.
    pub(super) bounding: u64,
    /// `AmbientCapabilities` of the unit.
    pub(super) ambient: u64,
    /// `NoNewPrivileges` of the unit, or of the main process.
    pub(super) no_new_privileges: bool,
    pub(super) environment: Vec<(OsString, OsString)>,
    pub(super) working_directory: WorkingDirectory,
    /// See [`settings::Settings::stop_kills_every_process`].
    pub(super) stop_kills_every_process: bool,
}

/// Reads the context of the running unit `name`.
pub(super) async fn read(systemd: &Systemd, name: &UnitName) -> Result<Target, Error> {
    let unit = name.as_str().to_owned();
    let dbus_failed = |operation, source| {
        systemd.dbus_errors.record_zbus(operation, &source);
        Error::Properties {
            unit: unit.clone(),
            source,
        }
    };
    let (path, main_pid) = settings::main_pid(systemd, name)
        .await
        .map_err(|source| dbus_failed("Get MainPID", source))?;
    if main_pid == 0 {
        return Err(Error::NotRunning { unit });
    }
    let gone = |reason: String| Error::MainProcess {
        unit: unit.clone(),
        pid: main_pid,
        reason,
    };
    let pidfd = pidfd::pidfd_open(main_pid).map_err(|e| gone(format!("pidfd_open: {e}")))?;
    let proc_dir = PathBuf::from(format!("/proc/{main_pid}"));
    let read_proc = |file: &str| {
        std::fs::read(proc_dir.join(file)).map_err(|e| gone(format!("reading {file}: {e}")))
    };
    let cgroups = String::from_utf8_lossy(&read_proc("cgroup")?).into_owned();
    let stat = String::from_utf8_lossy(&read_proc("stat")?).into_owned();
    let status = String::from_utf8_lossy(&read_proc("status")?).into_owned();
    let environ = read_proc("environ")?;
    // Alive now means every file above was this process's, not a recycled pid's.
    if !pidfd::pidfd_alive(&pidfd) {
        return Err(gone("it exited".into()));
    }
    let start_time = start_time(&stat).ok_or_else(|| gone("unreadable /proc stat".into()))?;
    let settings = settings::for_run(systemd, name, path, main_pid, start_time)
        .await
        .map_err(|source| dbus_failed("GetAll settings of", source))?
        .ok_or_else(|| gone("the unit restarted while it was being entered".into()))?;
    let memberships = cgroup_memberships(&cgroups);
    let control_group = &settings.control_group;
    if control_group.is_empty() || !in_unit(&memberships, control_group) {
        return Err(gone(format!("it is not in {control_group:?}")));
    }
    let status = parse_status(&status).ok_or_else(|| Error::Credentials {
        unit: unit.clone(),
        reason: "unreadable /proc status".into(),
    })?;
    Ok(Target {
        main_pid,
        start_time,
        pidfd,
        cgroup_procs: cgroup_procs(Path::new(CGROUP_ROOT), &memberships),
        bounding: settings.bounding,
        ambient: settings.ambient,
        no_new_privileges: status.no_new_privs || settings.no_new_privileges,
        environment: environment(&environ),
        working_directory: settings.working_directory.clone(),
        stop_kills_every_process: settings.stop_kills_every_process,
        status,
        unit,
    })
}

/// The credentials and confinement in a `/proc/<pid>/status`: real ids (what systemd set
/// with `User=`/`Group=`/`SupplementaryGroups=` or `DynamicUser=`).
pub(super) fn parse_status(status: &str) -> Option<ProcStatus> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let first = |name: &str| field(name)?.split_whitespace().next()?.parse().ok();
    let groups = field("Groups")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<Vec<u32>, _>>()
        .ok()?;
    Some(ProcStatus {
        credentials: Credentials {
            uid: first("Uid")?,
            gid: first("Gid")?,
            groups,
        },
        no_new_privs: field("NoNewPrivs")? == "1",
        seccomp_mode: field("Seccomp")?.parse().ok()?,
        seccomp_filters: field("Seccomp_filters").map_or(Some(0), |n| n.parse().ok())?,
    })
}

/// Field 22 (start time in clock ticks) of `/proc/<pid>/stat`; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub(super) fn start_time(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// One line of `/proc/<pid>/cgroup`: the hierarchy's controllers (empty for the unified
/// one) and the path in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    pub(super) controllers: String,
    pub(super) path: String,
}

pub(super) fn cgroup_memberships(cgroups: &str) -> Vec<Membership> {
    cgroups
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_owned();
            let path = parts.next()?.to_owned();
            Some(Membership { controllers, path })
        })
        .collect()
}

/// Whether the process is in the unit's cgroup: systemd's `ControlGroup` is relative to
/// its own root, which is not the host's root when systemd runs in a container.
pub(super) fn in_unit(memberships: &[Membership], control_group: &str) -> bool {
    let tracking = memberships
        .iter()
        .find(|m| m.controllers.is_empty())
        .or_else(|| memberships.iter().find(|m| m.controllers == "name=systemd"));
    tracking.is_some_and(|m| {
        m.path == control_group
            || (control_group.starts_with('/') && m.path.ends_with(control_group))
    })
}

/// The `cgroup.procs` files to join, one per hierarchy mounted under `root`.
pub(super) fn cgroup_procs(root: &Path, memberships: &[Membership]) -> Vec<PathBuf> {
    memberships
        .iter()
        .filter_map(|m| {
            let hierarchy = if m.controllers.is_empty() {
                let unified = root.join("unified");
                if unified.is_dir() {
                    unified
                } else {
                    root.to_path_buf()
                }
            } else {
                root.join(
                    m.controllers
                        .strip_prefix("name=")
                        .unwrap_or(&m.controllers),
                )
            };
            let path = hierarchy
                .join(m.path.trim_start_matches('/'))
                .join("cgroup.procs");
            path.exists().then_some(path)
        })
        .collect()
}

/// `/proc/<pid>/environ` as name/value pairs: the environment systemd gave the main
/// process (`Environment=`, `EnvironmentFile=` and its own variables). The container can
/// rewrite that memory, but only to affect commands that run with its own privileges.
pub(super) fn environment(environ: &[u8]) -> Vec<(OsString, OsString)> {
    environ
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let equals = entry.iter().position(|&b| b == b'=')?;
            Some((
                OsString::from_vec(entry[..equals].to_vec()),
                OsString::from_vec(entry[equals + 1..].to_vec()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
