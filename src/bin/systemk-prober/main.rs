//! `systemk-prober`: a unit's resident prober. systemk starts it inside a running container
//! exactly as it would start one exec probe's command (the unit's cgroups, namespaces,
//! credentials, capabilities and seccomp filters; see `systemd::enter`), then has it run the
//! container's commands: the kernel then shares the unit's compiled seccomp filters with
//! each command instead of installing copies of them every time, and nothing is joined or
//! entered again. It can do nothing the container cannot do itself.
//!
//! fd 0 is a `SOCK_SEQPACKET` socket to systemk: one request packet in, one reply packet
//! out (`systemd::enter::protocol`). fd 3 is a pidfd on the unit's main process. The
//! prober ends when either closes or becomes readable: systemk has gone or dropped it, or
//! the container's main process exited (so it never outlives the run it serves, whatever
//! the unit's `KillMode=`). Its environment is empty; each command gets its own.
#![deny(unsafe_code)]

mod spawn;

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send};
use spawn::{Child, Status};
use systemk::systemd::enter::protocol::{End, MAX_REQUEST, Reply, Request, request_id};

/// How long output written before the command ended may still be read after it ended
/// (a daemonised grandchild may hold the pipe open forever).
const DRAIN: Duration = Duration::from_millis(200);

fn main() {
    // SAFETY: systemk starts the prober with these two fds open and owned by nobody else.
    #[allow(unsafe_code)]
    let (socket, main_process) = unsafe { (OwnedFd::from_raw_fd(0), OwnedFd::from_raw_fd(3)) };
    // No fd of the prober's reaches a command: its own close on exec, and so does any its
    // starter left open (best effort: close_range's flag needs Linux 5.11).
    let _ = spawn::close_on_exec_from(4);
    for fd in [&socket, &main_process] {
        if fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err() {
            return;
        }
    }
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    let mut packet = vec![0u8; MAX_REQUEST + 1];
    loop {
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(main_process.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        if ready(&fds[1]) {
            return;
        }
        if !ready(&fds[0]) {
            continue;
        }
        let received = match recv(socket.as_raw_fd(), &mut packet, MsgFlags::MSG_TRUNC) {
            Ok(0) | Err(_) => return,
            Ok(received) => received,
        };
        let reply = match (received <= MAX_REQUEST)
            .then(|| Request::decode(&packet[..received]))
            .flatten()
        {
            Some(request) => run(&request, &null),
            None => Reply {
                id: request_id(&packet[..received.min(MAX_REQUEST)]).unwrap_or(0),
                end: End::ProberFailed(libc::EINVAL),
                output: Vec::new(),
            },
        };
        if send(socket.as_raw_fd(), &reply.encode(), MsgFlags::MSG_NOSIGNAL).is_err() {
            return;
        }
    }
}

/// Runs one command: its own process group, stdin on `/dev/null`, stdout and stderr into
/// one pipe whose last `max_output` bytes are kept, killed with its group at the timeout.
fn run(request: &Request, null: &std::fs::File) -> Reply {
    let end = |end| Reply {
        id: request.id,
        end,
        output: Vec::new(),
    };
    let errno = |error: io::Error| error.raw_os_error().unwrap_or(libc::EIO);
    let c_strings = |strings: &[Vec<u8>]| {
        strings
            .iter()
            .map(|s| CString::new(s.as_slice()))
            .collect::<Result<Vec<_>, _>>()
    };
    // The environment as `env` gives it: only `name=value` entries.
    let environment: Vec<Vec<u8>> = request
        .envp
        .iter()
        .filter(|entry| entry.contains(&b'='))
        .cloned()
        .collect();
    let (Ok(candidates), Ok(argv), Ok(envp)) = (
        c_strings(&request.candidates),
        c_strings(&request.argv),
        c_strings(&environment),
    ) else {
        return end(End::ProberFailed(libc::EINVAL));
    };
    let (mut output, writer) = match io::pipe() {
        Ok(pipe) => pipe,
        Err(error) => return end(End::ProberFailed(errno(error))),
    };
    let command = spawn::Command {
        candidates: &candidates,
        argv: &argv,
        envp: &envp,
        stdin: null.as_fd(),
        output: writer.as_fd(),
    };
    let child = match spawn::spawn(&command) {
        Ok(Some(child)) => child,
        Ok(None) => return end(End::NotFound),
        Err(error) => return end(End::ExecFailed(errno(error))),
    };
    drop(writer);
    let timeout = Duration::from_millis(u64::from(request.timeout_ms));
    let mut kept = Kept::new(request.max_output as usize);
    match wait(&child, &mut output, &mut kept, Instant::now() + timeout) {
        Ok(end) => Reply {
            id: request.id,
            end,
            output: kept.into_bytes(),
        },
        // It started: not a failure to start, whatever else went wrong.
        Err(error) => end(End::ExecFailed(errno(error))),
    }
}

/// Reads the output until the command ends (or its deadline, when its group is killed),
/// then for at most [`DRAIN`] more. If the command cannot be waited for, its group is
/// killed.
fn wait(
    child: &Child,
    output: &mut io::PipeReader,
    kept: &mut Kept,
    deadline: Instant,
) -> io::Result<End> {
    let waited = wait_for(child, output, kept, deadline);
    if waited.is_err() {
        kill_group(child.id());
        let _ = child.wait();
    }
    waited
}

fn wait_for(
    child: &Child,
    output: &mut io::PipeReader,
    kept: &mut Kept,
    deadline: Instant,
) -> io::Result<End> {
    let pidfd = child.pidfd()?;
    let mut open = true;
    let mut buffer = [0u8; 4096];
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if open {
            fds.push(PollFd::new(output.as_fd(), PollFlags::POLLIN));
        }
        let timeout = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
        let output_ready = fds
            .get(1)
            .and_then(PollFd::revents)
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if output_ready {
            open = read_into(output, &mut buffer, kept);
        }
    };
    let end = match status {
        Some(Status::Exited(code)) => End::Exited(code),
        Some(Status::Signaled(signal)) => End::Signaled(signal),
        None => {
            kill_group(child.id());
            child.wait()?;
            End::TimedOut
        }
    };
    let drained_by = Instant::now() + DRAIN;
    while open {
        let left = drained_by.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(output.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left.as_millis()).unwrap_or(PollTimeout::ZERO);
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => open = read_into(output, &mut buffer, kept),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    Ok(end)
}

/// One read into `kept`; false at the end of the pipe (or on an error).
fn read_into(output: &mut io::PipeReader, buffer: &mut [u8], kept: &mut Kept) -> bool {
    match output.read(buffer) {
        Ok(0) | Err(_) => false,
        Ok(read) => {
            kept.take(&buffer[..read]);
            true
        }
    }
}

/// The last `limit` bytes of what was read.
struct Kept {
    limit: usize,
    bytes: Vec<u8>,
}

impl Kept {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            bytes: Vec::new(),
        }
    }

    fn take(&mut self, more: &[u8]) {
        self.bytes.extend_from_slice(more);
        let excess = self.bytes.len().saturating_sub(self.limit);
        self.bytes.drain(..excess);
    }

    fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn kill_group(group: u32) {
    if let Ok(group) = i32::try_from(group) {
        let _ =
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), nix::sys::signal::SIGKILL);
    }
}
