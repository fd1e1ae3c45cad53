//! What can go wrong in the streaming protocols: bytes that are not SPDY/3.1 frames, header
//! blocks that do not inflate or parse, a peer that breaks the session's rules, WebSocket
//! channel messages that do not decode, and upgrade requests systemk does not accept. Pure
//! data; nothing here touches a socket. Layer: server.

/// Errors of the streaming protocol layer ([`super::spdy`], [`super::channel`],
/// [`super::kind`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// A frame longer than the session allows; SPDY's own limit is 2^24 - 1 bytes.
    #[error("SPDY frame of {len} bytes is over the limit of {max}")]
    FrameTooLarge {
        /// The length the frame header claims.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A control frame of a SPDY version other than 3.
    #[error("SPDY version {0} is not supported (only 3)")]
    UnsupportedVersion(u16),
    /// A control frame whose length does not fit its type.
    #[error("SPDY frame type {frame_type} has a bad length {len}")]
    BadLength {
        /// The control frame type.
        frame_type: u16,
        /// Its length.
        len: usize,
    },
    /// A frame field with a value SPDY/3.1 forbids (stream 0, a zero window delta, …).
    #[error("invalid SPDY {frame}: {what}")]
    InvalidFrame {
        /// The frame type's name.
        frame: &'static str,
        /// What is wrong.
        what: &'static str,
    },
    /// The zlib stream of header blocks is corrupt; the connection cannot go on.
    #[error("SPDY header block does not inflate")]
    HeaderCompression,
    /// A header block that inflates to more than the session allows (a decompression bomb).
    #[error("SPDY header block inflates to more than {max} bytes")]
    HeaderBlockTooLarge {
        /// The limit.
        max: usize,
    },
    /// An inflated header block that is not a SPDY/3 name/value block.
    #[error("malformed SPDY header block: {0}")]
    MalformedHeaders(&'static str),
    /// The peer broke a session rule that ends the whole connection.
    #[error("SPDY session error: {0}")]
    Session(&'static str),
    /// A call on a stream the session does not know or has closed for sending.
    #[error("SPDY stream {0} is not open for this")]
    StreamNotOpen(u32),
    /// A WebSocket channel message that does not decode.
    #[error("malformed channel message: {0}")]
    MalformedChannelMessage(&'static str),
    /// A resize stream that is not a sequence of JSON terminal sizes.
    #[error("malformed resize stream: {0}")]
    MalformedResize(&'static str),
    /// A stream whose headers do not say what it is for.
    #[error("bad stream headers: {0}")]
    BadStreamHeaders(String),
}

/// Results of the streaming protocol layer.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
