//! The Kubernetes channel protocols carried in WebSocket messages (apimachinery `wsstream`,
//! KEP-4006): each message starts with its channel (0 stdin, 1 stdout, 2 stderr, 3 status,
//! 4 resize; for port-forward 2n data and 2n+1 error of the n-th port), as a byte, or as an
//! ASCII digit in the base64 variants whose payload is base64. `v5.channel.k8s.io` adds the
//! CLOSE signal: channel 255 followed by the one byte of the channel that is closed. Pure
//! encode and decode of message payloads; the WebSocket framing itself is not here.
//! Layer: server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::{ProtocolError, Result};

/// The channel byte of the v5 CLOSE signal.
pub const CLOSE_SIGNAL: u8 = 255;

/// A channel subprotocol, by its `Sec-WebSocket-Protocol` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelProtocol {
    /// `v5.channel.k8s.io`: binary, status as JSON, CLOSE signal.
    V5,
    /// `v4.channel.k8s.io`: binary, status as JSON.
    V4,
    /// `v4.base64.channel.k8s.io`: base64 text, status as JSON.
    V4Base64,
    /// `channel.k8s.io`: binary, status as text (no exit code).
    V1,
    /// `base64.channel.k8s.io`: base64 text, status as text (no exit code).
    V1Base64,
}

/// What systemk accepts, most capable first.
const ALL: [ChannelProtocol; 5] = [
    ChannelProtocol::V5,
    ChannelProtocol::V4,
    ChannelProtocol::V4Base64,
    ChannelProtocol::V1,
    ChannelProtocol::V1Base64,
];

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Bytes for a channel.
    Data {
        /// The channel.
        channel: u8,
        /// The bytes (decoded from base64 where the protocol says so).
        data: Vec<u8>,
    },
    /// v5: the peer will send nothing more on `channel` (stdin closed).
    Close {
        /// The channel.
        channel: u8,
    },
}

/// A message to send: binary, or text for the base64 protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A binary message.
    Binary(Vec<u8>),
    /// A text message.
    Text(String),
}

impl ChannelProtocol {
    /// Its `Sec-WebSocket-Protocol` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::V5 => "v5.channel.k8s.io",
            Self::V4 => "v4.channel.k8s.io",
            Self::V4Base64 => "v4.base64.channel.k8s.io",
            Self::V1 => "channel.k8s.io",
            Self::V1Base64 => "base64.channel.k8s.io",
        }
    }

    /// The first protocol in the client's `Sec-WebSocket-Protocol` list that systemk speaks,
    /// in the client's order as the kubelet picks; no list at all means `channel.k8s.io`.
    pub fn negotiate(offered: Option<&str>) -> Option<Self> {
        let Some(offered) = offered else {
            return Some(Self::V1);
        };
        offered
            .split(',')
            .map(str::trim)
            .find_map(|name| ALL.into_iter().find(|p| p.name() == name))
    }

    /// Whether the status channel carries a JSON `metav1.Status` (with the exit code) rather
    /// than an error text.
    pub fn status_is_json(self) -> bool {
        matches!(self, Self::V5 | Self::V4 | Self::V4Base64)
    }

    fn is_base64(self) -> bool {
        matches!(self, Self::V4Base64 | Self::V1Base64)
    }

    /// Decodes a message payload (text or binary alike, as Go's `websocket.Message` reads
    /// them). Empty messages carry nothing: `Ok(None)`.
    pub fn decode(self, payload: &[u8]) -> Result<Option<Inbound>> {
        let Some((&first, rest)) = payload.split_first() else {
            return Ok(None);
        };
        if self == Self::V5 && first == CLOSE_SIGNAL {
            return match rest {
                [channel] => Ok(Some(Inbound::Close { channel: *channel })),
                _ => Err(ProtocolError::MalformedChannelMessage(
                    "CLOSE needs one channel byte",
                )),
            };
        }
        if !self.is_base64() {
            return Ok(Some(Inbound::Data {
                channel: first,
                data: rest.to_vec(),
            }));
        }
        let channel = first.checked_sub(b'0').filter(|c| *c <= 9).ok_or(
            ProtocolError::MalformedChannelMessage("channel is not a digit"),
        )?;
        let data = STANDARD
            .decode(rest)
            .map_err(|_| ProtocolError::MalformedChannelMessage("payload is not base64"))?;
        Ok(Some(Inbound::Data { channel, data }))
    }

    /// Encodes `data` for `channel`. Base64 channels are digits, so only 0–9 exist there.
    pub fn encode(self, channel: u8, data: &[u8]) -> Result<Outbound> {
        if !self.is_base64() {
            let mut message = Vec::with_capacity(data.len() + 1);
            message.push(channel);
            message.extend_from_slice(data);
            return Ok(Outbound::Binary(message));
        }
        if channel > 9 {
            return Err(ProtocolError::MalformedChannelMessage(
                "base64 channels are 0-9",
            ));
        }
        let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
        text.push(char::from(b'0' + channel));
        STANDARD.encode_string(data, &mut text);
        Ok(Outbound::Text(text))
    }

    /// v5's CLOSE signal for `channel`; older protocols close only the whole connection.
    pub fn close(self, channel: u8) -> Option<Outbound> {
        (self == Self::V5).then(|| Outbound::Binary(vec![CLOSE_SIGNAL, channel]))
    }
}

/// The first message of each port-forward channel over WebSocket: the port, little-endian
/// (kubelet `portforward.handleWebSocketStreams`).
pub fn port_prefix(port: u16) -> [u8; 2] {
    port.to_le_bytes()
}

#[cfg(test)]
#[path = "channel/tests.rs"]
mod tests;
