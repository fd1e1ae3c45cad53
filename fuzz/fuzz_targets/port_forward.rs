//! Arbitrary bytes into a server session whose streams are paired as port-forward pairs them:
//! each opened stream read as a port-forward stream (port, type, request id), refused ones
//! reset, complete pairs answered, the clock moved past every deadline at the end. No
//! panic, and every pair joins two distinct streams with a port.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use systemk::server::stream::kind::PortForwardStream;
use systemk::server::stream::pairs::Pairs;
use systemk::server::stream::spdy::session::RST_REFUSED_STREAM;
use systemk::server::stream::spdy::{Event, Headers, Session, SessionLimits};

const TIMEOUT: Duration = Duration::from_secs(30);

fuzz_target!(|data: &[u8]| {
    let limits = SessionLimits {
        max_frame: 1 << 16,
        max_header_block: 1 << 12,
        max_streams: 8,
    };
    let Ok(mut session) = Session::new(limits) else {
        return;
    };
    let start = Instant::now();
    let mut pairs = Pairs::new(TIMEOUT);
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut pending = data[..cut].to_vec();
    for (step, piece) in [&data[cut..], &[][..]].into_iter().enumerate() {
        let now = start + Duration::from_secs(step as u64);
        pending.extend_from_slice(piece);
        let mut events = Vec::new();
        let Ok(used) = session.receive(&pending, &mut events) else {
            return;
        };
        pending.drain(..used);
        for event in events {
            match event {
                Event::Opened { stream_id, headers } => {
                    let paired = PortForwardStream::from_headers(&headers, stream_id)
                        .map_err(|_| ())
                        .and_then(|stream| pairs.add(stream, stream_id, now).map_err(|_| ()));
                    match paired {
                        Ok(Some(pair)) => {
                            assert_ne!(pair.data, pair.error);
                            assert!(pair.port > 0);
                            let _ = session.reply(pair.error, &Headers::new(), false);
                            let _ = session.reply(pair.data, &Headers::new(), false);
                            let _ = session.send_data(pair.data, b"answer", true);
                        }
                        Ok(None) => {}
                        Err(()) => {
                            let _ = session.reset(stream_id, RST_REFUSED_STREAM);
                        }
                    }
                }
                Event::Data { stream_id, data } => {
                    let _ = session.consumed(stream_id, data.len());
                }
                Event::Finished { .. } | Event::Reset { .. } | Event::GoAway => {}
            }
        }
        let _ = session.take_output();
    }
    for (streams, refused) in pairs.expire(start + TIMEOUT + Duration::from_secs(2)) {
        assert!(!streams.is_empty());
        assert!(refused.error.is_none_or(|error| streams.contains(&error)));
    }
    assert_eq!(pairs.next_deadline(), None, "every pair expired");
});
