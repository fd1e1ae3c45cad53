//! The command's side of an exec session, apart from the wire protocol (SPDY or a
//! WebSocket): wait until the client has opened every stream it asked for, start the
//! command, copy stdin to it, terminal sizes to its terminal and its stdout and stderr
//! back, then report how it ended. The transport and this side meet through bounded
//! channels; when the transport goes away the command is dropped, which kills it and its
//! process group. Layer 6.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::stream::kind::TerminalSize;
use super::stream::status::Outcome;
use crate::systemd::enter::{self, Ended, Input, Interactive, Output};

/// After the command ended, output still arriving is passed on until the pipes close or
/// stay quiet this long: a daemonised grandchild holding them open does not hold the
/// session.
const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Chunks of stdin in flight towards the command; the transport stops reading its socket
/// while they are not taken.
const STDIN_CHUNKS: usize = 8;
/// Chunks of output in flight towards the transport.
const OUTPUT_CHUNKS: usize = 8;
/// The most read from stdout or stderr at a time: one SPDY data frame as Go writes them.
const READ_CHUNK: usize = 32 * 1024;

/// What the command sends the transport, in order; `Done` is last.
#[derive(Debug, PartialEq, Eq)]
pub enum FromCommand {
    /// Bytes of stdout (with a terminal: of everything).
    Stdout(Vec<u8>),
    /// Bytes of stderr.
    Stderr(Vec<u8>),
    /// How it ended; the streams are to be closed and the status written.
    Done(Outcome),
}

/// The transport's ends of the channels.
pub struct TransportEnds {
    /// Send once every stream the client asked for is open: the command starts.
    pub ready: oneshot::Sender<()>,
    /// The client's stdin; dropping it is end of input.
    pub stdin: mpsc::Sender<Vec<u8>>,
    /// The latest terminal size.
    pub resize: watch::Sender<Option<TerminalSize>>,
    /// What the command sends.
    pub output: mpsc::Receiver<FromCommand>,
}

/// The command's ends of the channels.
pub struct CommandEnds {
    ready: oneshot::Receiver<()>,
    stdin: mpsc::Receiver<Vec<u8>>,
    resize: watch::Receiver<Option<TerminalSize>>,
    output: mpsc::Sender<FromCommand>,
}

/// A pair of connected ends.
pub fn channels() -> (TransportEnds, CommandEnds) {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_CHUNKS);
    let (resize_tx, resize_rx) = watch::channel(None);
    let (output_tx, output_rx) = mpsc::channel(OUTPUT_CHUNKS);
    (
        TransportEnds {
            ready: ready_tx,
            stdin: stdin_tx,
            resize: resize_tx,
            output: output_rx,
        },
        CommandEnds {
            ready: ready_rx,
            stdin: stdin_rx,
            resize: resize_rx,
            output: output_tx,
        },
    )
}

/// The client's stdin on its way to the command: chunks read from the socket wait here
/// until the command's channel takes them; the transport stops reading its socket while
/// [`StdinQueue::is_full`], so a command that does not read stdin holds the client back.
pub struct StdinQueue {
    sender: Option<mpsc::Sender<Vec<u8>>>,
    backlog: std::collections::VecDeque<Vec<u8>>,
    finished: bool,
}

/// Chunks read and not yet taken before the socket is left unread.
const MAX_STDIN_BACKLOG: usize = 4;

impl StdinQueue {
    /// A queue into `sender`.
    pub fn new(sender: mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            sender: Some(sender),
            backlog: std::collections::VecDeque::new(),
            finished: false,
        }
    }

    /// Bytes the client sent.
    pub fn push(&mut self, chunk: Vec<u8>) {
        if !self.finished {
            self.backlog.push_back(chunk);
        }
    }

    /// The client closed its stdin: the command's closes once the backlog is passed on.
    pub fn finish(&mut self) {
        self.finished = true;
        if self.backlog.is_empty() {
            self.sender = None;
        }
    }

    /// Whether the socket should wait.
    pub fn is_full(&self) -> bool {
        self.backlog.len() >= MAX_STDIN_BACKLOG
    }

    /// Passes the oldest chunk on once the command has room and returns its length; never
    /// completes while there is nothing to pass on. A command whose stdin is gone drops the
    /// backlog.
    pub async fn pass_on(&mut self) -> usize {
        let (Some(sender), false) = (&self.sender, self.backlog.is_empty()) else {
            return std::future::pending().await;
        };
        let Ok(permit) = sender.reserve().await else {
            self.backlog.clear();
            self.finished = true;
            self.sender = None;
            return 0;
        };
        let chunk = self.backlog.pop_front().unwrap_or_default();
        let len = chunk.len();
        permit.send(chunk);
        if self.finished && self.backlog.is_empty() {
            self.sender = None;
        }
        len
    }
}

impl CommandEnds {
    /// The ends a side that runs no command (attach) or a test drives by hand: ready,
    /// stdin, output; terminal sizes are not wanted.
    pub(super) fn into_parts(
        self,
    ) -> (
        oneshot::Receiver<()>,
        mpsc::Receiver<Vec<u8>>,
        mpsc::Sender<FromCommand>,
    ) {
        (self.ready, self.stdin, self.output)
    }
}

/// What `kubectl exec` reports for how the command ended: a signal is the shell's
/// 128 + signal, as runc reports it to the kubelet.
pub fn outcome(ended: Ended) -> Outcome {
    match ended {
        Ended::Exited(0) => Outcome::Success,
        Ended::Exited(code) => Outcome::Exited(code),
        Ended::Signaled(signal) => Outcome::Exited(128 + signal),
        Ended::TimedOut => Outcome::Failed("the command timed out".into()),
    }
}

/// How long a command with a terminal waits for the client's first size, which kubectl
/// sends as soon as its streams are open: the command then starts with the right size
/// rather than 0x0 (`stty size` at once would see that).
const FIRST_SIZE: Duration = Duration::from_millis(500);

/// Runs the command side: waits for the transport's go (and with a `terminal`, briefly, for
/// its first size), starts the command with `start`, copies, reports. Returns early
/// (killing the command) when the transport is gone.
pub async fn run(
    ends: CommandEnds,
    terminal: bool,
    start: impl Future<Output = Result<Interactive, enter::Error>>,
) {
    let CommandEnds {
        ready,
        stdin,
        mut resize,
        output,
    } = ends;
    if ready.await.is_err() {
        return;
    }
    if terminal {
        let _ = tokio::time::timeout(FIRST_SIZE, resize.wait_for(Option::is_some)).await;
    }
    let mut command = match start.await {
        Ok(command) => command,
        Err(error) => {
            let message = crate::error_chain::chain(&error);
            let _ = output
                .send(FromCommand::Done(Outcome::Failed(message)))
                .await;
            return;
        }
    };
    let size = *resize.borrow_and_update();
    if let Some(size) = size {
        let _ = command.resize(size.width, size.height);
    }
    let feed = feed_stdin(command.stdin.take(), stdin);
    let copy = async {
        let mut stdout = command.stdout.take();
        let mut stderr = command.stderr.take();
        let (mut out_buf, mut err_buf) = (vec![0u8; READ_CHUNK], vec![0u8; READ_CHUNK]);
        let mut ended: Option<Ended> = None;
        let mut quiet_until = Instant::now();
        loop {
            if ended.is_some() && stdout.is_none() && stderr.is_none() {
                break;
            }
            let message = tokio::select! {
                read = read_some(&mut stdout, &mut out_buf) => {
                    FromCommand::Stdout(out_buf[..read].to_vec())
                }
                read = read_some(&mut stderr, &mut err_buf) => {
                    FromCommand::Stderr(err_buf[..read].to_vec())
                }
                changed = resize.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    let size = *resize.borrow_and_update();
                    if let Some(size) = size {
                        let _ = command.resize(size.width, size.height);
                    }
                    continue;
                }
                status = command.wait(), if ended.is_none() => {
                    ended = Some(status.unwrap_or(Ended::Exited(-1)));
                    quiet_until = Instant::now() + DRAIN_IDLE;
                    continue;
                }
                () = tokio::time::sleep_until(quiet_until), if ended.is_some() => break,
                () = output.closed() => return None,
            };
            if matches!(&message, FromCommand::Stdout(b) | FromCommand::Stderr(b) if b.is_empty()) {
                continue;
            }
            quiet_until = Instant::now() + DRAIN_IDLE;
            if output.send(message).await.is_err() {
                return None;
            }
        }
        ended
    };
    let ended = tokio::select! {
        ended = copy => ended,
        () = feed => None,
    };
    if let Some(ended) = ended {
        let _ = output.send(FromCommand::Done(outcome(ended))).await;
    }
}

/// Copies the client's stdin to the command until either ends, then closes the command's
/// stdin; never completes, so it only ever runs beside the copy of the output.
async fn feed_stdin(input: Option<Input>, mut chunks: mpsc::Receiver<Vec<u8>>) {
    if let Some(mut input) = input {
        while let Some(chunk) = chunks.recv().await {
            if input.write_all(&chunk).await.is_err() || input.flush().await.is_err() {
                break;
            }
        }
    }
    std::future::pending().await
}

/// Reads from a stream; 0 at its end (or on an error), which closes it. A closed stream
/// never completes again, so `select!` keeps waiting on the others.
async fn read_some(output: &mut Option<Output>, buffer: &mut [u8]) -> usize {
    let Some(reader) = output.as_mut() else {
        return std::future::pending().await;
    };
    match reader.read(buffer).await {
        Ok(0) | Err(_) => {
            *output = None;
            0
        }
        Ok(read) => read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals_become_what_kubectl_exec_reports() {
        assert_eq!(outcome(Ended::Exited(0)), Outcome::Success);
        assert_eq!(outcome(Ended::Exited(3)), Outcome::Exited(3));
        assert_eq!(outcome(Ended::Signaled(9)), Outcome::Exited(137));
    }

    #[tokio::test]
    async fn a_command_that_cannot_start_is_reported_as_failed() {
        let (mut transport, command) = channels();
        transport.ready.send(()).unwrap();
        let start = async {
            Err(enter::Error::EmptyCommand {
                unit: "systemk.a.b.c.service".into(),
            })
        };
        run(command, false, start).await;
        let Some(FromCommand::Done(Outcome::Failed(message))) = transport.output.recv().await
        else {
            panic!("no failure reported");
        };
        assert!(message.contains("empty"), "{message}");
    }

    #[tokio::test]
    async fn nothing_starts_when_the_transport_gives_up_before_ready() {
        let (transport, command) = channels();
        drop(transport);
        let start = async { panic!("started without the streams") };
        run(command, false, start).await;
    }
}
