//! Runs a command in a running container's context: the primitive behind exec probes,
//! lifecycle hooks and `kubectl exec`. Layer 3 (systemd): everything comes from systemd
//! (D-Bus properties) and the unit's main process, never from the pod spec.
//!
//! Not a transient unit per call: that costs PID 1 a fork, a cgroup and a D-Bus job per
//! probe. Instead a child of systemk joins the unit's cgroups, enters the main process's
//! mount, IPC and UTS namespaces through a pidfd, takes the unit's credentials and
//! capabilities and installs copies of its seccomp filters before `execve`. Any step that
//! fails stops the command from running (fail closed).

mod child;
mod context;
mod interactive;
mod output;
mod pidfd;
mod prober;
pub(super) mod probers;
pub mod protocol;
mod seccomp;
mod settings;
mod spawn;
mod terminal;

pub use interactive::{Input, Interactive, Output, Streams, spawn_in_unit};

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::client::Systemd;

/// What to run and how long to let it run.
#[derive(Debug, Clone)]
pub struct EnterCommand {
    /// The program and its arguments; the program is looked up in the container's `PATH`
    /// inside its own mount namespace.
    pub argv: Vec<String>,
    /// After this long the command's process group is killed with SIGKILL.
    pub timeout: Duration,
    /// How many bytes of output to keep (the last ones).
    pub max_output: usize,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal (this number) killed it.
    Signaled(i32),
    /// It outlived its timeout and was killed.
    TimedOut,
}

/// The end of a command and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterOutcome {
    /// How it ended.
    pub ended: Ended,
    /// stdout and stderr interleaved as they were read: the last `max_output` bytes.
    pub output: Vec<u8>,
}

/// The step of entering that failed; the command did not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The unit name is not one systemd accepts.
    #[error("{unit:?} is not a valid unit name")]
    InvalidUnit {
        /// The name given.
        unit: String,
    },
    /// The command has no program.
    #[error("the command to run in {unit} is empty")]
    EmptyCommand {
        /// The unit.
        unit: String,
    },
    /// systemd could not be asked about the unit.
    #[error("reading the properties of {unit}: {source}")]
    Properties {
        /// The unit.
        unit: String,
        /// What D-Bus said.
        #[source]
        source: zbus::Error,
    },
    /// The unit has no main process (not running).
    #[error("{unit} is not running (no MainPID)")]
    NotRunning {
        /// The unit.
        unit: String,
    },
    /// The main process is gone, or is no longer in the unit's cgroup.
    #[error("the main process {pid} of {unit} is gone or left the unit: {reason}")]
    MainProcess {
        /// The unit.
        unit: String,
        /// Its MainPID.
        pid: u32,
        /// What did not match.
        reason: String,
    },
    /// The unit's user or groups could not be resolved.
    #[error("the credentials of {unit}: {reason}")]
    Credentials {
        /// The unit.
        unit: String,
        /// What could not be resolved.
        reason: String,
    },
    /// The unit's cgroups could not be opened.
    #[error("opening the cgroup {path} of {unit}: {source}")]
    Cgroup {
        /// The unit.
        unit: String,
        /// The `cgroup.procs` file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The seccomp filters of the main process could not be copied.
    #[error("copying the seccomp filters of {unit}: {reason}")]
    Seccomp {
        /// The unit.
        unit: String,
        /// What failed.
        reason: String,
    },
    /// A step in the child before `execve` failed.
    #[error("entering {unit}: {step} failed: {source}")]
    Entering {
        /// The unit.
        unit: String,
        /// The step (cgroup, namespaces, credentials, capabilities, seccomp…).
        step: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The program is not in the container's view.
    #[error("{program:?} not found in {unit}")]
    NotFound {
        /// The unit.
        unit: String,
        /// The program.
        program: String,
    },
    /// `execve` or waiting failed otherwise.
    #[error("running {program:?} in {unit}: {source}")]
    Run {
        /// The unit.
        unit: String,
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Runs `command` in the context of the running unit `unit`: its cgroup, mount, IPC and
/// UTS namespaces, user and groups, capabilities, no-new-privileges, seccomp filters,
/// environment and working directory. Output is bounded; the command is killed (its
/// whole process group) when it outlives its timeout. `systemd`'s bus connection reads
/// the unit's properties: a probe every second pays no connection handshake.
///
/// The unit's resident prober runs it when it has one (started on the first command of
/// each run of the main process; [`prober`]); otherwise systemk enters the unit for this
/// command alone.
pub async fn run_in_unit(
    systemd: &Systemd,
    unit: &str,
    command: EnterCommand,
) -> Result<EnterOutcome, Error> {
    match prober::run(systemd, unit, &command).await? {
        Some(outcome) => Ok(outcome),
        None => run_directly(systemd, unit, command).await,
    }
}

/// [`run_in_unit`] by entering the unit for this one command.
async fn run_directly(
    systemd: &Systemd,
    unit: &str,
    command: EnterCommand,
) -> Result<EnterOutcome, Error> {
    let output_only = spawn::Wiring::Pipes {
        stdin: false,
        stdout: true,
        stderr: true,
    };
    let (spawned, program) = start(systemd, unit, &command.argv, |_| Ok(output_only)).await?;
    let spawn::Spawned {
        child: mut running,
        mut stdout,
        mut stderr,
        ..
    } = spawned;
    let group = running.id();
    let mut kept = output::Bounded::new(command.max_output);
    let run_failed = |source| Error::Run {
        unit: unit.to_owned(),
        program: program.clone(),
        source,
    };

    let deadline = tokio::time::sleep(command.timeout);
    tokio::pin!(deadline);
    let mut out_buf = [0u8; 4096];
    let mut err_buf = [0u8; 4096];
    let status = loop {
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => kept.take(&out_buf[..read]),
            read = read_some(&mut stderr, &mut err_buf) => kept.take(&err_buf[..read]),
            status = running.wait() => break Some(status.map_err(run_failed)?),
            () = &mut deadline => break None,
        }
    };
    let ended = match status {
        Some(spawn::Exit::Code(code)) => Ended::Exited(code),
        Some(spawn::Exit::Signal(signal)) => Ended::Signaled(signal),
        None => {
            child::kill_group(group);
            running.wait().await.map_err(run_failed)?;
            Ended::TimedOut
        }
    };
    // What is still in the pipes; a daemonised grandchild holding them open does not
    // hold the caller: this drain is bounded in time.
    let drain = async {
        while stdout.is_some() || stderr.is_some() {
            tokio::select! {
                read = read_some(&mut stdout, &mut out_buf) => kept.take(&out_buf[..read]),
                read = read_some(&mut stderr, &mut err_buf) => kept.take(&err_buf[..read]),
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN, drain).await;
    Ok(EnterOutcome {
        ended,
        output: kept.into_bytes(),
    })
}

/// What running a command in a unit always does: check the name and the command, read
/// the unit's context, prepare the entering steps and start the child, its streams
/// connected as `wiring` says (given the unit's context, e.g. to own a terminal). Returns
/// the started command and its program's name.
async fn start(
    systemd: &Systemd,
    unit: &str,
    argv: &[String],
    wiring: impl FnOnce(&context::Target) -> Result<spawn::Wiring, Error>,
) -> Result<(spawn::Spawned, String), Error> {
    let name =
        crate::unit::UnitName::try_from(unit.to_owned()).map_err(|_| Error::InvalidUnit {
            unit: unit.to_owned(),
        })?;
    let program = argv.first().cloned().ok_or_else(|| Error::EmptyCommand {
        unit: unit.to_owned(),
    })?;
    let target = context::read(systemd, &name).await?;
    let filters = seccomp::filters_of(&target).await?;
    let prepared = child::Prepared::new(&target, filters)?;
    let to_run = spawn::Program::new(argv, &target.environment).ok_or_else(|| Error::Run {
        unit: unit.to_owned(),
        program: program.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the command"),
    })?;
    let wiring = wiring(&target)?;
    let spawned = spawn::spawn(&prepared, &to_run, wiring).map_err(|error| match error.step {
        Some(spawn::EXEC_STEP) if error.source.kind() == io::ErrorKind::NotFound => {
            Error::NotFound {
                unit: unit.to_owned(),
                program: program.clone(),
            }
        }
        Some(spawn::EXEC_STEP) | None => Error::Run {
            unit: unit.to_owned(),
            program: program.clone(),
            source: error.source,
        },
        Some(step) => Error::Entering {
            unit: unit.to_owned(),
            step: child::step_name(step),
            source: error.source,
        },
    })?;
    Ok((spawned, program))
}

/// How long output written before the command ended may still be read after it ended.
const DRAIN: Duration = Duration::from_millis(200);

/// Reads from a pipe; 0 at its end (or on an error), which closes it. A closed pipe
/// never completes again, so `select!` keeps waiting on the others.
async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buffer: &mut [u8],
) -> usize {
    let Some(reader) = pipe.as_mut() else {
        return std::future::pending().await;
    };
    match reader.read(buffer).await {
        Ok(0) | Err(_) => {
            *pipe = None;
            0
        }
        Ok(read) => read,
    }
}
