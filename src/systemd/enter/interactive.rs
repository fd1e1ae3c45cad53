//! A command in a unit's context whose standard streams belong to the caller (`kubectl
//! exec`, `kubectl cp`): pipes, or one pseudo-terminal for all three; no timeout; the end
//! as a future. Dropping it kills the command's whole process group (or session) with
//! SIGKILL: closing the stream ends the command and what it started. A grandchild that
//! left the group (`setsid`, a daemon) escapes that kill but not the unit's cgroup: it
//! ends with the container. Layer 3.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

use super::{Ended, Error, child, spawn, start, terminal};
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
    child: spawn::Child,
    /// Its own process group (pipes) or session (terminal): the same number.
    group: u32,
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
        Ok(match self.child.wait().await? {
            spawn::Exit::Code(code) => Ended::Exited(code),
            spawn::Exit::Signal(signal) => Ended::Signaled(signal),
        })
    }
}

impl Drop for Interactive {
    /// Also once the command itself has ended: what it left running in its group goes.
    fn drop(&mut self) {
        child::kill_group(self.group);
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
    let terminal_failed = |source| Error::Entering {
        unit: unit.to_owned(),
        step: "opening a terminal",
        source,
    };
    let mut pty = None;
    let (spawned, _) = start(systemd, unit, argv, |target| match streams {
        Streams::Pipes {
            stdin,
            stdout,
            stderr,
        } => Ok(spawn::Wiring::Pipes {
            stdin,
            stdout,
            stderr,
        }),
        Streams::Terminal => {
            let credentials = &target.status.credentials;
            let opened =
                terminal::open(credentials.uid, credentials.gid).map_err(terminal_failed)?;
            let slave = opened.slave.as_raw_fd();
            pty = Some(opened);
            Ok(spawn::Wiring::Terminal(slave))
        }
    })
    .await?;
    let group = spawned.child.id();
    // The parent's slave closes here: the terminal ends when the command's last copy does.
    let master = pty.map(|pty| pty.master);
    let (stdin, stdout, stderr) = match &master {
        Some(master) => {
            let (reader, writer) = master_halves(master).map_err(terminal_failed)?;
            (Some(writer), Some(reader), None)
        }
        None => (
            spawned.stdin.map(|w| Box::new(w) as Input),
            spawned.stdout.map(|r| Box::new(r) as Output),
            spawned.stderr.map(|r| Box::new(r) as Output),
        ),
    };
    Ok(Interactive {
        child: spawned.child,
        group,
        stdin,
        stdout,
        stderr,
        terminal: master,
    })
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
