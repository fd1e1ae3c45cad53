//! A command in a unit's context whose standard streams belong to the caller (`kubectl
//! exec`, `kubectl cp`): pipes, or one pseudo-terminal for all three; no timeout; the end
//! as a future. Dropping it kills the command's whole process group (or session) with
//! SIGKILL: closing the stream ends the command and what it started. A grandchild that
//! left the group (`setsid`, a daemon) escapes that kill but not the unit's cgroup: it
//! ends with the container. Layer 3.

use std::io;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;
use tokio::process::Child;

use super::{Ended, Error, child, ended_of, spawn, terminal};
use crate::systemd::Systemd;

/// How the command's standard streams are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// One pipe for each stream asked for; the others are `/dev/null`.
    Pipes {
        /// A pipe the caller writes the command's input to.
        stdin: bool,
        /// A pipe the caller reads the command's output from.
        stdout: bool,
        /// A pipe the caller reads the command's errors from.
        stderr: bool,
    },
    /// A pseudo-terminal as stdin, stdout and stderr, and as controlling terminal: the
    /// caller writes to [`Interactive::stdin`] and reads [`Interactive::stdout`].
    Terminal,
}

/// The command's input, for the caller to write.
pub type Input = Box<dyn AsyncWrite + Send + Unpin>;
/// The command's output, for the caller to read; an error reads as its end (a terminal
/// whose last slave closed says `EIO`).
pub type Output = Box<dyn AsyncRead + Send + Unpin>;

/// A running command; dropping it kills its process group.
pub struct Interactive {
    child: Child,
    /// Its own process group (pipes) or session (terminal): the same number.
    group: Option<u32>,
    /// Its stdin, when asked for; dropping it is end of input.
    pub stdin: Option<Input>,
    /// Its stdout (with a terminal: everything it writes), when asked for.
    pub stdout: Option<Output>,
    /// Its stderr, when asked for without a terminal.
    pub stderr: Option<Output>,
    /// The terminal's master, to resize it.
    terminal: Option<OwnedFd>,
}

impl Interactive {
    /// Sets the terminal's size; without a terminal there is nothing to size.
    pub fn resize(&self, columns: u16, rows: u16) -> io::Result<()> {
        match &self.terminal {
            Some(master) => terminal::set_size(master, columns, rows),
            None => Ok(()),
        }
    }

    /// Waits for the command to end (not for what it started).
    pub async fn wait(&mut self) -> io::Result<Ended> {
        self.child.wait().await.map(ended_of)
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            child::kill_group(group);
        }
    }
}

/// Starts `argv` in the context of the running unit `unit` (as [`super::run_in_unit`]
/// enters it) with its streams connected as `streams` says.
pub async fn spawn_in_unit(
    systemd: &Systemd,
    unit: &str,
    argv: &[String],
    streams: Streams,
) -> Result<Interactive, Error> {
    let mut master = None;
    let (mut child, _) = spawn(systemd, unit, argv, |process, target| {
        match streams {
            Streams::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                process
                    .stdin(piped_if(stdin))
                    .stdout(piped_if(stdout))
                    .stderr(piped_if(stderr))
                    .process_group(0);
            }
            Streams::Terminal => {
                let credentials = &target.status.credentials;
                let failed = |source| Error::Entering {
                    unit: unit.to_owned(),
                    step: "opening a terminal",
                    source,
                };
                let pty = terminal::open(credentials.uid, credentials.gid).map_err(failed)?;
                let slave = |pty: &terminal::Pty| pty.slave.try_clone().map(Stdio::from);
                process
                    .stdin(slave(&pty).map_err(failed)?)
                    .stdout(slave(&pty).map_err(failed)?)
                    .stderr(slave(&pty).map_err(failed)?);
                terminal::become_session_leader(process);
                master = Some(pty.master);
            }
        }
        Ok(())
    })
    .await?;
    let group = child.id();
    let (stdin, stdout, stderr) = match &master {
        Some(master) => {
            let io_failed = |source| Error::Entering {
                unit: unit.to_owned(),
                step: "opening a terminal",
                source,
            };
            let (reader, writer) = master_halves(master).map_err(io_failed)?;
            (Some(writer), Some(reader), None)
        }
        None => (
            child.stdin.take().map(|w| Box::new(w) as Input),
            child.stdout.take().map(|r| Box::new(r) as Output),
            child.stderr.take().map(|r| Box::new(r) as Output),
        ),
    };
    Ok(Interactive {
        child,
        group,
        stdin,
        stdout,
        stderr,
        terminal: master,
    })
}

fn piped_if(wanted: bool) -> Stdio {
    if wanted {
        Stdio::piped()
    } else {
        Stdio::null()
    }
}

/// A reader and a writer on the terminal's master, each its own non-blocking descriptor.
fn master_halves(master: &OwnedFd) -> io::Result<(Output, Input)> {
    let flags = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    let reader = pipe::Receiver::from_owned_fd_unchecked(master.try_clone()?)?;
    let writer = pipe::Sender::from_owned_fd_unchecked(master.try_clone()?)?;
    Ok((Box::new(reader), Box::new(writer)))
}
