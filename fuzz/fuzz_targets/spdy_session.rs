//! Arbitrary bytes into a server session, fed in two pieces, with the handler answering every
//! stream it opens the way exec does (reply, data, FIN, consumed): no panic, and after an
//! error nothing more is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use systemk::server::stream::spdy::{Event, Headers, Session, SessionLimits};

fuzz_target!(|data: &[u8]| {
    let limits = SessionLimits {
        max_frame: 1 << 16,
        max_header_block: 1 << 12,
        max_streams: 8,
    };
    let Ok(mut session) = Session::new(limits) else {
        return;
    };
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut pending = data[..cut].to_vec();
    for piece in [&data[cut..], &[][..]] {
        pending.extend_from_slice(piece);
        let mut events = Vec::new();
        let Ok(used) = session.receive(&pending, &mut events) else {
            return;
        };
        pending.drain(..used);
        for event in events {
            match event {
                Event::Opened { stream_id, .. } => {
                    let _ = session.reply(stream_id, &Headers::new(), false);
                    let _ = session.send_data(stream_id, b"output", stream_id % 4 == 1);
                }
                Event::Data { stream_id, data } => {
                    let _ = session.consumed(stream_id, data.len());
                }
                Event::Finished { .. } | Event::Reset { .. } | Event::GoAway => {}
            }
        }
        let _ = session.take_output();
    }
});
