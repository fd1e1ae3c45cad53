//! The SPDY/3.1 side of a port-forward session, after the 101 (kubelet
//! `portforward/httpstream.go`): every stream with valid `port`, `streamType` and
//! `requestID` headers is answered at once (others are refused), the two streams of a
//! request are paired ([`crate::server::stream::pairs`]), and each complete pair gets its own forwarded
//! connection ([`super::connection`]); when that ends, both streams end with FIN. The
//! session runs until the client closes the connection or it idles too long. The socket is
//! not read while the client's bytes not yet taken by the pod's ports are over a bound.
//! Layer 6.

use std::collections::{HashMap, VecDeque};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::connection::{self, Forwarded, INBOUND_CHUNKS, Target};
use crate::server::stream::kind::PortForwardStream;
use crate::server::stream::pairs::{Pair, Pairs, Refused};
use crate::server::stream::spdy::session::RST_REFUSED_STREAM;
use crate::server::stream::spdy::{Event, Headers, Session, SessionLimits};
use crate::server::stream_session::{Outbox, Timeouts};

/// What one socket read takes.
const READ_BUFFER: usize = 64 * 1024;
/// The client's bytes held for the pod's ports, over all connections, before the socket
/// is no longer read.
const MAX_HELD: usize = 1 << 20;
/// Reports from the connections waiting for the session.
const REPORTS: usize = 64;

/// A forwarded connection, by its data stream.
struct Forward {
    error: u32,
    /// `None` once the client finished the data stream and everything before went out.
    to_pod: Option<mpsc::Sender<Vec<u8>>>,
    /// The client's bytes the connection has not taken yet.
    waiting: VecDeque<Vec<u8>>,
    /// The client's bytes the connection took and has not written yet.
    in_flight: usize,
    finished: bool,
}

impl Forward {
    /// Hands the waiting bytes on while the connection has room; returns how many bytes
    /// it dropped because the connection is gone.
    fn pass_on(&mut self) -> usize {
        while let Some(sender) = &self.to_pod {
            let Some(chunk) = self.waiting.pop_front() else {
                if self.finished {
                    self.to_pod = None;
                }
                return 0;
            };
            let len = chunk.len();
            match sender.try_send(chunk) {
                Ok(()) => self.in_flight += len,
                Err(mpsc::error::TrySendError::Full(chunk)) => {
                    self.waiting.push_front(chunk);
                    return 0;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    let rest: usize = self.waiting.drain(..).map(|c| c.len()).sum();
                    self.to_pod = None;
                    return len + rest;
                }
            }
        }
        0
    }
}

/// Runs the session on `io`.
pub async fn serve<IO: AsyncRead + AsyncWrite + Unpin>(io: IO, target: Target, timeouts: Timeouts) {
    let Ok(mut session) = Session::new(SessionLimits::default()) else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(io);
    let (reports, mut from_forwards) = mpsc::channel(REPORTS);
    let mut pairs = Pairs::new(timeouts.creation);
    let mut forwards: HashMap<u32, Forward> = HashMap::new();
    // Bytes on data streams whose error stream has not come yet.
    let mut early: HashMap<u32, VecDeque<Vec<u8>>> = HashMap::new();
    let mut outbox = Outbox::default();
    let mut held = 0usize;
    let (mut input, mut buffer) = (Vec::new(), vec![0u8; READ_BUFFER]);
    let mut events = Vec::new();
    let idle = tokio::time::sleep(timeouts.idle);
    tokio::pin!(idle);
    loop {
        let expiry = pairs.next_deadline().map(Instant::from_std);
        tokio::select! {
            read = reader.read(&mut buffer), if held < MAX_HELD => {
                let Ok(read @ 1..) = read else { break };
                input.extend_from_slice(&buffer[..read]);
                let received = session.receive(&input, &mut events);
                let Ok(used) = received else {
                    tracing::info!(error = ?received.err(), "port-forward: SPDY session error");
                    let _ = writer.write_all(&session.take_output()).await;
                    break;
                };
                input.drain(..used);
                for event in events.drain(..) {
                    match event {
                        Event::Opened { stream_id, headers } => {
                            let opened = open(&mut session, &mut pairs, stream_id, &headers);
                            match opened {
                                Ok(Some(pair)) => {
                                    let mut forward = start(pair, &target, &reports);
                                    forward.waiting = early.remove(&pair.data).unwrap_or_default();
                                    forwards.insert(pair.data, forward);
                                }
                                Ok(None) => {}
                                Err(refused) => {
                                    let _ = session.reset(stream_id, RST_REFUSED_STREAM);
                                    outbox.push(refused.error, refused.message.into_bytes(), false);
                                }
                            }
                        }
                        Event::Data { stream_id, data } => match forwards.get_mut(&stream_id) {
                            Some(forward) => {
                                held += data.len();
                                forward.waiting.push_back(data);
                            }
                            None if pairs.is_waiting_data(stream_id) => {
                                held += data.len();
                                early.entry(stream_id).or_default().push_back(data);
                            }
                            None => {
                                let _ = session.consumed(stream_id, data.len());
                            }
                        },
                        Event::Finished { stream_id } | Event::Reset { stream_id, .. } => {
                            if let Some(forward) = forwards.get_mut(&stream_id) {
                                forward.finished = true;
                            }
                        }
                        Event::GoAway => {}
                    }
                }
            }
            report = from_forwards.recv(), if outbox.is_empty() => {
                match report {
                    Some(Forwarded::Data { key, bytes }) => outbox.push(Some(key), bytes, false),
                    Some(Forwarded::Written { key, len }) => {
                        if let Some(forward) = forwards.get_mut(&key) {
                            forward.in_flight = forward.in_flight.saturating_sub(len);
                        }
                        held = held.saturating_sub(len);
                        let _ = session.consumed(key, len);
                    }
                    Some(Forwarded::Ended { key, error }) => {
                        if let Some(forward) = forwards.remove(&key) {
                            // What the connection never wrote: its reports are all in.
                            let waiting: usize = forward.waiting.iter().map(Vec::len).sum();
                            held = held.saturating_sub(waiting + forward.in_flight);
                            if let Some(error) = error {
                                outbox.push(Some(forward.error), error.into_bytes(), false);
                            }
                            outbox.push(Some(key), Vec::new(), true);
                            outbox.push(Some(forward.error), Vec::new(), true);
                        }
                    }
                    None => break,
                }
            }
            () = sleep_until(expiry), if expiry.is_some() => {
                for (streams, Refused { error, message }) in pairs.expire(std::time::Instant::now()) {
                    tracing::info!(message, "port-forward: a stream pair did not complete");
                    outbox.push(error, message.into_bytes(), false);
                    for stream in streams {
                        let dropped = early.remove(&stream).unwrap_or_default();
                        held = held.saturating_sub(dropped.iter().map(Vec::len).sum());
                        outbox.push(Some(stream), Vec::new(), true);
                    }
                }
            }
            () = &mut idle => {
                tracing::info!(idle = ?timeouts.idle, "port-forward: the session idled too long");
                break;
            }
        }
        for forward in forwards.values_mut() {
            held = held.saturating_sub(forward.pass_on());
        }
        outbox.flush(&mut session);
        let frames = session.take_output();
        if !frames.is_empty() && writer.write_all(&frames).await.is_err() {
            break;
        }
        idle.as_mut().reset(Instant::now() + timeouts.idle);
    }
}

/// Answers a new stream and pairs it; a stream with bad headers is refused as the kubelet's
/// `httpStreamReceived` refuses it.
fn open(
    session: &mut Session,
    pairs: &mut Pairs,
    stream_id: u32,
    headers: &Headers,
) -> Result<Option<Pair>, Refused> {
    let stream = match PortForwardStream::from_headers(headers, stream_id) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::info!(%error, "port-forward: stream refused");
            let _ = session.reset(stream_id, RST_REFUSED_STREAM);
            return Ok(None);
        }
    };
    let _ = session.reply(stream_id, &Headers::new(), false);
    pairs.add(stream, stream_id, std::time::Instant::now())
}

fn start(pair: Pair, target: &Target, reports: &mpsc::Sender<Forwarded>) -> Forward {
    let (to_pod, inbound) = mpsc::channel(INBOUND_CHUNKS);
    tokio::spawn(connection::forward(
        pair.data,
        pair.port,
        target.clone(),
        inbound,
        reports.clone(),
    ));
    Forward {
        error: pair.error,
        to_pod: Some(to_pod),
        waiting: VecDeque::new(),
        in_flight: 0,
        finished: false,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "spdy/tests.rs"]
mod tests;
