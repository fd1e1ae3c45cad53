//! Copies the seccomp filters of a unit's main process with
//! `ptrace(PTRACE_SECCOMP_GET_FILTER)`: seize, interrupt, read every filter, detach. The
//! copies are cached per (pid, start time) so a probe every second does not stop the
//! container's main process every second. Layer 3; the only other module with `unsafe`
//! besides `child.rs` (raw ptrace, which nix does not wrap for seccomp).
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::Error;
use super::context::Target;

/// One classic-BPF filter, as the kernel returned it.
pub(super) type Filter = Vec<libc::sock_filter>;

/// `PTRACE_SECCOMP_GET_FILTER` (linux/ptrace.h); libc does not define it.
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;

/// Beyond this many cached processes the cache is emptied: entries of exited processes go
/// with it, and a few hundred copies are kilobytes each.
const CACHE_LIMIT: usize = 256;

type Cache = Mutex<HashMap<(u32, u64), Arc<Vec<Filter>>>>;

/// Process-wide because `run_in_unit` is a free function; the key names one process, so a
/// stale entry can never apply to another.
fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// Held while filters are copied.
fn copying() -> &'static tokio::sync::Mutex<()> {
    static COPYING: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    COPYING.get_or_init(tokio::sync::Mutex::default)
}

/// The filters of the target's main process, oldest first (the order to install them).
pub(super) async fn filters_of(target: &Target) -> Result<Arc<Vec<Filter>>, Error> {
    let failed = |reason: String| Error::Seccomp {
        unit: target.unit.clone(),
        reason,
    };
    match target.status.seccomp_mode {
        0 => return Ok(Arc::default()),
        2 => {}
        mode => return Err(failed(format!("seccomp mode {mode} cannot be copied"))),
    }
    // One copy at a time: a process has one tracer, so a second probe of the same
    // container seizing it at once would get EPERM; it waits and finds the copy cached.
    let _one_tracer = copying().lock().await;
    let key = (target.main_pid, target.start_time);
    if let Some(filters) = cache()
        .lock()
        .map_err(|_| failed("cache poisoned".into()))?
        .get(&key)
    {
        return Ok(filters.clone());
    }
    let pid = target.main_pid;
    let filters = tokio::task::spawn_blocking(move || copy(pid))
        .await
        .map_err(|e| failed(format!("the copying task: {e}")))?
        .map_err(|e| failed(format!("ptrace of {pid}: {e}")))?;
    if filters.len() != target.status.seccomp_filters {
        return Err(failed(format!(
            "read {} filters, the process has {}",
            filters.len(),
            target.status.seccomp_filters
        )));
    }
    // The kernel numbers the oldest filter 0 (kernel/seccomp.c `get_nth_filter`), the
    // order to install them in: systemd installs its syscall filter, which may forbid
    // seccomp(2) itself, last.
    let filters = Arc::new(filters);
    let mut cache = cache()
        .lock()
        .map_err(|_| failed("cache poisoned".into()))?;
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key, filters.clone());
    Ok(filters)
}

/// Seizes `pid`, stops it, reads its filters oldest first, and always detaches. Runs on
/// one blocking thread: the tracer is that thread.
fn copy(pid: u32) -> std::io::Result<Vec<Filter>> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: plain ptrace requests on a pid, no memory passed.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    let filters = read_stopped(pid);
    // SAFETY: as above; detaching resumes the process whatever happened.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    filters
}

fn read_stopped(pid: libc::pid_t) -> std::io::Result<Vec<Filter>> {
    // SAFETY: no memory passed.
    if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: `status` outlives the call.
    if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    if !libc::WIFSTOPPED(status) {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    let mut filters = Vec::new();
    for index in 0.. {
        // SAFETY: a null buffer asks only for the filter's length.
        let length = unsafe {
            libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                pid,
                index as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if length == -1 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::ENOENT) {
                break;
            }
            return Err(error);
        }
        let length =
            usize::try_from(length).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut filter = vec![
            libc::sock_filter {
                code: 0,
                jt: 0,
                jf: 0,
                k: 0
            };
            length
        ];
        // SAFETY: the buffer holds `length` instructions, the length the kernel reported
        // for this index while the process is stopped.
        let copied = unsafe {
            libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                pid,
                index as libc::c_ulong,
                filter.as_mut_ptr(),
            )
        };
        if copied != length as libc::c_long {
            return Err(std::io::Error::last_os_error());
        }
        filters.push(filter);
    }
    Ok(filters)
}
