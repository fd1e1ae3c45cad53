//! SPDY/3.1 frames as bytes (SPDY Protocol Draft 3.1, section 2.2): split one frame off a
//! byte buffer and write one back. Header blocks stay compressed here: inflating them needs the
//! connection's zlib state, which [`super::headers`] keeps. Every length is checked against the
//! bytes present and the session's limit before anything is read or allocated, so no input
//! panics or allocates more than the limit. Layer: server.

use crate::server::stream::error::{ProtocolError, Result};

/// The only SPDY version systemk speaks (3.1 keeps 3 in the frame header).
pub const VERSION: u16 = 3;
/// Bytes of every frame header, control or data.
pub const HEADER_LEN: usize = 8;
/// The largest length a frame header can carry (24 bits).
pub const MAX_LENGTH: usize = (1 << 24) - 1;

/// FLAG_FIN: the sender will send nothing more on this stream.
pub const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM: the receiver must not send on the stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS.
const FLAG_CLEAR_SETTINGS: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// Stream ids and window deltas are 31-bit; the top bit is reserved.
const ID_MASK: u32 = 0x7fff_ffff;

/// One SETTINGS entry (section 2.6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// FLAG_SETTINGS_PERSIST_VALUE / FLAG_SETTINGS_PERSISTED.
    pub flags: u8,
    /// The setting's id (24 bits), e.g. 7 for SETTINGS_INITIAL_WINDOW_SIZE.
    pub id: u32,
    /// Its value.
    pub value: u32,
}

/// One SPDY/3.1 frame, header blocks still compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// SYN_STREAM: the peer opens a stream.
    SynStream {
        /// Its id.
        stream_id: u32,
        /// The stream it is associated to (0: none).
        associated_to: u32,
        /// Priority 0 (highest) to 7.
        priority: u8,
        /// FLAG_FIN and FLAG_UNIDIRECTIONAL.
        flags: u8,
        /// The compressed name/value block.
        header_block: Vec<u8>,
    },
    /// SYN_REPLY: the answer to a SYN_STREAM.
    SynReply {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN.
        flags: u8,
        /// The compressed name/value block.
        header_block: Vec<u8>,
    },
    /// RST_STREAM: the stream ends abnormally.
    RstStream {
        /// The stream.
        stream_id: u32,
        /// The status code (1 PROTOCOL_ERROR … 11 FRAME_TOO_LARGE).
        status: u32,
    },
    /// SETTINGS.
    Settings {
        /// FLAG_SETTINGS_CLEAR_SETTINGS.
        clear: bool,
        /// The entries.
        entries: Vec<Setting>,
    },
    /// PING: echoed by the side that did not send it.
    Ping {
        /// Odd from the client, even from the server.
        id: u32,
    },
    /// GOAWAY: no new streams.
    GoAway {
        /// The last stream the sender accepted.
        last_good_stream_id: u32,
        /// 0 OK, 1 PROTOCOL_ERROR, 2 INTERNAL_ERROR.
        status: u32,
    },
    /// HEADERS: more headers on an open stream.
    Headers {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN.
        flags: u8,
        /// The compressed name/value block.
        header_block: Vec<u8>,
    },
    /// WINDOW_UPDATE: the receiver may take `delta` more bytes (stream 0: the session).
    WindowUpdate {
        /// The stream, or 0 for the session's window.
        stream_id: u32,
        /// Bytes, 1 to 2^31 - 1.
        delta: u32,
    },
    /// A control frame type SPDY/3.1 has but systemk has no use for (CREDENTIAL, NOOP, or one
    /// unknown): the spec says to ignore it.
    Ignored {
        /// Its type.
        frame_type: u16,
    },
    /// DATA.
    Data {
        /// The stream.
        stream_id: u32,
        /// FLAG_FIN.
        flags: u8,
        /// The payload.
        data: Vec<u8>,
    },
}

/// Splits the first frame off `input`. `Ok(None)` means more bytes are needed; otherwise the
/// frame and how many bytes it took. A frame longer than `max_len` is refused as soon as its
/// header is in, before its body arrives.
pub fn decode(input: &[u8], max_len: usize) -> Result<Option<(Frame, usize)>> {
    let Some(header) = input.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let first = be32(header, 0);
    let flags = header[4];
    let len = (be32(header, 4) & 0x00ff_ffff) as usize;
    if len > max_len {
        return Err(ProtocolError::FrameTooLarge { len, max: max_len });
    }
    let control = first & 0x8000_0000 != 0;
    if control {
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(ProtocolError::UnsupportedVersion(version));
        }
    }
    let Some(body) = input.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let frame = if control {
        control_frame((first & 0xffff) as u16, flags, body)?
    } else {
        let stream_id = first & ID_MASK;
        if stream_id == 0 {
            return Err(invalid("DATA", "stream id 0"));
        }
        Frame::Data {
            stream_id,
            flags,
            data: body.to_vec(),
        }
    };
    Ok(Some((frame, HEADER_LEN + len)))
}

fn control_frame(frame_type: u16, flags: u8, body: &[u8]) -> Result<Frame> {
    let bad_length = || ProtocolError::BadLength {
        frame_type,
        len: body.len(),
    };
    let exact = |n: usize| {
        if body.len() == n {
            Ok(())
        } else {
            Err(bad_length())
        }
    };
    let at_least = |n: usize| {
        if body.len() >= n {
            Ok(())
        } else {
            Err(bad_length())
        }
    };
    let frame = match frame_type {
        SYN_STREAM => {
            at_least(10)?;
            Frame::SynStream {
                stream_id: stream_id("SYN_STREAM", body)?,
                associated_to: be32(body, 4) & ID_MASK,
                priority: body[8] >> 5,
                flags,
                header_block: body[10..].to_vec(),
            }
        }
        SYN_REPLY => {
            at_least(4)?;
            let stream_id = stream_id("SYN_REPLY", body)?;
            Frame::SynReply {
                stream_id,
                flags,
                header_block: body[4..].to_vec(),
            }
        }
        RST_STREAM => {
            exact(8)?;
            let stream_id = stream_id("RST_STREAM", body)?;
            let status = be32(body, 4);
            if status == 0 {
                return Err(invalid("RST_STREAM", "status 0"));
            }
            Frame::RstStream { stream_id, status }
        }
        SETTINGS => {
            at_least(4)?;
            let count = be32(body, 0) as usize;
            // Checked against the bytes present, so a huge count allocates nothing.
            if (body.len() - 4) / 8 != count || !(body.len() - 4).is_multiple_of(8) {
                return Err(bad_length());
            }
            let entries = body[4..]
                .chunks_exact(8)
                .map(|entry| Setting {
                    flags: entry[0],
                    id: be32(entry, 0) & 0x00ff_ffff,
                    value: be32(entry, 4),
                })
                .collect();
            Frame::Settings {
                clear: flags & FLAG_CLEAR_SETTINGS != 0,
                entries,
            }
        }
        PING => {
            exact(4)?;
            Frame::Ping { id: be32(body, 0) }
        }
        GOAWAY => {
            exact(8)?;
            Frame::GoAway {
                last_good_stream_id: be32(body, 0) & ID_MASK,
                status: be32(body, 4),
            }
        }
        HEADERS => {
            at_least(4)?;
            let stream_id = stream_id("HEADERS", body)?;
            Frame::Headers {
                stream_id,
                flags,
                header_block: body[4..].to_vec(),
            }
        }
        WINDOW_UPDATE => {
            exact(8)?;
            let delta = be32(body, 4) & ID_MASK;
            if delta == 0 {
                return Err(invalid("WINDOW_UPDATE", "delta 0"));
            }
            Frame::WindowUpdate {
                stream_id: be32(body, 0) & ID_MASK,
                delta,
            }
        }
        frame_type => Frame::Ignored { frame_type },
    };
    Ok(frame)
}

/// Appends `frame` to `out`. Fails only on a stream id 0 where one is needed or a body longer
/// than SPDY can carry; `out` is unchanged then.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let result = encode_unchecked(frame, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_unchecked(frame: &Frame, out: &mut Vec<u8>) -> Result<()> {
    match frame {
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            flags,
            header_block,
        } => {
            control_header(out, SYN_STREAM, *flags, 10 + header_block.len())?;
            put_stream_id(out, "SYN_STREAM", *stream_id)?;
            out.extend_from_slice(&(associated_to & ID_MASK).to_be_bytes());
            out.extend_from_slice(&[(priority & 0x07) << 5, 0]);
            out.extend_from_slice(header_block);
        }
        Frame::SynReply {
            stream_id,
            flags,
            header_block,
        } => {
            control_header(out, SYN_REPLY, *flags, 4 + header_block.len())?;
            put_stream_id(out, "SYN_REPLY", *stream_id)?;
            out.extend_from_slice(header_block);
        }
        Frame::RstStream { stream_id, status } => {
            control_header(out, RST_STREAM, 0, 8)?;
            put_stream_id(out, "RST_STREAM", *stream_id)?;
            out.extend_from_slice(&status.to_be_bytes());
        }
        Frame::Settings { clear, entries } => {
            let flags = if *clear { FLAG_CLEAR_SETTINGS } else { 0 };
            let len = entries.len().checked_mul(8).and_then(|n| n.checked_add(4));
            control_header(out, SETTINGS, flags, len.unwrap_or(usize::MAX))?;
            out.extend_from_slice(&u32::try_from(entries.len()).unwrap_or(0).to_be_bytes());
            for entry in entries {
                let flag_id = (u32::from(entry.flags) << 24) | (entry.id & 0x00ff_ffff);
                out.extend_from_slice(&flag_id.to_be_bytes());
                out.extend_from_slice(&entry.value.to_be_bytes());
            }
        }
        Frame::Ping { id } => {
            control_header(out, PING, 0, 4)?;
            out.extend_from_slice(&id.to_be_bytes());
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            control_header(out, GOAWAY, 0, 8)?;
            out.extend_from_slice(&(last_good_stream_id & ID_MASK).to_be_bytes());
            out.extend_from_slice(&status.to_be_bytes());
        }
        Frame::Headers {
            stream_id,
            flags,
            header_block,
        } => {
            control_header(out, HEADERS, *flags, 4 + header_block.len())?;
            put_stream_id(out, "HEADERS", *stream_id)?;
            out.extend_from_slice(header_block);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            if *delta == 0 || *delta > ID_MASK {
                return Err(invalid("WINDOW_UPDATE", "delta out of range"));
            }
            control_header(out, WINDOW_UPDATE, 0, 8)?;
            out.extend_from_slice(&(stream_id & ID_MASK).to_be_bytes());
            out.extend_from_slice(&delta.to_be_bytes());
        }
        Frame::Ignored { frame_type } => {
            control_header(out, *frame_type, 0, 0)?;
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            put_stream_id(out, "DATA", *stream_id)?;
            put_flags_length(out, *flags, data.len())?;
            out.extend_from_slice(data);
        }
    }
    Ok(())
}

fn control_header(out: &mut Vec<u8>, frame_type: u16, flags: u8, len: usize) -> Result<()> {
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    put_flags_length(out, flags, len)
}

fn put_flags_length(out: &mut Vec<u8>, flags: u8, len: usize) -> Result<()> {
    if len > MAX_LENGTH {
        return Err(ProtocolError::FrameTooLarge {
            len,
            max: MAX_LENGTH,
        });
    }
    out.push(flags);
    // len < 2^24, so the low three bytes of its u32 hold all of it.
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    Ok(())
}

fn put_stream_id(out: &mut Vec<u8>, frame: &'static str, stream_id: u32) -> Result<()> {
    if stream_id & ID_MASK == 0 {
        return Err(invalid(frame, "stream id 0"));
    }
    out.extend_from_slice(&(stream_id & ID_MASK).to_be_bytes());
    Ok(())
}

fn stream_id(frame: &'static str, body: &[u8]) -> Result<u32> {
    match be32(body, 0) & ID_MASK {
        0 => Err(invalid(frame, "stream id 0")),
        id => Ok(id),
    }
}

fn invalid(frame: &'static str, what: &'static str) -> ProtocolError {
    ProtocolError::InvalidFrame { frame, what }
}

/// A big-endian u32 at `at`; callers checked that four bytes are there.
fn be32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

#[cfg(test)]
#[path = "frame/tests.rs"]
mod tests;
