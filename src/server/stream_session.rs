//! The SPDY/3.1 side of an exec or attach session, after the 101: the socket loop that feeds the
//! protocol state machine ([`super::stream::spdy::Session`]) and the command's channels
//! ([`super::remote_command`]). As the kubelet (`createHTTPStreamStreams`,
//! `v4ProtocolHandler.waitForStreams`): every stream the client opens is answered at once;
//! the command starts when as many streams as the request asked for are open, or the
//! session ends after the stream creation timeout; stdout and stderr end with FIN, the
//! status goes on the error stream, then GOAWAY. The socket is not read while the
//! command has not taken the stdin already read. Layer 6.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::remote_command::{FromCommand, StdinQueue, TransportEnds};
use super::stream::kind::{RemoteCommandStream, ResizeDecoder};
use super::stream::spdy::session::{GOAWAY_OK, RST_REFUSED_STREAM};
use super::stream::spdy::{Event, Headers, Session, SessionLimits};
use super::stream::status::status_json;

/// How long the client has to open its streams (the kubelet's
/// `DefaultStreamCreationTimeout`).
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// What one socket read takes.
const READ_BUFFER: usize = 64 * 1024;

/// The streams an exec request asks for besides the error stream, which is always there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// `input=1`.
    pub stdin: bool,
    /// `output=1`.
    pub stdout: bool,
    /// `error=1` without a terminal.
    pub stderr: bool,
    /// `tty=1`: terminal sizes.
    pub resize: bool,
}

impl Expected {
    /// How many streams the client opens.
    pub fn count(self) -> usize {
        1 + [self.stdin, self.stdout, self.stderr, self.resize]
            .into_iter()
            .filter(|wanted| *wanted)
            .count()
    }
}

/// The ids of the streams the client opened, by role.
#[derive(Debug, Default)]
struct Ids {
    error: Option<u32>,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
    opened: usize,
}

impl Ids {
    fn record(&mut self, kind: RemoteCommandStream, id: u32) {
        let slot = match kind {
            RemoteCommandStream::Error => &mut self.error,
            RemoteCommandStream::Stdin => &mut self.stdin,
            RemoteCommandStream::Stdout => &mut self.stdout,
            RemoteCommandStream::Stderr => &mut self.stderr,
            RemoteCommandStream::Resize => &mut self.resize,
        };
        *slot = Some(id);
        self.opened += 1;
    }
}

/// Data for the peer that the windows have not taken yet, in order.
#[derive(Default)]
pub(super) struct Outbox(VecDeque<(u32, Vec<u8>, bool)>);

impl Outbox {
    pub(super) fn push(&mut self, stream: Option<u32>, data: Vec<u8>, fin: bool) {
        if let Some(stream) = stream {
            self.0.push_back((stream, data, fin));
        }
    }

    /// Sends what the windows allow; a stream the peer closed drops its data.
    pub(super) fn flush(&mut self, session: &mut Session) {
        while let Some((stream, data, fin)) = self.0.front_mut() {
            match session.send_data(*stream, data, *fin) {
                Ok(sent) if sent < data.len() => {
                    data.drain(..sent);
                    return;
                }
                Ok(_) | Err(_) => {
                    self.0.pop_front();
                }
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How long a session waits: for the client's streams, then for any frame either way.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the 101 until every stream the request asked for is open.
    pub creation: Duration,
    /// Without a frame read or written.
    pub idle: Duration,
}

/// Runs the session on `io` until the command has ended and its status is written, the
/// client goes away, the streams do not come in time or the session idles too long.
pub async fn serve<IO: AsyncRead + AsyncWrite + Unpin>(
    io: IO,
    expected: Expected,
    ends: TransportEnds,
    timeouts: Timeouts,
) {
    let TransportEnds {
        ready,
        stdin,
        resize,
        mut output,
    } = ends;
    let Ok(mut session) = Session::new(SessionLimits::default()) else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut ready = Some(ready);
    let mut stdin = StdinQueue::new(stdin);
    let mut sizes = ResizeDecoder::default();
    let mut ids = Ids::default();
    let mut outbox = Outbox::default();
    let mut closing = false;
    let (mut input, mut buffer) = (Vec::new(), vec![0u8; READ_BUFFER]);
    let mut events = Vec::new();
    let deadline = tokio::time::sleep(timeouts.creation);
    tokio::pin!(deadline);
    let idle = tokio::time::sleep(timeouts.idle);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            read = reader.read(&mut buffer), if !stdin.is_full() => {
                let Ok(read @ 1..) = read else { break };
                idle.as_mut().reset(tokio::time::Instant::now() + timeouts.idle);
                input.extend_from_slice(&buffer[..read]);
                let received = session.receive(&input, &mut events);
                let Ok(used) = received else {
                    tracing::info!(error = ?received.err(), "remote command: SPDY session error");
                    let _ = writer.write_all(&session.take_output()).await;
                    break;
                };
                input.drain(..used);
                for event in events.drain(..) {
                    match event {
                        Event::Opened { stream_id, headers } => {
                            let kind = RemoteCommandStream::from_headers(&headers);
                            match kind {
                                Ok(kind) if ready.is_some() => {
                                    let _ = session.reply(stream_id, &Headers::new(), false);
                                    ids.record(kind, stream_id);
                                }
                                _ => {
                                    let _ = session.reset(stream_id, RST_REFUSED_STREAM);
                                }
                            }
                        }
                        Event::Data { stream_id, data } => {
                            if Some(stream_id) == ids.stdin {
                                stdin.push(data);
                                continue;
                            }
                            let _ = session.consumed(stream_id, data.len());
                            if Some(stream_id) == ids.resize {
                                match sizes.push(&data) {
                                    Ok(new) => {
                                        if let Some(size) = new.last() {
                                            resize.send_replace(Some(*size));
                                        }
                                    }
                                    Err(error) => tracing::info!(%error, "remote command: bad terminal size"),
                                }
                            }
                        }
                        Event::Finished { stream_id } | Event::Reset { stream_id, .. } => {
                            if Some(stream_id) == ids.stdin {
                                stdin.finish();
                            }
                        }
                        Event::GoAway => {}
                    }
                }
            }
            passed = stdin.pass_on() => {
                if let Some(id) = ids.stdin {
                    let _ = session.consumed(id, passed);
                }
            }
            message = output.recv(), if ready.is_none() && outbox.is_empty() && !closing => {
                match message {
                    Some(FromCommand::Stdout(data)) => outbox.push(ids.stdout, data, false),
                    Some(FromCommand::Stderr(data)) => outbox.push(ids.stderr, data, false),
                    Some(FromCommand::Done(outcome)) => {
                        outbox.push(ids.stdout, Vec::new(), true);
                        outbox.push(ids.stderr, Vec::new(), true);
                        outbox.push(ids.error, status_json(&outcome), true);
                        closing = true;
                    }
                    None => break,
                }
            }
            () = &mut idle => {
                tracing::info!(idle = ?timeouts.idle, "remote command: the session idled too long");
                break;
            }
            () = &mut deadline, if ready.is_some() => {
                tracing::info!(
                    opened = ids.opened,
                    expected = expected.count(),
                    "remote command: timed out waiting for the client to create its streams"
                );
                break;
            }
        }
        if ids.opened >= expected.count()
            && let Some(ready) = ready.take()
        {
            let _ = ready.send(());
        }
        outbox.flush(&mut session);
        if closing && outbox.is_empty() {
            let _ = session.go_away(GOAWAY_OK);
        }
        let frames = session.take_output();
        if !frames.is_empty() {
            if writer.write_all(&frames).await.is_err() {
                break;
            }
            idle.as_mut()
                .reset(tokio::time::Instant::now() + timeouts.idle);
        }
        if closing && outbox.is_empty() {
            let _ = writer.shutdown().await;
            break;
        }
    }
}

#[cfg(test)]
#[path = "stream_session/tests.rs"]
mod tests;
