//! The child that becomes the command: everything is prepared before `fork` (open fds,
//! C strings, id lists, filters), and between `fork` and `execve` only raw syscalls run,
//! in this order: join the unit's cgroups, enter the main process's mount/IPC/UTS
//! namespaces by pidfd, drop the bounding set, take the credentials (ambient capabilities
//! kept across the uid change), change directory as the container's user, set
//! no-new-privileges, install the seccomp filters last. No file is opened after `setns`
//! as root: the container could have planted symlinks in its own view. Layer 3; the one
//! place besides `seccomp.rs` and `pidfd.rs` where `unsafe` is allowed (`pre_exec` and raw syscalls).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use super::Error;
use super::context::Target;
use super::seccomp::Filter;

/// The steps of the child, in order; the index is what the child reports on failure.
const STEPS: [&str; 9] = [
    "joining the cgroup",
    "entering the namespaces",
    "dropping the capability bounding set",
    "keeping capabilities",
    "setting the credentials",
    "setting ambient capabilities",
    "changing to the working directory",
    "setting no-new-privileges",
    "installing the seccomp filters",
];

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h).
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// `SECCOMP_SET_MODE_FILTER` (linux/seccomp.h).
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Kills the process group `group` (the command's own) with SIGKILL.
pub(super) fn kill_group(group: u32) {
    if let Ok(group) = libc::pid_t::try_from(group) {
        // SAFETY: kill with a negative pid signals that process group only.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// Everything the child needs, owned by the parent until the child has `exec`'d.
pub(super) struct Prepared {
    pidfd: RawFd,
    cgroups: Vec<OwnedFd>,
    drop_bounding: Vec<libc::c_ulong>,
    ambient: u64,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    directory: CString,
    missing_ok: bool,
    no_new_privileges: bool,
    filters: Arc<Vec<Filter>>,
    report_read: OwnedFd,
    report_write: OwnedFd,
}

impl Prepared {
    pub(super) fn new(target: &Target, filters: Arc<Vec<Filter>>) -> Result<Self, Error> {
        let mut cgroups = Vec::new();
        for path in &target.cgroup_procs {
            let file = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(|source| Error::Cgroup {
                    unit: target.unit.clone(),
                    path: path.display().to_string(),
                    source,
                })?;
            cgroups.push(OwnedFd::from(file));
        }
        let credentials_failed = |reason: String| Error::Credentials {
            unit: target.unit.clone(),
            reason,
        };
        if cgroups.is_empty() {
            return Err(Error::Cgroup {
                unit: target.unit.clone(),
                path: "/sys/fs/cgroup".into(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        let last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| credentials_failed("unreadable cap_last_cap".into()))?;
        let drop_bounding = (0..=last_cap.min(63))
            .filter(|cap| target.bounding & (1 << cap) == 0)
            .map(libc::c_ulong::from)
            .collect();
        let credentials = &target.status.credentials;
        let directory = match &target.working_directory.path {
            Some(path) => path.clone(),
            None => nix::unistd::User::from_uid(credentials.uid.into())
                .ok()
                .flatten()
                .map(|user| user.dir)
                .ok_or_else(|| {
                    credentials_failed(format!("no home for uid {}", credentials.uid))
                })?,
        };
        let directory = CString::new(directory.as_os_str().as_bytes())
            .map_err(|_| credentials_failed("a NUL in the working directory".into()))?;
        let (report_read, report_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| Error::Entering {
                    unit: target.unit.clone(),
                    step: "preparing",
                    source: e.into(),
                })?;
        Ok(Self {
            pidfd: target.pidfd.as_raw_fd(),
            cgroups,
            drop_bounding,
            ambient: target.ambient & target.bounding,
            uid: credentials.uid,
            gid: credentials.gid,
            groups: credentials.groups.clone(),
            directory,
            missing_ok: target.working_directory.missing_ok,
            no_new_privileges: target.no_new_privileges || !filters.is_empty(),
            filters,
            report_read,
            report_write,
        })
    }

    /// Makes `command`'s child enter the unit before `execve`.
    pub(super) fn install(&self, command: &mut tokio::process::Command) {
        let pidfd = self.pidfd;
        let cgroups: Vec<RawFd> = self.cgroups.iter().map(AsRawFd::as_raw_fd).collect();
        let drop_bounding = self.drop_bounding.clone();
        let ambient = self.ambient;
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        let directory = self.directory.clone();
        let missing_ok = self.missing_ok;
        let no_new_privileges = self.no_new_privileges;
        let filters = self.filters.clone();
        let report = self.report_write.as_raw_fd();
        let enter = move || {
            let steps: [&dyn Fn() -> bool; 9] = [
                &|| cgroups.iter().all(|&fd| write_all(fd, b"0")),
                &|| {
                    setns(
                        pidfd,
                        libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS,
                    )
                },
                &|| {
                    drop_bounding
                        .iter()
                        .all(|&cap| prctl(libc::PR_CAPBSET_DROP, cap, 0))
                },
                &|| ambient == 0 || uid == 0 || prctl(libc::PR_SET_KEEPCAPS, 1, 0),
                &|| set_credentials(uid, gid, &groups),
                &|| ambient == 0 || uid == 0 || raise_ambient(ambient),
                &|| change_directory(&directory, missing_ok),
                &|| !no_new_privileges || prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0),
                &|| filters.iter().all(install_filter),
            ];
            for (index, step) in steps.iter().enumerate() {
                if !step() {
                    let error = io::Error::last_os_error();
                    write_all(report, &[index as u8]);
                    return Err(error);
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes raw syscalls on memory allocated before fork
        // (no allocation, no locks), as `pre_exec` requires.
        unsafe { command.pre_exec(enter) };
    }

    /// The step the child reported failing, if it did.
    pub(super) fn failed_step(&self) -> Option<&'static str> {
        let mut byte = [0u8; 1];
        let read = nix::unistd::read(&self.report_read, &mut byte).ok()?;
        (read == 1)
            .then(|| STEPS.get(usize::from(byte[0])).copied())
            .flatten()
    }
}

fn write_all(fd: RawFd, bytes: &[u8]) -> bool {
    // SAFETY: writes from a live slice to an fd opened before fork.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    written == bytes.len() as isize
}

fn setns(fd: RawFd, kinds: libc::c_int) -> bool {
    // SAFETY: setns on a pidfd; the child is single-threaded.
    unsafe { libc::setns(fd, kinds) == 0 }
}

fn prctl(option: libc::c_int, arg: libc::c_ulong, arg3: libc::c_ulong) -> bool {
    // SAFETY: integer-only prctl options.
    unsafe { libc::prctl(option, arg, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) == 0 }
}

fn set_credentials(uid: libc::uid_t, gid: libc::gid_t, groups: &[libc::gid_t]) -> bool {
    // SAFETY: `groups` lives for the call; the ids are plain integers.
    unsafe {
        libc::setgroups(groups.len(), groups.as_ptr()) == 0
            && libc::setresgid(gid, gid, gid) == 0
            && libc::setresuid(uid, uid, uid) == 0
    }
}

/// Keeps exactly `ambient` (kept across the uid change by KEEPCAPS) as permitted,
/// effective and inheritable, then raises each as ambient so it survives `execve`.
fn raise_ambient(ambient: u64) -> bool {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| CapData {
        effective: (ambient >> shift) as u32,
        permitted: (ambient >> shift) as u32,
        inheritable: (ambient >> shift) as u32,
    };
    let data = [half(0), half(32)];
    // SAFETY: capset with a version-3 header and its two data words.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return false;
    }
    (0..64u64)
        .filter(|cap| ambient & (1 << cap) != 0)
        .all(|cap| {
            prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
            )
        })
}

fn change_directory(directory: &CString, missing_ok: bool) -> bool {
    // SAFETY: chdir on NUL-terminated strings allocated before fork.
    unsafe {
        libc::chdir(directory.as_ptr()) == 0 || (missing_ok && libc::chdir(c"/".as_ptr()) == 0)
    }
}

fn install_filter(filter: &Filter) -> bool {
    let Ok(len) = u16::try_from(filter.len()) else {
        return false;
    };
    let program = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: the program points into a filter that outlives the call; the kernel copies it.
    unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &program as *const libc::sock_fprog,
        ) == 0
    }
}
