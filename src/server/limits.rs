//! Every bound the kubelet API puts on its callers, in one place: how long a connection may
//! take to say something, how many may be open, how much of the journal one request may
//! read, how many followed logs may be open at once and how long an exec session may be
//! silent. The server never waits on a client
//! without one of these deadlines; tests shrink them with struct update syntax. Pure data.
//! Layer 6.

use std::time::Duration;

/// 10 s: Go's `http.Transport` TLS handshake timeout, also axum-server's. A handshake on a
/// network a kubelet is reached over takes milliseconds.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// 10 s: a common Go `ReadHeaderTimeout`; the kubelet sets none and so falls back to its
/// 4 h `ReadTimeout`, the slowloris hole this closes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// 90 s: the kubelet's `IdleTimeout`, which matches Go's `http.DefaultTransport` keep-alive
/// timeout, so the API server's pooled connections are closed by their own side first.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// 256 connections: systemk runs with systemd's default soft limit of 1024 open files;
/// this leaves room for the journalctl pipes, D-Bus and the API server's watches.
pub const MAX_CONNECTIONS: usize = 256;

/// 64 KiB: the request line and headers together (hyper's read buffer). The kubelet
/// API's callers send a few hundred bytes; Go's 1 MiB `MaxHeaderBytes` only costs memory.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// 32 followed logs: each holds a `journalctl --follow` child and a connection for as long
/// as the client stays.
pub const MAX_FOLLOW_STREAMS: usize = 32;

/// 16 KiB: containerd's and CRI-O's default maximum log line size (longer lines are split
/// there; here the message is cut, see [`crate::server::journal::bound_message`]).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// 1 MiB: one `journalctl -o json` entry as read from the pipe. A line a container prints is
/// at most journald's `LineMax` (48 KiB, under 300 KiB as escaped JSON); only a message
/// sent over the native journal protocol can be longer, and is then replaced by a notice.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// 10 MiB: a log read without `follow` and without `limitBytes` stops here. The kubelet's
/// `containerLogMaxSize` default: the most it returns from a container's current log file.
pub const DEFAULT_LOG_BYTES: u64 = 10 * 1024 * 1024;

/// 4 h: the kubelet's `streamingConnectionIdleTimeout` default. An exec session in which
/// neither side sent a frame (or message) for this long is closed and its command killed;
/// the API server pings its SPDY sessions every 5 s, so this ends sessions whose peer died.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// The bounds the kubelet API enforces; [`Limits::default`] holds the documented numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// From TCP accept to the end of the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// For a request's head: from the end of the handshake for the first request, from its
    /// first byte for the next ones on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Open connections at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Largest request line plus headers, in bytes.
    pub max_request_head_bytes: usize,
    /// `follow=true` log streams at once; more get 429.
    pub max_follow_streams: usize,
    /// Largest log line returned (message plus truncation notice, without the timestamp
    /// prefix and the newline), in bytes.
    pub max_line_bytes: usize,
    /// Largest journal entry read from journalctl, in bytes.
    pub max_entry_bytes: usize,
    /// Bytes of a log read without `follow` and `limitBytes`.
    pub default_log_bytes: u64,
    /// How long an exec session may be silent both ways.
    pub stream_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tls_handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_request_head_bytes: MAX_REQUEST_HEAD_BYTES,
            max_follow_streams: MAX_FOLLOW_STREAMS,
            max_line_bytes: MAX_LINE_BYTES,
            max_entry_bytes: MAX_ENTRY_BYTES,
            default_log_bytes: DEFAULT_LOG_BYTES,
            stream_idle_timeout: STREAM_IDLE_TIMEOUT,
        }
    }
}
