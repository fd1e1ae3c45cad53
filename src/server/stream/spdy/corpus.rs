//! The fuzz corpus on stable: every file of `tests/fixtures/spdy/corpus/` (the recorded Go
//! frames and what `cargo fuzz` found worth keeping) through the frame decoder, a session,
//! port-forward's pairing and the channel decoders, as the `fuzz/` targets feed them. None
//! may panic.

use std::path::Path;

use std::time::{Duration, Instant};

use super::frame;
use super::{Event, Headers, Session, SessionLimits};
use crate::server::stream::channel::ChannelProtocol;
use crate::server::stream::kind::PortForwardStream;
use crate::server::stream::pairs::Pairs;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spdy/corpus");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(&path).expect("corpus file"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3, "the recorded Go frames at least");
    files
}

/// A fresh session that took `bytes`, and what it saw; `None` when it refused them.
fn received(bytes: &[u8]) -> Option<(Session, Vec<Event>)> {
    let limits = SessionLimits {
        max_frame: 1 << 16,
        max_header_block: 1 << 12,
        max_streams: 8,
    };
    let mut session = Session::new(limits).expect("session");
    let mut events = Vec::new();
    session.receive(bytes, &mut events).ok()?;
    Some((session, events))
}

#[test]
fn the_frame_decoder_takes_every_corpus_file() {
    for (name, bytes) in corpus() {
        let mut rest = bytes.as_slice();
        while let Ok(Some((_, used))) = frame::decode(rest, 1 << 16) {
            assert!(used <= rest.len(), "{name}");
            rest = &rest[used..];
        }
    }
}

#[test]
fn a_session_takes_every_corpus_file() {
    let mut opened = 0;
    for (_, bytes) in corpus() {
        let Some((mut session, events)) = received(&bytes) else {
            continue;
        };
        for event in events {
            if let Event::Opened { stream_id, .. } = event {
                opened += 1;
                let _ = session.reply(stream_id, &Headers::new(), false);
                let _ = session.send_data(stream_id, b"output", true);
            }
        }
    }
    assert!(
        opened >= 10,
        "the Go exec, tty and port-forward streams open"
    );
}

#[test]
fn port_forward_pairs_every_corpus_file() {
    let mut paired = 0;
    for (name, bytes) in corpus() {
        let Some((_, events)) = received(&bytes) else {
            continue;
        };
        let now = Instant::now();
        let mut pairs = Pairs::new(Duration::from_secs(30));
        for event in events {
            if let Event::Opened { stream_id, headers } = event
                && let Ok(stream) = PortForwardStream::from_headers(&headers, stream_id)
                && let Ok(Some(pair)) = pairs.add(stream, stream_id, now)
            {
                assert_ne!(pair.data, pair.error, "{name}");
                paired += 1;
            }
        }
        pairs.expire(now + Duration::from_secs(31));
        assert_eq!(pairs.next_deadline(), None, "{name}");
    }
    assert!(
        paired >= 1,
        "the Go port-forward recording pairs its streams"
    );
}

#[test]
fn the_channel_decoders_take_every_corpus_file() {
    for (_, bytes) in corpus() {
        for name in [
            "v5.channel.k8s.io",
            "v4.base64.channel.k8s.io",
            "channel.k8s.io",
        ] {
            let protocol = ChannelProtocol::negotiate(Some(name)).expect("known protocol");
            let _ = protocol.decode(&bytes);
        }
    }
}
