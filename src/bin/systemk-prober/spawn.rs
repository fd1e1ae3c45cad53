//! Starts a command the way `posix_spawn` does: `clone` with `CLONE_VM | CLONE_VFORK`, so
//! nothing of the prober's memory is copied (a `fork` copies its page tables and then takes
//! a copy-on-write fault per page written until the `execve`: about 0.12 ms per command
//! here, a tenth of a short command's own cost). Unlike `posix_spawn`, the child also asks
//! to be killed when the prober dies (`PR_SET_PDEATHSIG`), which no spawn attribute offers.
//!
//! The child shares the prober's memory until its `execve`, so it only makes syscalls on
//! memory prepared before `clone`: no allocation, no lock. Signals are blocked around
//! `clone`; the child sets the dispositions the prober changed back to the default (the
//! Rust runtime ignores SIGPIPE and handles SIGSEGV and SIGBUS; an ignored signal stays
//! ignored across `execve`) before it unblocks them. `unsafe` for the raw syscalls.
#![allow(unsafe_code)]

use std::ffi::{CString, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr;
use std::sync::OnceLock;

/// The child's stack: it runs a few syscalls, nothing deep.
const STACK_SIZE: usize = 32 * 1024;
/// The highest signal number on Linux.
const MAX_SIGNAL: c_int = 64;

/// A command to start: every path to try (as `execvp` would), its arguments and
/// environment.
pub struct Command<'a> {
    pub candidates: &'a [CString],
    pub argv: &'a [CString],
    pub envp: &'a [CString],
    pub stdin: BorrowedFd<'a>,
    pub output: BorrowedFd<'a>,
}

/// A started command, leading its own process group.
pub struct Child {
    pid: libc::pid_t,
}

/// How a command ended: its exit code, or the signal that killed it.
pub enum Status {
    Exited(i32),
    Signaled(i32),
}

/// What the child reads and writes, on the prober's stack, which `CLONE_VFORK` keeps
/// still until the child has called `execve` or exited.
struct Shared<'a> {
    candidates: &'a [*const libc::c_char],
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stdin: c_int,
    output: c_int,
    prober: libc::pid_t,
    /// The signals to set back to their default disposition.
    changed_signals: &'a [c_int],
    old_mask: libc::sigset_t,
    /// Set by the child, just before it exits, to why it could not execute the command.
    errno: c_int,
}

/// Starts `command`: `Ok(None)` when none of its candidates exists, `EACCES` when one
/// exists but none could be executed.
pub fn spawn(command: &Command) -> io::Result<Option<Child>> {
    let candidates: Vec<*const libc::c_char> =
        command.candidates.iter().map(|c| c.as_ptr()).collect();
    let argv = null_terminated(command.argv);
    let envp = null_terminated(command.envp);
    let mut stack = vec![0u8; STACK_SIZE];
    // SAFETY: getpid has no preconditions.
    let prober = unsafe { libc::getpid() };
    let mut shared = Shared {
        candidates: &candidates,
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        stdin: command.stdin.as_raw_fd(),
        output: command.output.as_raw_fd(),
        prober,
        changed_signals: changed_signals(),
        // SAFETY: an all-zero sigset_t is a valid (empty) set; filled below.
        old_mask: unsafe { std::mem::zeroed() },
        errno: 0,
    };
    // SAFETY: the full set is initialised by sigfillset before use; the child runs only
    // `child` on its own stack with `shared`, which outlives it (CLONE_VFORK suspends this
    // thread until the child's execve or exit).
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut shared.old_mask);
        let top = stack.as_mut_ptr().add(STACK_SIZE);
        let top = top.sub(top as usize % 16);
        let pid = libc::clone(
            child,
            top.cast::<c_void>(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            ptr::from_mut(&mut shared).cast::<c_void>(),
        );
        let error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &shared.old_mask, ptr::null_mut());
        if pid < 0 {
            return Err(error);
        }
        pid
    };
    let child = Child { pid };
    match shared.errno {
        0 => Ok(Some(child)),
        errno => {
            child.wait()?;
            match errno {
                libc::ENOENT => Ok(None),
                errno => Err(io::Error::from_raw_os_error(errno)),
            }
        }
    }
}

/// Marks every fd from `first` up close-on-exec: the prober's own, and any its starter
/// left open.
pub fn close_on_exec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes flags of this process's fds.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([ptr::null()])
        .collect()
}

/// The signals whose disposition is not the default in the prober, read once (nothing
/// changes them after start-up), for the child to reset.
fn changed_signals() -> &'static [c_int] {
    static CHANGED: OnceLock<Vec<c_int>> = OnceLock::new();
    CHANGED.get_or_init(|| {
        (1..=MAX_SIGNAL)
            .filter(|&signal| signal != libc::SIGKILL && signal != libc::SIGSTOP)
            .filter(|&signal| {
                // SAFETY: a null new action only reads the current one into `action`.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    libc::sigaction(signal, ptr::null(), &mut action) == 0
                        && action.sa_sigaction != libc::SIG_DFL
                }
            })
            .collect()
    })
}

/// The child, until its `execve`: raw syscalls only (see the module's comment). Reports a
/// failure in `shared.errno` and exits 127.
extern "C" fn child(shared: *mut c_void) -> c_int {
    // SAFETY: `shared` is the parent's `Shared`, alive and untouched while it is suspended.
    let shared = unsafe { &mut *shared.cast::<Shared>() };
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    let fail = |shared: &mut Shared, errno: c_int| -> c_int {
        shared.errno = errno;
        // SAFETY: _exit ends this process only; nothing of the parent's is run.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: raw syscalls on memory prepared before clone.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for &signal in shared.changed_signals {
            libc::sigaction(signal, &default, ptr::null_mut());
        }
        if libc::setpgid(0, 0) != 0
            || libc::dup2(shared.stdin, 0) < 0
            || libc::dup2(shared.output, 1) < 0
            || libc::dup2(shared.output, 2) < 0
            || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
        {
            return fail(shared, errno());
        }
        // The prober died before the death signal was asked for: nothing would enforce
        // the command's timeout.
        if libc::getppid() != shared.prober {
            return fail(shared, libc::ESRCH);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &shared.old_mask, ptr::null_mut());
        let mut result = libc::ENOENT;
        for &candidate in shared.candidates {
            libc::execve(candidate, shared.argv, shared.envp);
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => result = libc::EACCES,
                errno => return fail(shared, errno),
            }
        }
        fail(shared, result)
    }
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Its status if it has ended (and it is reaped), without waiting.
    pub fn try_wait(&self) -> io::Result<Option<Status>> {
        self.reap(libc::WNOHANG)
    }

    /// Waits for it to end and reaps it.
    pub fn wait(&self) -> io::Result<Status> {
        loop {
            if let Some(status) = self.reap(0)? {
                return Ok(status);
            }
        }
    }

    fn reap(&self, flags: c_int) -> io::Result<Option<Status>> {
        let mut status = 0;
        // SAFETY: waitpid writes the status of our own child into `status`.
        let reaped = unsafe { libc::waitpid(self.pid, &mut status, flags) };
        match reaped {
            0 => Ok(None),
            pid if pid < 0 => {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EINTR) => Ok(None),
                    _ => Err(error),
                }
            }
            _ if libc::WIFEXITED(status) => Ok(Some(Status::Exited(libc::WEXITSTATUS(status)))),
            _ if libc::WIFSIGNALED(status) => Ok(Some(Status::Signaled(libc::WTERMSIG(status)))),
            _ => Ok(None),
        }
    }

    /// A pidfd on it, readable once it ended.
    pub fn pidfd(&self) -> io::Result<OwnedFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; the child is
        // not reaped yet, so its pid is still its own.
        unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, self.pid, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(std::os::fd::FromRawFd::from_raw_fd(fd as c_int))
        }
    }
}
