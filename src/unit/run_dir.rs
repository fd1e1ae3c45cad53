//! Every container's own `/run`, as a container runtime gives each container its own: a
//! directory of the pod's (`<pod dir>/run/<container>`, see [`run_dir_path`]) bound on
//! `/run` (`/var/run` is a symlink to it), writable by the container, shared by all the
//! commands of its unit (an `ExecStartPre=` that makes `/run/<x>` hands it to
//! `ExecStart=`) and emptied by systemk (`pod/dirs.rs`) whenever it starts the container,
//! as a restarted container gets a fresh one. A start by systemd itself (at boot, by
//! `systemctl`) keeps what is there: systemk adds no `+` line to empty it, because such a
//! line gets the unit's binds without `PrivateTmp=`/`ProtectHome=`, and systemd would
//! then make the mount points of volumes below `/tmp` or `/root` on the host.
//!
//! The host's `/run` (its units in `/run/systemd/system`, its daemons' sockets, systemk's
//! runtime directory) is not in it. Into it come, read-only, what a daemon needs of the
//! host: systemd's notify socket (`Type=notify`), journald's sockets (`/dev/log` is
//! `/run/systemd/journal/dev-log`), resolved's `resolv.conf` and the user database's
//! sockets; an empty, read-only `/run/systemd/system` so `sd_booted()` is true. Its
//! `/run/lock` (world-writable, sticky: `/var/lock` is a symlink to it) is made by
//! `pod/dirs.rs`. A privileged container also gets the system bus and systemd's private
//! socket.
//!
//! The package's own `/run/<x>` that it ships or declares in `tmpfiles.d`, and a vendor
//! `RuntimeDirectory=`, stay the host's directories, bound in (systemd creates the
//! latter itself): their owner and mode are set up by the host.
//!
//! A vendor `PIDFile=` below `/run` is read by systemd in the host's view, so it names
//! the file in the pod's directory (unless it lies in one of the host's directories
//! above).
//!
//! Why nothing a container writes can steer a mount: systemd follows symlinks in mount
//! targets and creates missing ones in the host's file system, at every command's
//! namespace set-up (also `ExecStop=` and `ExecReload=`, while the container runs). So
//! every mount target in `/run` other than `/run` itself is either directly in `/run`
//! and always mounted (the container cannot rename or replace a mount point, `EBUSY`),
//! or below a read-only tmpfs systemk puts on its first component (`/run/systemd`,
//! `/run/secrets` for the service-account token). Optional (`-`) binds directly in
//! `/run` lose their `-` (a missing source would leave a plain directory a container
//! could replace with a symlink). Vendor `ReadWritePaths=`, `ReadOnlyPaths=`,
//! `InaccessiblePaths=`, `ExecPaths=` and `NoExecPaths=` below `/run` are dropped: they
//! would name the container's own files, and systemd would follow a planted symlink out
//! of it (a `ReadWritePaths=` so made would make a host directory writable).
//!
//! Layer 2: pure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::file::UnitFile;
use super::path;
use super::pid_file::run_relative_pid_file;

const SERVICE: &str = "Service";

/// Host sockets and directories bound read-only into every container's `/run`; `-`:
/// a host without resolved or userdb has none.
const HOST_RUN_BINDS: &[&str] = &[
    "/run/systemd/notify",
    "/run/systemd/journal/socket",
    "/run/systemd/journal/stdout",
    "/run/systemd/journal/dev-log",
    "/run/systemd/resolve",
    "/run/systemd/userdb",
];

/// The system bus socket and systemd's private socket (`systemctl` as root), bound in
/// for privileged containers only, which may command the host (the others never reach
/// them, see `confinement.rs`).
const PRIVILEGED_BINDS: &[&str] = &["/run/dbus/system_bus_socket", "/run/systemd/private"];

/// Path directives whose entries below `/run` are dropped (see the module doc).
const DROPPED_BELOW_RUN: &[&str] = &[
    "ReadWritePaths",
    "ReadOnlyPaths",
    "InaccessiblePaths",
    "ExecPaths",
    "NoExecPaths",
];

/// The directory bound on `/run` for `container` of the pod whose directory is `pod_dir`.
pub fn run_dir_path(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join("run").join(container)
}

/// Gives the container its own `/run` from `run_dir` (see the module doc).
/// `package_run_dirs` are the package's own `/run/<x>` on the host; `unit` already holds
/// the vendor's directives, the sandbox and the volumes' mounts.
pub fn apply_private_run(
    unit: &mut UnitFile,
    run_dir: &Path,
    package_run_dirs: &[PathBuf],
    privileged: bool,
) -> Result<()> {
    let run_dir = run_dir.to_str().ok_or_else(|| Error::InvalidPath {
        what: "container run directory".to_owned(),
        path: run_dir.to_string_lossy().into_owned(),
        why: "it is not UTF-8",
    })?;
    let run_dir = path::absolute("container run directory", run_dir)?;
    if run_dir == "/" || under_run(&run_dir) == Some(String::new()) {
        return Err(Error::InvalidPath {
            what: "container run directory".to_owned(),
            path: run_dir,
            why: "it must not be / or /run",
        });
    }
    for key in DROPPED_BELOW_RUN {
        let all = unit.get_all(SERVICE, key);
        // An empty line resets the list and stays; a line left empty goes.
        let kept: Vec<String> = all
            .iter()
            .filter_map(|line| {
                let entries: Vec<&str> = line
                    .split_whitespace()
                    .filter(|e| under_run(entry_path(e)).is_none())
                    .collect();
                (line.trim().is_empty() || !entries.is_empty()).then(|| entries.join(" "))
            })
            .collect();
        if kept.len() != all.len() || kept.iter().zip(&all).any(|(k, a)| k != a) {
            unit.remove(SERVICE, key);
            for line in kept {
                unit.add(SERVICE, key, line)?;
            }
        }
    }

    // The host's directories of the package, bound where the package expects them.
    let mut host_tops: BTreeSet<String> = BTreeSet::new();
    for dir in package_run_dirs {
        let text = dir.to_str().unwrap_or_default();
        let Some(rest) = under_run(text).filter(|r| !r.is_empty() && !r.contains('/')) else {
            continue;
        };
        let dir = path::absolute("package run directory", &format!("/run/{rest}"))?;
        unit.add(SERVICE, "BindPaths", path::directive(&dir))?;
        host_tops.insert(rest);
    }
    for entry in unit.get_list(SERVICE, "RuntimeDirectory") {
        for name in entry.split_whitespace() {
            if let Some(top) = name.split('/').next().filter(|t| !t.is_empty()) {
                host_tops.insert(top.to_owned());
            }
        }
    }

    if let Some(pid_file) = unit.get(SERVICE, "PIDFile").map(str::to_owned)
        && let Some(rest) = run_relative_pid_file(&pid_file)?
    {
        let top = rest.split('/').next().unwrap_or_default();
        let in_host_dir = rest.contains('/') && host_tops.contains(top);
        if !in_host_dir {
            unit.set(
                SERVICE,
                "PIDFile",
                path::directive(&format!("{run_dir}/{rest}")),
            )?;
        }
    }

    let run_dir_directive = path::directive(&run_dir);
    unit.add(SERVICE, "BindPaths", format!("{run_dir_directive}:/run"))?;
    for bind in HOST_RUN_BINDS {
        unit.add(SERVICE, "BindReadOnlyPaths", format!("-{bind}"))?;
    }
    if privileged {
        for bind in PRIVILEGED_BINDS {
            unit.add(SERVICE, "BindReadOnlyPaths", format!("-{bind}"))?;
        }
    }
    unit.add(
        SERVICE,
        "TemporaryFileSystem",
        "/run/systemd/system:ro,mode=0755",
    )?;
    cover_mount_targets(unit)
}

/// Makes every mount target in `/run` safe from the container (see the module doc): an
/// optional bind directly in `/run` becomes mandatory, and the first component of every
/// deeper target gets a read-only tmpfs unless it is a mount target itself.
fn cover_mount_targets(unit: &mut UnitFile) -> Result<()> {
    let mut tops: BTreeSet<String> = BTreeSet::new();
    let mut deeper: BTreeSet<String> = BTreeSet::new();
    for key in ["BindPaths", "BindReadOnlyPaths"] {
        let mut entries: Vec<String> = Vec::new();
        let mut changed = false;
        for entry in unit
            .get_list(SERVICE, key)
            .iter()
            .flat_map(|l| l.split_whitespace())
        {
            let target = bind_target(entry);
            match under_run(target) {
                Some(rest) if !rest.is_empty() && !rest.contains('/') => {
                    tops.insert(rest.to_owned());
                    if let Some(mandatory) = entry.strip_prefix('-') {
                        entries.push(mandatory.to_owned());
                        changed = true;
                        continue;
                    }
                }
                Some(rest) if !rest.is_empty() => {
                    deeper.insert(rest.split('/').next().unwrap_or_default().to_owned());
                }
                _ => {}
            }
            entries.push(entry.to_owned());
        }
        if changed {
            unit.remove(SERVICE, key);
            for entry in entries {
                unit.add(SERVICE, key, entry)?;
            }
        }
    }
    // systemd binds a RuntimeDirectory= at /run/<name>, a nested one too.
    let runtime_dirs: Vec<String> = unit
        .get_list(SERVICE, "RuntimeDirectory")
        .iter()
        .flat_map(|l| l.split_whitespace())
        .map(|name| format!("/run/{name}"))
        .collect();
    for entry in unit
        .get_list(SERVICE, "TemporaryFileSystem")
        .iter()
        .flat_map(|l| l.split_whitespace())
        .chain(runtime_dirs.iter().map(String::as_str))
    {
        let target = entry.split(':').next().unwrap_or_default();
        match under_run(target) {
            Some(rest) if !rest.is_empty() && !rest.contains('/') => {
                tops.insert(rest.to_owned());
            }
            Some(rest) if !rest.is_empty() => {
                deeper.insert(rest.split('/').next().unwrap_or_default().to_owned());
            }
            _ => {}
        }
    }
    for top in deeper.difference(&tops) {
        let top = path::absolute("mount target in /run", &format!("/run/{top}"))?;
        unit.add(
            SERVICE,
            "TemporaryFileSystem",
            format!("{}:ro,mode=0755", path::directive(&top)),
        )?;
    }
    Ok(())
}

/// The target of a `BindPaths=` entry: `[-]SRC[:DST[:OPTS]]`, `DST` defaulting to `SRC`.
fn bind_target(entry: &str) -> &str {
    let entry = entry.strip_prefix('-').unwrap_or(entry);
    let mut parts = entry.split(':');
    let source = parts.next().unwrap_or_default();
    parts.next().unwrap_or(source)
}

/// A path-directive entry without its `-`/`+` prefixes.
fn entry_path(entry: &str) -> &str {
    entry.trim_start_matches(['-', '+'])
}

/// The part of `path` below `/run` (also spelt `/var/run` or `%t`; `""` for `/run`
/// itself), normalised (no empty or `.` components), or `None` when it lies elsewhere.
/// A `..` component is kept: such a path is dropped or left for systemd to refuse.
fn under_run(path: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let rest = match parts.as_slice() {
        ["run" | "%t", rest @ ..] => rest,
        ["var", "run", rest @ ..] => rest,
        _ => return None,
    };
    Some(rest.join("/"))
}

#[cfg(test)]
mod tests;
