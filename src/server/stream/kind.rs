//! What each SPDY stream is for, from the headers the client puts on it (k8s.io/api core/v1
//! `StreamType`, `PortHeader`, `PortForwardRequestIDHeader`), checked as the kubelet checks
//! them, and the terminal sizes that arrive on the resize stream or channel. Pure.
//! Layer: server.

use serde::Deserialize;

use super::error::{ProtocolError, Result};
use super::spdy::Headers;

/// The header naming a stream's role.
const STREAM_TYPE: &str = "streamType";
/// The port-forward header with the pod's port.
const PORT: &str = "port";
/// The port-forward header pairing a data stream with its error stream.
const REQUEST_ID: &str = "requestID";

/// A stream of exec or attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCommandStream {
    /// `error`: where the status goes.
    Error,
    /// `stdin`.
    Stdin,
    /// `stdout`.
    Stdout,
    /// `stderr`.
    Stderr,
    /// `resize`: terminal sizes, as JSON.
    Resize,
}

impl RemoteCommandStream {
    /// The stream's role, from its `streamtype` header.
    pub fn from_headers(headers: &Headers) -> Result<Self> {
        match headers.get(STREAM_TYPE) {
            Some("error") => Ok(Self::Error),
            Some("stdin") => Ok(Self::Stdin),
            Some("stdout") => Ok(Self::Stdout),
            Some("stderr") => Ok(Self::Stderr),
            Some("resize") => Ok(Self::Resize),
            other => Err(bad(format!("unexpected stream type: {other:?}"))),
        }
    }
}

/// Data or error, of one forwarded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortForwardRole {
    /// `data`: the connection's bytes.
    Data,
    /// `error`: a text or JSON error the kubelet writes.
    Error,
}

/// A stream of port-forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardStream {
    /// The pod's port, 1–65535.
    pub port: u16,
    /// Pairs the data and error streams of one forwarded connection.
    pub request_id: String,
    /// Which of the two this is.
    pub role: PortForwardRole,
}

impl PortForwardStream {
    /// Reads the headers as the kubelet does (`httpStreamReceived`, `requestID`): a missing
    /// request id is made from the stream id, as for clients older than request ids.
    pub fn from_headers(headers: &Headers, stream_id: u32) -> Result<Self> {
        let port = headers
            .get(PORT)
            .ok_or_else(|| bad(format!("{PORT:?} header is required")))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("unable to parse {port:?} as a port")))?;
        let role = match headers.get(STREAM_TYPE) {
            Some("data") => PortForwardRole::Data,
            Some("error") => PortForwardRole::Error,
            other => return Err(bad(format!("invalid stream type {other:?}"))),
        };
        let request_id = match headers.get(REQUEST_ID) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => match role {
                PortForwardRole::Error => stream_id.to_string(),
                PortForwardRole::Data => stream_id.saturating_sub(2).to_string(),
            },
        };
        Ok(Self {
            port,
            request_id,
            role,
        })
    }
}

/// A terminal size from the resize stream (client-go `remotecommand.TerminalSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Splits the resize stream, a sequence of JSON objects, into sizes. Bytes of an object not
/// yet complete stay buffered, up to a bound.
#[derive(Debug, Default)]
pub struct ResizeDecoder {
    pending: Vec<u8>,
}

/// A size is two small numbers; anything longer is not one.
const MAX_PENDING: usize = 1024;

impl ResizeDecoder {
    /// Feeds bytes; returns the sizes they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<TerminalSize>> {
        self.pending.extend_from_slice(bytes);
        let mut sizes = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(&self.pending).into_iter();
        let mut used = 0;
        loop {
            match stream.next() {
                Some(Ok(size)) => {
                    sizes.push(size);
                    used = stream.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => return Err(ProtocolError::MalformedResize("not JSON sizes")),
                None => {
                    used = stream.byte_offset();
                    break;
                }
            }
        }
        self.pending.drain(..used);
        if self.pending.len() > MAX_PENDING {
            return Err(ProtocolError::MalformedResize("a size longer than 1 KiB"));
        }
        Ok(sizes)
    }
}

fn bad(message: String) -> ProtocolError {
    ProtocolError::BadStreamHeaders(message)
}

#[cfg(test)]
#[path = "kind/tests.rs"]
mod tests;
