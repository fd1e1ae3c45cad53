//! A resident prober per running unit: `systemk-prober`, started in the unit's context
//! the way one command would be (cgroups, namespaces, credentials, capabilities, seccomp
//! filters), then asked over a socket to run each command. Entering costs a probe more
//! than its command does: installing copies of the unit's two dozen seccomp filters
//! (the kernel compiles each one again), joining every cgroup hierarchy, reading `/proc`.
//! The prober pays that once per run of the main process; its commands are forked from
//! it and share its filters.
//!
//! A prober serves one run: it ends when the main process does (it holds a pidfd on it),
//! and is dropped and killed when systemk finds another run. Where a stop of the unit
//! kills every process in its cgroup, a running main process means the run is still the
//! unit's current one, and a command goes to its prober without a D-Bus call; elsewhere
//! systemd's `MainPID` is asked first. It runs as the container and
//! is treated as the container: its replies are bounded, checked and carry the request's
//! id; one that lies, hangs or dies costs only that container's own command. Whatever
//! keeps a prober from serving (no `systemk-prober` installed, a seccomp filter without
//! `execveat`, a command already running in it) sends the command the direct way, through
//! [`super::start`]. Layer 3.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::probers::{Current, Prober, Probers, Run, Slot, Units, forget_in};
use super::protocol::{self, End, Reply, Request};
use super::{DRAIN, Ended, EnterCommand, EnterOutcome, Error, child, context, seccomp};
use super::{settings, spawn};
use crate::systemd::Systemd;
use crate::unit::UnitName;

/// How long past a command's own timeout (and output drain) a reply may take.
const REPLY_SLACK: Duration = Duration::from_secs(1);
/// At most this many probers at once; beyond, the direct way. Each holds three of
/// systemk's fds, whose soft limit systemd sets to 1024 (raising it would hand the higher
/// limit to every program systemk starts).
const MAX_PROBERS: usize = 128;

/// Runs `command` through the unit's prober: `Ok(None)` when it has none that can serve
/// (the caller then runs it the direct way, which also reports what is wrong with the
/// unit or the command).
pub(super) async fn run(
    systemd: &Systemd,
    unit: &str,
    command: &EnterCommand,
) -> Result<Option<EnterOutcome>, Error> {
    let probers = &systemd.probers;
    let Some(executable) = probers.executable() else {
        return Ok(None);
    };
    let Some(program) = command.argv.first() else {
        return Ok(None);
    };
    let Ok(name) = UnitName::try_from(unit.to_owned()) else {
        return Ok(None);
    };
    if command.max_output > protocol::MAX_OUTPUT {
        return Ok(None);
    }
    let prober = match probers.serving_current_run(unit) {
        Some(prober) => prober,
        None => match current_or_started(systemd, probers, &name, executable).await {
            Some(prober) => prober,
            None => return Ok(None),
        },
    };
    let Ok(_busy) = prober.busy.try_lock() else {
        return Ok(None);
    };
    let Some(request) = request(&prober, command) else {
        return Ok(None);
    };
    let failed = |reason: &str| {
        probers.forget(unit, prober.generation);
        Error::Run {
            unit: unit.to_owned(),
            program: program.clone(),
            source: io::Error::other(format!("the unit's prober {reason}")),
        }
    };
    let wait = command.timeout + DRAIN + REPLY_SLACK;
    let reply = match tokio::time::timeout(wait, exchange(&prober.socket, &request)).await {
        Err(_) => {
            probers.forget(unit, prober.generation);
            return Ok(Some(EnterOutcome {
                ended: Ended::TimedOut,
                output: Vec::new(),
            }));
        }
        Ok(Err(Exchange::NotSent)) => {
            probers.forget(unit, prober.generation);
            return Ok(None);
        }
        Ok(Err(Exchange::Ended)) => return Err(failed("ended before the command did")),
        Ok(Err(Exchange::Malformed)) => return Err(failed("sent a malformed reply")),
        Ok(Ok(reply)) => reply,
    };
    let ended = match reply.end {
        End::Exited(code) => Ended::Exited(code),
        End::Signaled(signal) => Ended::Signaled(signal),
        End::TimedOut => Ended::TimedOut,
        End::NotFound => {
            return Err(Error::NotFound {
                unit: unit.to_owned(),
                program: program.clone(),
            });
        }
        End::ExecFailed(errno) => {
            return Err(Error::Run {
                unit: unit.to_owned(),
                program: program.clone(),
                source: io::Error::from_raw_os_error(errno),
            });
        }
        // The command did not start: it runs the direct way, and so does the rest of
        // this run's (the prober could not do its part once, it will not later).
        End::ProberFailed(errno) => {
            tracing::info!(
                unit,
                error = %io::Error::from_raw_os_error(errno),
                "the unit's prober cannot run commands: they enter the unit one by one"
            );
            let Ok(run) = prober.run.try_clone() else {
                return Ok(None);
            };
            probers.file(unit, Slot::Unavailable(run));
            return Ok(None);
        }
    };
    Ok(Some(EnterOutcome {
        ended,
        output: reply.output,
    }))
}

/// The prober of the run systemd names as the unit's current one (`MainPID`), started
/// if it has none; `None` when none can serve it.
async fn current_or_started(
    systemd: &Systemd,
    probers: &Probers,
    name: &UnitName,
    executable: &OwnedFd,
) -> Option<Arc<Prober>> {
    let (_, main_pid) = settings::main_pid(systemd, name).await.ok()?;
    if main_pid == 0 {
        return None;
    }
    match probers.current(name.as_str(), main_pid) {
        Current::Serving(prober) => Some(prober),
        Current::Unavailable => None,
        Current::Missing => start(systemd, probers, name, executable).await,
    }
}

/// Starts the unit's prober for its current run and files it; `None` (and the run marked
/// unavailable, when it could be read) when it cannot start.
async fn start(
    systemd: &Systemd,
    probers: &Probers,
    name: &UnitName,
    executable: &OwnedFd,
) -> Option<Arc<Prober>> {
    let unit = name.as_str();
    if probers.serving() >= MAX_PROBERS {
        return None;
    }
    let target = context::read(systemd, name).await.ok()?;
    let started = spawn_prober(&target, executable).await;
    let main_process = target.pidfd;
    let run = Run {
        main_pid: target.main_pid,
        main_process,
    };
    match started {
        Ok((socket, process)) => {
            let generation = probers.generation();
            let owner = own(process, probers.registry(), unit.to_owned(), generation);
            let prober = Arc::new(Prober {
                run,
                generation,
                socket,
                environment: target.environment,
                busy: tokio::sync::Mutex::default(),
                next_id: AtomicU32::new(1),
                owner,
                ends_with_its_run: target.stop_kills_every_process,
            });
            probers.file(unit, Slot::Serving(prober.clone()));
            tracing::debug!(unit, "started the unit's prober");
            Some(prober)
        }
        Err(error) => {
            tracing::info!(unit, %error, "no prober for this run of the unit: its commands enter it one by one");
            probers.file(unit, Slot::Unavailable(run));
            None
        }
    }
}

/// Starts `systemk-prober` in the target's context: systemk's end of its socket
/// (non-blocking, registered) and its process.
async fn spawn_prober(
    target: &context::Target,
    executable: &OwnedFd,
) -> Result<(AsyncFd<OwnedFd>, spawn::Child), Error> {
    let filters = seccomp::filters_of(target).await?;
    let prepared = child::Prepared::new(target, filters)?;
    let entering = |source: io::Error| Error::Entering {
        unit: target.unit.clone(),
        step: "starting the prober",
        source,
    };
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|errno| entering(errno.into()))?;
    nix::fcntl::fcntl(
        &ours,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|errno| entering(errno.into()))?;
    let program =
        spawn::Program::executable(executable.as_raw_fd(), &CString::from(c"systemk-prober"));
    let wiring = spawn::Wiring::Prober {
        socket: theirs.as_raw_fd(),
        main_process: target.pidfd.as_raw_fd(),
    };
    let spawned = spawn::spawn(&prepared, &program, wiring).map_err(|error| match error.step {
        Some(step) if step != spawn::EXEC_STEP => Error::Entering {
            unit: target.unit.clone(),
            step: child::step_name(step),
            source: error.source,
        },
        _ => entering(error.source),
    })?;
    drop(theirs);
    let socket = spawn::register_socket(ours).map_err(entering)?;
    Ok((socket, spawned.child))
}

/// The task that owns a prober's process: when it ends, the prober is forgotten (unless
/// another has taken its place). Aborted when the prober is dropped, which kills it.
fn own(
    mut process: spawn::Child,
    units: Weak<Units>,
    unit: String,
    generation: u64,
) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        let ended = process.wait().await;
        tracing::debug!(unit, ?ended, "the unit's prober ended");
        if let Some(units) = units.upgrade() {
            forget_in(&units, &unit, generation);
        }
    });
    task.abort_handle()
}

/// The request packet for `command`, its program looked up in the environment the
/// prober's run started with; `None` when it cannot be encoded (the direct way says why).
fn request(prober: &Prober, command: &EnterCommand) -> Option<(u32, Vec<u8>)> {
    let program = spawn::Program::new(&command.argv, &prober.environment)?;
    let bytes = |strings: &[CString]| strings.iter().map(|s| s.as_bytes().to_vec()).collect();
    let id = prober.next_id.fetch_add(1, Ordering::Relaxed);
    let request = Request {
        id,
        timeout_ms: u32::try_from(command.timeout.as_millis()).unwrap_or(u32::MAX),
        max_output: u32::try_from(command.max_output).ok()?,
        candidates: bytes(&program.candidates),
        argv: bytes(&program.argv),
        envp: bytes(&program.envp),
    };
    Some((id, request.encode()?))
}

/// Why an exchange with a prober gave no reply.
enum Exchange {
    /// The request could not be sent: the command did not start.
    NotSent,
    /// The prober closed its end after the request was sent.
    Ended,
    /// A reply that is not one, or answers a request not yet sent.
    Malformed,
}

/// Sends the request and reads its reply; replies to earlier requests (whose callers
/// stopped waiting) are skipped.
async fn exchange(
    socket: &AsyncFd<OwnedFd>,
    (id, packet): &(u32, Vec<u8>),
) -> Result<Reply, Exchange> {
    socket
        .async_io(Interest::WRITABLE, |fd| {
            send(fd.as_raw_fd(), packet, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
        })
        .await
        .map_err(|_| Exchange::NotSent)?;
    let mut buffer = vec![0u8; protocol::MAX_REPLY + 1];
    loop {
        let received = socket
            .async_io(Interest::READABLE, |fd| {
                recv(fd.as_raw_fd(), &mut buffer, MsgFlags::MSG_TRUNC).map_err(io::Error::from)
            })
            .await
            .map_err(|_| Exchange::Ended)?;
        if received == 0 {
            return Err(Exchange::Ended);
        }
        let reply = buffer
            .get(..received)
            .and_then(Reply::decode)
            .ok_or(Exchange::Malformed)?;
        match reply.id.cmp(id) {
            std::cmp::Ordering::Equal => return Ok(reply),
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Greater => return Err(Exchange::Malformed),
        }
    }
}
