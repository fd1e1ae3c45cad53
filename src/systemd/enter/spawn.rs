//! Starts the command the way `posix_spawn` starts a program: `clone` with `CLONE_VM |
//! CLONE_VFORK`, so the child shares systemk's memory until its `execve` and nothing is
//! copied. A `fork` of systemk copies the page tables of every thread's memory and then
//! takes a copy-on-write fault for every page systemk writes afterwards; the bench
//! found that the largest share of an exec probe's cost in systemk. The child enters the
//! unit ([`Prepared::enter`]), puts its pipes on 0, 1 and 2 and tries each candidate
//! path of the program in the container's view.
//!
//! Because the child shares the parent's memory, it only makes raw syscalls on memory
//! prepared before `clone`: no allocation, no lock, no glibc function that acts on the
//! whole process (the credential changes are raw syscalls for that reason: glibc's
//! `setresuid` would change every thread of systemk). Signals are blocked in the parent
//! around `clone`; the child resets every handler to the default before unblocking, so
//! none of systemk's handlers runs on its stack. Layer 3; `unsafe` for the raw syscalls.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::child::Prepared;

/// The step number the child reports when `execve` itself failed.
pub(super) const EXEC_STEP: u8 = u8::MAX;
/// The child's stack: it runs a few syscalls, never systemk's code at depth.
const STACK_SIZE: usize = 64 * 1024;
/// systemd's default `PATH` for services, when the unit's environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

/// The program as the child will `execve` it: every path to try, the arguments and the
/// environment, as C strings with their pointer arrays.
pub(super) struct Program {
    pub(super) candidates: Vec<CString>,
    pub(super) argv: Vec<CString>,
    pub(super) envp: Vec<CString>,
    /// A file opened outside the container (`O_PATH`) to `execveat` instead of the
    /// candidates: a program of systemk's own, found whatever the container's view.
    executable: Option<RawFd>,
}

impl Program {
    /// `argv[0]` is tried as given when it holds a `/`, otherwise in each directory of
    /// the environment's `PATH` (inside the container's mount namespace, as `execvp`).
    /// `None` when a string holds a NUL byte.
    pub(super) fn new(argv: &[String], environment: &[(OsString, OsString)]) -> Option<Self> {
        let program = argv.first()?;
        let candidates = if program.contains('/') {
            vec![CString::new(program.as_bytes()).ok()?]
        } else {
            let path = environment
                .iter()
                .find(|(name, _)| name == "PATH")
                .map_or(OsStr::new(DEFAULT_PATH), |(_, value)| value.as_os_str());
            path.as_bytes()
                .split(|&b| b == b':')
                .filter(|dir| !dir.is_empty())
                .map(|dir| CString::new([dir, b"/", program.as_bytes()].concat()).ok())
                .collect::<Option<Vec<_>>>()?
        };
        let argv = argv
            .iter()
            .map(|arg| CString::new(arg.as_bytes()).ok())
            .collect::<Option<Vec<_>>>()?;
        let envp = environment
            .iter()
            .map(|(name, value)| {
                CString::new([name.as_bytes(), b"=", value.as_bytes()].concat()).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            candidates,
            argv,
            envp,
            executable: None,
        })
    }

    /// systemk's own `executable`, run as `name` with an empty environment.
    pub(super) fn executable(executable: RawFd, name: &CString) -> Self {
        Self {
            candidates: Vec::new(),
            argv: vec![name.clone()],
            envp: Vec::new(),
            executable: Some(executable),
        }
    }
}

/// Why the command did not start: the step of entering that failed (or [`EXEC_STEP`])
/// and its errno, or `None` for a failure before the child ran.
#[derive(Debug)]
pub(super) struct SpawnError {
    pub(super) step: Option<u8>,
    pub(super) source: io::Error,
}

/// How the child's standard streams are connected.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wiring {
    /// A pipe for each stream asked for, `/dev/null` for the others; the child leads its
    /// own process group.
    Pipes {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// This terminal slave on 0, 1 and 2 and as the controlling terminal of the child's
    /// own session (`setsid`, `TIOCSCTTY`).
    Terminal(RawFd),
    /// A unit's prober: its socket on 0, `/dev/null` on 1 and 2, the pidfd of the unit's
    /// main process on 3; its own process group.
    Prober { socket: RawFd, main_process: RawFd },
}

/// A started command: its process, a pidfd on it, and the parent's ends of its pipes.
pub(super) struct Spawned {
    pub(super) child: Child,
    pub(super) stdin: Option<pipe::Sender>,
    pub(super) stdout: Option<pipe::Receiver>,
    pub(super) stderr: Option<pipe::Receiver>,
}

/// The command's process; killed with its process group and reaped when dropped before
/// it was waited for.
pub(super) struct Child {
    pid: libc::pid_t,
    pidfd: Option<AsyncFd<OwnedFd>>,
}

/// What the child needs, by pointer: it lives on the parent's stack, which `CLONE_VFORK`
/// keeps still until the child has `exec`'d or exited.
struct ChildArgs<'a> {
    prepared: &'a Prepared,
    candidates: &'a [*const libc::c_char],
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    /// Put on fd 3 when not -1.
    fd3: RawFd,
    /// `execveat` this instead of the candidates when not -1.
    executable: RawFd,
    /// A new session with the terminal on 0 as its controlling terminal, rather than a
    /// new process group.
    terminal: bool,
    report: RawFd,
}

/// Starts `program` in the unit `prepared` enters, its streams connected as `wiring` says.
pub(super) fn spawn(
    prepared: &Prepared,
    program: &Program,
    wiring: Wiring,
) -> Result<Spawned, SpawnError> {
    let early = |source: io::Error| SpawnError { step: None, source };
    let pointers = |strings: &[CString]| {
        let mut pointers: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        pointers
    };
    let candidates = pointers(&program.candidates);
    let argv = pointers(&program.argv);
    let envp = pointers(&program.envp);
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(early)?;
    let (stdin, stdout, stderr) = match wiring {
        Wiring::Pipes {
            stdin,
            stdout,
            stderr,
        } => (
            stdin.then(input_pipe).transpose().map_err(early)?,
            stdout.then(pipe_pair).transpose().map_err(early)?,
            stderr.then(pipe_pair).transpose().map_err(early)?,
        ),
        Wiring::Terminal(_) | Wiring::Prober { .. } => (None, None, None),
    };
    let (report_read, report_write) = pipe_pair().map_err(early)?;
    // The child's end of each stream: its pipe, the terminal, or /dev/null.
    let child_end = |pipe: Option<RawFd>| match wiring {
        Wiring::Terminal(slave) => slave,
        Wiring::Pipes { .. } | Wiring::Prober { .. } => pipe.unwrap_or(null.as_raw_fd()),
    };
    let (socket, fd3) = match wiring {
        // fds 0 to 2 are systemk's own (a service's are never closed), so the pidfd is
        // above them and putting the streams in place cannot overwrite it.
        Wiring::Prober {
            socket,
            main_process,
        } if main_process > 2 => (Some(socket), main_process),
        Wiring::Prober { .. } => {
            return Err(early(io::Error::from_raw_os_error(libc::EBADF)));
        }
        _ => (None, -1),
    };
    let args = ChildArgs {
        prepared,
        candidates: &candidates,
        argv: &argv,
        envp: &envp,
        stdin: socket
            .unwrap_or_else(|| child_end(stdin.as_ref().map(|(read, _)| read.as_raw_fd()))),
        stdout: child_end(stdout.as_ref().map(|(_, write)| write.as_raw_fd())),
        stderr: child_end(stderr.as_ref().map(|(_, write)| write.as_raw_fd())),
        fd3,
        executable: program.executable.unwrap_or(-1),
        terminal: matches!(wiring, Wiring::Terminal(_)),
        report: report_write.as_raw_fd(),
    };
    let mut stack = vec![0u8; STACK_SIZE];
    // The stack grows down from its end, 16-byte aligned as the ABI wants.
    let top = (stack.as_mut_ptr() as usize + STACK_SIZE) & !15;
    let mut pidfd: libc::c_int = -1;
    let all = full_signal_set();
    let mut previous = empty_signal_set();
    // SAFETY: the child runs `child_main` on its own stack with `args`, which outlive it
    // (CLONE_VFORK suspends this thread until the child has exec'd or exited); signals
    // are blocked around the clone and restored right after.
    let pid = unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        let pid = libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            (&args as *const ChildArgs).cast_mut().cast(),
            &mut pidfd as *mut libc::c_int,
        );
        let cloned = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        if pid < 0 {
            return Err(early(cloned));
        }
        pid
    };
    drop(stack);
    // SAFETY: CLONE_PIDFD stored a new fd, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // The parent keeps only its own ends: the command's end of input closes with it.
    let stdin = stdin.map(|(_, write)| write);
    let stdout = stdout.map(|(read, _)| read);
    let stderr = stderr.map(|(read, _)| read);
    drop((report_write, null));
    // SAFETY: the `AsyncFd` owns the pidfd, so it stays open and the same until dropped.
    let registered = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) };
    let pidfd = match registered {
        Ok(pidfd) => pidfd,
        Err(error) => {
            let (pidfd, source) = error.into_parts();
            kill_and_reap(&pidfd);
            return Err(early(source));
        }
    };
    let child = Child {
        pid,
        pidfd: Some(pidfd),
    };
    let mut report = [0u8; 5];
    // The child has exec'd (closing its copy on exec) or exited: what it wrote is there.
    let read = nix::unistd::read(&report_read, &mut report).unwrap_or(0);
    if read == report.len() {
        let errno = i32::from_le_bytes([report[1], report[2], report[3], report[4]]);
        drop(child);
        return Err(SpawnError {
            step: Some(report[0]),
            source: io::Error::from_raw_os_error(errno),
        });
    }
    Ok(Spawned {
        child,
        stdin: stdin
            .map(pipe::Sender::from_owned_fd)
            .transpose()
            .map_err(early)?,
        stdout: stdout.map(receiver).transpose().map_err(early)?,
        stderr: stderr.map(receiver).transpose().map_err(early)?,
    })
}

/// How the command ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    Code(i32),
    Signal(i32),
}

impl Child {
    /// The process id, which is also its process group's.
    pub(super) fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Waits for the command to end and reaps it.
    pub(super) async fn wait(&mut self) -> io::Result<Exit> {
        let Some(pidfd) = self.pidfd.as_ref() else {
            return Err(io::Error::other("the child's pidfd is not registered"));
        };
        loop {
            let mut ready = pidfd.readable().await?;
            if let Some(exit) = reap(pidfd.get_ref().as_raw_fd())? {
                self.pidfd = None;
                return Ok(exit);
            }
            ready.clear_ready();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(pidfd) = self.pidfd.take() else {
            return;
        };
        super::child::kill_group(self.id());
        kill(pidfd.get_ref());
        // Reaped once it is gone, without holding this thread: a killed process ends soon.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                while let Ok(mut ready) = pidfd.readable().await {
                    if !matches!(reap(pidfd.get_ref().as_raw_fd()), Ok(None)) {
                        return;
                    }
                    ready.clear_ready();
                }
            });
        }
    }
}

/// SIGKILL to the child through its pidfd (it may have left its process group).
fn kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal with no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// Kills the child and waits for it, blocking: for a child that cannot be awaited.
fn kill_and_reap(pidfd: &OwnedFd) {
    kill(pidfd);
    // SAFETY: a blocking waitid on the child's pidfd; the killed child ends at once.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED,
        );
    }
}

/// `waitid(P_PIDFD)` without blocking: the exit once the process has ended.
fn reap(pidfd: RawFd) -> io::Result<Option<Exit>> {
    // SAFETY: waitid fills the zeroed siginfo it is given.
    let info = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        if libc::waitid(
            libc::P_PIDFD,
            pidfd as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        info
    };
    // SAFETY: the fields of a siginfo that waitid filled for SIGCHLD.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    let exit = match info.si_code {
        libc::CLD_EXITED => Exit::Code(status),
        _ => Exit::Signal(status),
    };
    Ok((pid != 0).then_some(exit))
}

/// A close-on-exec pipe for the command's input, its write end (the parent's) non-blocking.
fn input_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(
        &write,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok((read, write))
}

/// A close-on-exec pipe, its read end non-blocking.
fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(
        &read,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok((read, write))
}

/// Registers systemk's end of a socket with the runtime, for reading and writing.
pub(super) fn register_socket(socket: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the `AsyncFd` owns the socket, so it stays open and the same until dropped.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE | Interest::WRITABLE) }
        .map_err(|error| error.into_parts().1)
}

fn receiver(fd: OwnedFd) -> io::Result<pipe::Receiver> {
    pipe::Receiver::from_owned_fd(fd)
}

fn full_signal_set() -> libc::sigset_t {
    // SAFETY: sigfillset initialises the set it is given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        set
    }
}

fn empty_signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// The child: default signal handlers, an empty mask, its own process group (or session,
/// with the terminal as its controlling terminal), its streams on 0, 1 and 2, the unit
/// entered, then each candidate tried. Any failure is reported
/// as (step, errno) on the report pipe before `_exit(127)`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while this child runs (vfork).
    let args = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: per-task signal state and fd table (no CLONE_SIGHAND, no CLONE_FILES);
    // only raw syscalls on memory prepared before clone.
    unsafe {
        for signal in 1..=libc::SIGRTMAX() {
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut action) == 0
                && action.sa_sigaction != libc::SIG_IGN
                && action.sa_sigaction != libc::SIG_DFL
            {
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        let empty = empty_signal_set();
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        let grouped = if args.terminal {
            libc::setsid() >= 0
        } else {
            libc::setpgid(0, 0) == 0
        };
        if !grouped
            || !onto(args.stdin, 0)
            || !onto(args.stdout, 1)
            || !onto(args.stderr, 2)
            || (args.fd3 >= 0 && !onto(args.fd3, 3))
            || (args.terminal && libc::ioctl(0, libc::TIOCSCTTY, 0) != 0)
        {
            fail(args.report, EXEC_STEP);
        }
    }
    if let Err(step) = args.prepared.enter() {
        fail(args.report, step);
    }
    if args.executable >= 0 {
        // SAFETY: an fd, an empty NUL-terminated path and arrays built before clone.
        unsafe {
            libc::execveat(
                args.executable,
                c"".as_ptr(),
                args.argv.as_ptr().cast(),
                args.envp.as_ptr().cast(),
                libc::AT_EMPTY_PATH,
            )
        };
        fail(args.report, EXEC_STEP);
    }
    let mut denied = false;
    for &candidate in args.candidates.iter().take_while(|p| !p.is_null()) {
        // SAFETY: NUL-terminated strings and null-terminated arrays built before clone.
        unsafe { libc::execve(candidate, args.argv.as_ptr(), args.envp.as_ptr()) };
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => {}
            Some(libc::EACCES) => denied = true,
            _ => fail(args.report, EXEC_STEP),
        }
    }
    if denied {
        // SAFETY: sets this thread's errno for the report.
        unsafe { *libc::__errno_location() = libc::EACCES };
    }
    fail(args.report, EXEC_STEP)
}

/// Reports (step, errno) on `report`, then `_exit(127)`: no atexit handler may run in a
/// child that shares systemk's memory.
fn fail(report: RawFd, step: u8) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let [a, b, c, d] = errno.to_le_bytes();
    let report_bytes = [step, a, b, c, d];
    // SAFETY: raw write of a stack buffer, then _exit.
    unsafe {
        libc::write(report, report_bytes.as_ptr().cast(), report_bytes.len());
        libc::_exit(127)
    }
}

/// Puts `fd` on `target`, open across `execve`.
unsafe fn onto(fd: RawFd, target: RawFd) -> bool {
    // SAFETY: dup2 and fcntl on fds opened before clone.
    unsafe {
        if fd == target {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == 0
        } else {
            libc::dup2(fd, target) == target
        }
    }
}
