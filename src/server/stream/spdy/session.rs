//! The server side of one SPDY/3.1 connection as a state machine over bytes: it takes what the
//! peer sent, answers what the protocol answers by itself (PING echo, RST_STREAM for streams
//! it refuses, WINDOW_UPDATE as data is consumed, GOAWAY on a session error) and reports the
//! rest as [`Event`]s; the handler calls [`Session::reply`], [`Session::send_data`],
//! [`Session::reset`] and [`Session::go_away`], and writes [`Session::take_output`] to the
//! socket. No I/O, no clock, no task: exec, attach and port-forward drive it.
//!
//! Flow control: the Go peer (moby/spdystream, in the API server and kubectl) neither sends
//! WINDOW_UPDATE nor honours the windows, so holding its data to 64 KiB would stall every
//! stream. The session therefore limits what it sends only once the peer has shown it does
//! flow control (a WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE), and never resets a peer
//! for overrunning its receive window; memory stays bounded because the handler stops reading
//! the socket while its buffers are full. Layer: server.

use std::collections::BTreeMap;

use super::frame::{self, FLAG_FIN, FLAG_UNIDIRECTIONAL, Frame};
use super::headers::{Deflater, Headers, Inflater};
use crate::server::stream::error::{ProtocolError, Result};

/// SPDY/3.1's initial window, per stream and for the session: 64 KiB.
pub const DEFAULT_WINDOW: u32 = 64 * 1024;
/// The largest DATA frame systemk writes: what Go's io.Copy writes at a time, 32 KiB.
const MAX_DATA_FRAME: usize = 32 * 1024;
/// SETTINGS_INITIAL_WINDOW_SIZE's id.
const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;
/// The largest window SPDY allows, 2^31 - 1.
const MAX_WINDOW: i64 = 0x7fff_ffff;

/// RST_STREAM status PROTOCOL_ERROR.
pub const RST_PROTOCOL_ERROR: u32 = 1;
/// RST_STREAM status REFUSED_STREAM.
pub const RST_REFUSED_STREAM: u32 = 3;
/// RST_STREAM status CANCEL: what the handler sends when the command or connection ends.
pub const RST_CANCEL: u32 = 5;
/// RST_STREAM status FLOW_CONTROL_ERROR.
pub const RST_FLOW_CONTROL_ERROR: u32 = 7;
/// RST_STREAM status STREAM_ALREADY_CLOSED.
pub const RST_STREAM_ALREADY_CLOSED: u32 = 9;
/// GOAWAY status OK.
pub const GOAWAY_OK: u32 = 0;
/// GOAWAY status PROTOCOL_ERROR.
pub const GOAWAY_PROTOCOL_ERROR: u32 = 1;

/// The bounds on one connection.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// The longest frame accepted, in bytes.
    pub max_frame: usize,
    /// The most a header block may inflate to, in bytes.
    pub max_header_block: usize,
    /// Streams open at once; more are refused.
    pub max_streams: usize,
}

impl Default for SessionLimits {
    /// 1 MiB frames (Go writes at most 32 KiB at a time), 64 KiB of headers (the kubelet's
    /// streams carry three short ones), 128 streams (64 forwarded connections).
    fn default() -> Self {
        Self {
            max_frame: 1 << 20,
            max_header_block: 64 << 10,
            max_streams: 128,
        }
    }
}

/// What the peer did, for the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new stream: answer with [`Session::reply`] or [`Session::reset`].
    Opened {
        /// Its id.
        stream_id: u32,
        /// Its headers (`streamtype`, `port`, `requestid`).
        headers: Headers,
    },
    /// Bytes on a stream; report them with [`Session::consumed`] once passed on.
    Data {
        /// The stream.
        stream_id: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The peer will send nothing more on the stream (stdin closed).
    Finished {
        /// The stream.
        stream_id: u32,
    },
    /// The stream ended abnormally, by the peer or by the session (flow control).
    Reset {
        /// The stream.
        stream_id: u32,
        /// The RST_STREAM status.
        status: u32,
    },
    /// The peer opens no more streams.
    GoAway,
}

#[derive(Debug)]
struct Stream {
    remote_open: bool,
    local_open: bool,
    replied: bool,
    send_window: i64,
    unacked: u32,
}

/// One SPDY/3.1 connection, server side.
pub struct Session {
    limits: SessionLimits,
    inflater: Inflater,
    deflater: Deflater,
    streams: BTreeMap<u32, Stream>,
    last_peer_stream: u32,
    sent_go_away: bool,
    peer_flow_control: bool,
    initial_send_window: i64,
    session_send_window: i64,
    session_unacked: u32,
    output: Vec<u8>,
}

impl Session {
    /// A session with nothing received yet.
    pub fn new(limits: SessionLimits) -> Result<Self> {
        Ok(Self {
            limits,
            inflater: Inflater::new(limits.max_header_block),
            deflater: Deflater::new()?,
            streams: BTreeMap::new(),
            last_peer_stream: 0,
            sent_go_away: false,
            peer_flow_control: false,
            initial_send_window: i64::from(DEFAULT_WINDOW),
            session_send_window: i64::from(DEFAULT_WINDOW),
            session_unacked: 0,
            output: Vec::new(),
        })
    }

    /// Takes the whole frames at the start of `input`, appends what they mean to `events` and
    /// returns how many bytes were used; the rest is an incomplete frame to present again with
    /// more bytes. An error ends the session: a GOAWAY is queued; write it, then close.
    pub fn receive(&mut self, input: &[u8], events: &mut Vec<Event>) -> Result<usize> {
        let mut used = 0;
        loop {
            let decoded = frame::decode(&input[used..], self.limits.max_frame);
            let (frame, len) = match decoded {
                Ok(Some(decoded)) => decoded,
                Ok(None) => return Ok(used),
                Err(e) => return Err(self.fail(e)),
            };
            used += len;
            if let Err(e) = self.on_frame(frame, events) {
                return Err(self.fail(e));
            }
        }
    }

    /// Answers a stream the peer opened, as the kubelet does: SYN_REPLY with `headers`.
    pub fn reply(&mut self, stream_id: u32, headers: &Headers, fin: bool) -> Result<()> {
        match self.streams.get(&stream_id) {
            Some(s) if !s.replied && s.local_open => {}
            _ => return Err(ProtocolError::StreamNotOpen(stream_id)),
        }
        let header_block = self.deflater.deflate(headers)?;
        let flags = if fin { FLAG_FIN } else { 0 };
        frame::encode(
            &Frame::SynReply {
                stream_id,
                flags,
                header_block,
            },
            &mut self.output,
        )?;
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.replied = true;
            s.local_open = !fin;
        }
        self.forget_if_closed(stream_id);
        Ok(())
    }

    /// Sends as much of `data` as the windows allow and returns how much that was; send the
    /// rest after the next [`Session::receive`]. `fin` closes the stream for sending once all
    /// of `data` is out (an empty `data` with `fin` just closes it).
    pub fn send_data(&mut self, stream_id: u32, data: &[u8], fin: bool) -> Result<usize> {
        let window = match self.streams.get(&stream_id) {
            Some(s) if s.replied && s.local_open => s.send_window.min(self.session_send_window),
            _ => return Err(ProtocolError::StreamNotOpen(stream_id)),
        };
        let allowed = if self.peer_flow_control {
            usize::try_from(window.max(0)).unwrap_or(0)
        } else {
            usize::MAX
        };
        let sent = data.len().min(allowed);
        let finishing = fin && sent == data.len();
        let mut chunks = data[..sent].chunks(MAX_DATA_FRAME).peekable();
        if chunks.peek().is_none() && finishing {
            let empty = Frame::Data {
                stream_id,
                flags: FLAG_FIN,
                data: Vec::new(),
            };
            frame::encode(&empty, &mut self.output)?;
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let flags = if last && finishing { FLAG_FIN } else { 0 };
            let data = chunk.to_vec();
            frame::encode(
                &Frame::Data {
                    stream_id,
                    flags,
                    data,
                },
                &mut self.output,
            )?;
        }
        let sent_i64 = i64::try_from(sent).unwrap_or(MAX_WINDOW);
        self.session_send_window -= sent_i64;
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.send_window -= sent_i64;
            s.local_open = !finishing;
        }
        self.forget_if_closed(stream_id);
        Ok(sent)
    }

    /// The handler passed `len` bytes of the stream on: open the peer's windows again, in
    /// steps of half a window as SPDY implementations do.
    pub fn consumed(&mut self, stream_id: u32, len: usize) -> Result<()> {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let threshold = DEFAULT_WINDOW / 2;
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.unacked = s.unacked.saturating_add(len);
            if s.unacked >= threshold {
                let delta = std::mem::take(&mut s.unacked).min(MAX_WINDOW as u32);
                frame::encode(&Frame::WindowUpdate { stream_id, delta }, &mut self.output)?;
            }
        }
        self.session_unacked = self.session_unacked.saturating_add(len);
        if self.session_unacked >= threshold {
            let delta = std::mem::take(&mut self.session_unacked).min(MAX_WINDOW as u32);
            frame::encode(
                &Frame::WindowUpdate {
                    stream_id: 0,
                    delta,
                },
                &mut self.output,
            )?;
        }
        Ok(())
    }

    /// Ends a stream abnormally (e.g. [`RST_CANCEL`]); a stream already gone is left alone.
    pub fn reset(&mut self, stream_id: u32, status: u32) -> Result<()> {
        if self.streams.remove(&stream_id).is_some() {
            frame::encode(&Frame::RstStream { stream_id, status }, &mut self.output)?;
        }
        Ok(())
    }

    /// Tells the peer no more streams will be accepted; the open ones go on.
    pub fn go_away(&mut self, status: u32) -> Result<()> {
        if !self.sent_go_away {
            self.sent_go_away = true;
            let last_good_stream_id = self.last_peer_stream;
            frame::encode(
                &Frame::GoAway {
                    last_good_stream_id,
                    status,
                },
                &mut self.output,
            )?;
        }
        Ok(())
    }

    /// The bytes to write to the peer, in order.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Streams not yet closed in both directions.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        // Encoding a GOAWAY cannot fail; if it did, closing the socket says the same.
        let _ = self.go_away(GOAWAY_PROTOCOL_ERROR);
        error
    }

    fn on_frame(&mut self, frame: Frame, events: &mut Vec<Event>) -> Result<()> {
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                header_block,
                ..
            } => {
                // Inflate first, whatever happens to the stream: the zlib stream spans frames.
                let headers = self.inflater.inflate(&header_block)?;
                self.on_syn_stream(stream_id, flags, headers, events)?;
            }
            Frame::SynReply { header_block, .. } => {
                // systemk opens no streams, so no reply is expected; inflate to stay in step.
                self.inflater.inflate(&header_block)?;
            }
            Frame::Headers {
                stream_id,
                flags,
                header_block,
            } => {
                self.inflater.inflate(&header_block)?;
                if flags & FLAG_FIN != 0 {
                    self.remote_finished(stream_id, events);
                }
            }
            Frame::RstStream { stream_id, status } => {
                if self.streams.remove(&stream_id).is_some() {
                    events.push(Event::Reset { stream_id, status });
                }
            }
            Frame::Settings { entries, .. } => {
                for entry in entries
                    .iter()
                    .filter(|e| e.id == SETTINGS_INITIAL_WINDOW_SIZE)
                {
                    self.set_initial_window(entry.value)?;
                }
            }
            Frame::Ping { id } => {
                // Odd ids are the client's; even ones would be ours, and systemk sends none.
                if id % 2 == 1 {
                    frame::encode(&Frame::Ping { id }, &mut self.output)?;
                }
            }
            Frame::GoAway { .. } => events.push(Event::GoAway),
            Frame::WindowUpdate { stream_id, delta } => {
                self.window_update(stream_id, delta, events)?;
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => self.on_data(stream_id, flags, data, events)?,
            Frame::Ignored { .. } => {}
        }
        Ok(())
    }

    fn on_syn_stream(
        &mut self,
        stream_id: u32,
        flags: u8,
        headers: Headers,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        if self.sent_go_away {
            return Ok(());
        }
        // Client streams are odd and increase (spdystream's validateStreamId).
        if stream_id.is_multiple_of(2) || stream_id <= self.last_peer_stream {
            let reset = Frame::RstStream {
                stream_id,
                status: RST_PROTOCOL_ERROR,
            };
            return frame::encode(&reset, &mut self.output);
        }
        self.last_peer_stream = stream_id;
        if self.streams.len() >= self.limits.max_streams {
            let reset = Frame::RstStream {
                stream_id,
                status: RST_REFUSED_STREAM,
            };
            return frame::encode(&reset, &mut self.output);
        }
        let stream = Stream {
            remote_open: true,
            local_open: flags & FLAG_UNIDIRECTIONAL == 0,
            replied: false,
            send_window: self.initial_send_window,
            unacked: 0,
        };
        self.streams.insert(stream_id, stream);
        events.push(Event::Opened { stream_id, headers });
        if flags & FLAG_FIN != 0 {
            self.remote_finished(stream_id, events);
        }
        Ok(())
    }

    fn on_data(
        &mut self,
        stream_id: u32,
        flags: u8,
        data: Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        // Data for a stream already forgotten (reset by either side) is dropped silently.
        let Some(stream) = self.streams.get(&stream_id) else {
            return Ok(());
        };
        if !stream.remote_open {
            self.streams.remove(&stream_id);
            let status = RST_STREAM_ALREADY_CLOSED;
            events.push(Event::Reset { stream_id, status });
            return frame::encode(&Frame::RstStream { stream_id, status }, &mut self.output);
        }
        if !data.is_empty() {
            events.push(Event::Data { stream_id, data });
        }
        if flags & FLAG_FIN != 0 {
            self.remote_finished(stream_id, events);
        }
        Ok(())
    }

    fn set_initial_window(&mut self, value: u32) -> Result<()> {
        let value = i64::from(value);
        if value > MAX_WINDOW {
            return Err(ProtocolError::Session("initial window over 2^31 - 1"));
        }
        self.peer_flow_control = true;
        let delta = value - self.initial_send_window;
        self.initial_send_window = value;
        for stream in self.streams.values_mut() {
            stream.send_window += delta;
        }
        Ok(())
    }

    fn window_update(&mut self, stream_id: u32, delta: u32, events: &mut Vec<Event>) -> Result<()> {
        self.peer_flow_control = true;
        let delta = i64::from(delta);
        if stream_id == 0 {
            self.session_send_window += delta;
            if self.session_send_window > MAX_WINDOW {
                return Err(ProtocolError::Session("session window over 2^31 - 1"));
            }
            return Ok(());
        }
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Ok(());
        };
        stream.send_window += delta;
        if stream.send_window > MAX_WINDOW {
            self.streams.remove(&stream_id);
            let status = RST_FLOW_CONTROL_ERROR;
            events.push(Event::Reset { stream_id, status });
            return frame::encode(&Frame::RstStream { stream_id, status }, &mut self.output);
        }
        Ok(())
    }

    fn remote_finished(&mut self, stream_id: u32, events: &mut Vec<Event>) {
        if let Some(stream) = self.streams.get_mut(&stream_id)
            && stream.remote_open
        {
            stream.remote_open = false;
            events.push(Event::Finished { stream_id });
            self.forget_if_closed(stream_id);
        }
    }

    fn forget_if_closed(&mut self, stream_id: u32) {
        if self
            .streams
            .get(&stream_id)
            .is_some_and(|s| !s.remote_open && !s.local_open)
        {
            self.streams.remove(&stream_id);
        }
    }
}

#[cfg(test)]
#[path = "session/tests.rs"]
mod tests;
