//! What the child becomes: everything is prepared before `clone` (open fds, C strings,
//! id lists, filters), and [`Prepared::enter`] runs in the child only raw syscalls, in
//! this order: join the unit's cgroups, enter the main process's mount/IPC/UTS
//! namespaces by pidfd, drop the bounding set, take the credentials (ambient capabilities
//! kept across the uid change), change directory as the container's user, set
//! no-new-privileges, install the seccomp filters last. No file is opened after `setns`
//! as root: the container could have planted symlinks in its own view. Layer 3; with
//! `spawn.rs`, `seccomp.rs` and `pidfd.rs` the only places where `unsafe` is allowed.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, OnceLock};

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
        let last_cap = last_capability()
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
        })
    }

    /// Enters the unit, in the child between `clone` and `execve`: raw syscalls on this
    /// struct's memory only. On failure, the index of the step in [`STEPS`] (errno
    /// tells why).
    pub(super) fn enter(&self) -> Result<(), u8> {
        let steps: [&dyn Fn() -> bool; 9] = [
            &|| {
                self.cgroups
                    .iter()
                    .all(|fd| write_all(fd.as_raw_fd(), b"0"))
            },
            &|| {
                setns(
                    self.pidfd,
                    libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS,
                )
            },
            &|| {
                self.drop_bounding
                    .iter()
                    .all(|&cap| prctl(libc::PR_CAPBSET_DROP, cap, 0))
            },
            &|| self.ambient == 0 || self.uid == 0 || prctl(libc::PR_SET_KEEPCAPS, 1, 0),
            &|| set_credentials(self.uid, self.gid, &self.groups),
            &|| self.ambient == 0 || self.uid == 0 || raise_ambient(self.ambient),
            &|| change_directory(&self.directory, self.missing_ok),
            &|| !self.no_new_privileges || prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0),
            &|| self.filters.iter().all(install_filter),
        ];
        for (index, step) in (0u8..).zip(steps.iter()) {
            if !step() {
                return Err(index);
            }
        }
        Ok(())
    }
}

/// The kernel's highest capability number: fixed while it runs, so read once rather
/// than on every exec probe.
fn last_capability() -> Option<u32> {
    static LAST: OnceLock<Option<u32>> = OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|n| n.trim().parse().ok())
    })
}

/// The name of the step [`Prepared::enter`] reported.
pub(super) fn step_name(step: u8) -> &'static str {
    STEPS
        .get(usize::from(step))
        .copied()
        .unwrap_or("starting the command")
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

/// Raw syscalls, not glibc's wrappers: in a child that shares systemk's memory, glibc
/// would apply the change to every thread of systemk too.
fn set_credentials(uid: libc::uid_t, gid: libc::gid_t, groups: &[libc::gid_t]) -> bool {
    // SAFETY: `groups` lives for the call; the ids are plain integers.
    unsafe {
        libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) == 0
            && libc::syscall(libc::SYS_setresgid, gid, gid, gid) == 0
            && libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0
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
