//! Test helpers: the recorded Go frames of `tests/fixtures/spdy/` and a peer that reads what
//! the session writes, as the Go client would.

use super::frame::{self, Frame};
use super::headers::{Headers, Inflater};

/// The frames of one recorded file, each with its comment.
pub(crate) fn go_frames(name: &str) -> Vec<(String, Vec<u8>)> {
    let text = match name {
        "exec" => include_str!("../../../../tests/fixtures/spdy/exec.hex"),
        "tty" => include_str!("../../../../tests/fixtures/spdy/tty.hex"),
        "portforward" => include_str!("../../../../tests/fixtures/spdy/portforward.hex"),
        other => panic!("no fixture {other}"),
    };
    let mut frames = Vec::new();
    let mut comment = String::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            comment = c.to_owned();
        } else if !line.is_empty() {
            frames.push((comment.clone(), hex::decode(line).expect("fixture is hex")));
        }
    }
    frames
}

/// All frames of one recorded file, back to back as on the wire.
pub(crate) fn go_bytes(name: &str) -> Vec<u8> {
    go_frames(name)
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect()
}

/// The client's side: decodes what the session wrote, inflating header blocks in order.
pub(crate) struct Peer {
    inflater: Inflater,
}

impl Peer {
    pub(crate) fn new() -> Self {
        Self {
            inflater: Inflater::new(1 << 20),
        }
    }

    /// Every frame in `bytes`, with the headers of SYN_REPLY inflated.
    pub(crate) fn read(&mut self, bytes: &[u8]) -> Vec<(Frame, Option<Headers>)> {
        let mut frames = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (frame, used) = frame::decode(rest, frame::MAX_LENGTH)
                .expect("session output decodes")
                .expect("session output holds whole frames");
            let headers = match &frame {
                Frame::SynReply { header_block, .. } => Some(
                    self.inflater
                        .inflate(header_block)
                        .expect("reply headers inflate"),
                ),
                _ => None,
            };
            frames.push((frame, headers));
            rest = &rest[used..];
        }
        frames
    }
}
