use super::*;
use crate::server::stream::spdy::frame::MAX_LENGTH;
use crate::server::stream::spdy::testing::{Peer, go_bytes};

fn session() -> Session {
    Session::new(SessionLimits::default()).expect("session")
}

/// Feeds all of `bytes` and returns the events; the bytes must be whole frames.
fn receive_all(session: &mut Session, bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let used = session.receive(bytes, &mut events).expect("receives");
    assert_eq!(used, bytes.len());
    events
}

fn encoded(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        frame::encode(frame, &mut out).expect("encodes");
    }
    out
}

/// A SYN_STREAM as a Go client sends it, headers compressed on the client's own stream.
struct Client {
    deflater: Deflater,
}

impl Client {
    fn new() -> Self {
        Self {
            deflater: Deflater::new().expect("deflater"),
        }
    }

    fn open(&mut self, stream_id: u32, stream_type: &str) -> Vec<u8> {
        let header_block = self
            .deflater
            .deflate(&Headers::new().with("streamType", stream_type));
        let header_block = header_block.expect("deflates");
        encoded(&[Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            header_block,
        }])
    }
}

fn data(stream_id: u32, bytes: &[u8], flags: u8) -> Vec<u8> {
    encoded(&[Frame::Data {
        stream_id,
        flags,
        data: bytes.to_vec(),
    }])
}

#[test]
fn a_go_exec_opens_its_streams_sends_stdin_and_is_answered() {
    let mut session = session();
    let events = receive_all(&mut session, &go_bytes("exec"));
    let opened: Vec<(u32, Option<&str>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Opened { stream_id, headers } => Some((*stream_id, headers.get("streamtype"))),
            _ => None,
        })
        .collect();
    assert_eq!(
        opened,
        [
            (1, Some("error")),
            (3, Some("stdin")),
            (5, Some("stdout")),
            (7, Some("stderr"))
        ]
    );
    assert!(events.contains(&Event::Data {
        stream_id: 3,
        data: b"hello\n".to_vec()
    }));
    assert!(events.contains(&Event::Finished { stream_id: 3 }));
    assert_eq!(events.last(), Some(&Event::GoAway));
    // The PING is echoed, byte for byte as Go sent it.
    assert_eq!(
        session.take_output(),
        hex::decode("800300060000000400000001").expect("hex")
    );
}

#[test]
fn replies_status_and_output_read_back_as_the_client_reads_them() {
    let mut session = session();
    receive_all(&mut session, &go_bytes("exec"));
    session.take_output();
    for stream_id in [1, 3, 5, 7] {
        session
            .reply(stream_id, &Headers::new(), false)
            .expect("replies");
    }
    assert_eq!(session.send_data(5, b"out", true), Ok(3));
    assert_eq!(
        session.send_data(1, br#"{"status":"Success"}"#, true),
        Ok(20)
    );
    let frames = Peer::new().read(&session.take_output());
    let replies: Vec<u32> = frames
        .iter()
        .filter_map(|(f, h)| match f {
            Frame::SynReply {
                stream_id,
                flags: 0,
                ..
            } if h.as_ref() == Some(&Headers::new()) => Some(*stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(replies, [1, 3, 5, 7]);
    assert_eq!(
        frames[4].0,
        Frame::Data {
            stream_id: 5,
            flags: FLAG_FIN,
            data: b"out".to_vec()
        }
    );
    // stdin (3) was finished by the client and is not closed by systemk yet; 1 and 5 are
    // closed for sending but the client has not finished them.
    assert_eq!(session.open_streams(), 4);
    assert_eq!(
        session.send_data(5, b"more", false),
        Err(ProtocolError::StreamNotOpen(5))
    );
    assert_eq!(
        session.reply(3, &Headers::new(), false),
        Err(ProtocolError::StreamNotOpen(3))
    );
}

#[test]
fn frames_split_at_any_byte_give_the_same_events() {
    let bytes = go_bytes("tty");
    let whole = receive_all(&mut session(), &bytes);
    for cut in 1..bytes.len() {
        let mut session = session();
        let mut events = Vec::new();
        let used = session
            .receive(&bytes[..cut], &mut events)
            .expect("first part");
        let rest = [&bytes[used..cut], &bytes[cut..]].concat();
        let used_rest = session.receive(&rest, &mut events).expect("second part");
        assert_eq!(used_rest, rest.len());
        assert_eq!(events, whole, "cut at {cut}");
    }
}

#[test]
fn without_peer_flow_control_everything_is_sent() {
    // spdystream never sends WINDOW_UPDATE: holding to 64 KiB would stall stdout.
    let mut session = session();
    receive_all(&mut session, &Client::new().open(1, "stdout"));
    session.reply(1, &Headers::new(), false).expect("replies");
    let big = vec![7u8; 200 << 10];
    assert_eq!(session.send_data(1, &big, false), Ok(big.len()));
    let frames = Peer::new().read(&session.take_output());
    let sizes: Vec<usize> = frames
        .iter()
        .filter_map(|(f, _)| match f {
            Frame::Data { data, .. } => Some(data.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sizes,
        [32 << 10; 6]
            .into_iter()
            .chain([8 << 10])
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_peer_that_does_flow_control_is_held_to_its_windows() {
    let mut session = session();
    let mut client = Client::new();
    receive_all(&mut session, &client.open(1, "stdout"));
    session.reply(1, &Headers::new(), false).expect("replies");
    // A stream WINDOW_UPDATE shows the peer does flow control; the session window (64 KiB)
    // then binds.
    receive_all(
        &mut session,
        &encoded(&[Frame::WindowUpdate {
            stream_id: 1,
            delta: 1 << 20,
        }]),
    );
    assert_eq!(
        session.send_data(1, &vec![0; 100 << 10], false),
        Ok(64 << 10)
    );
    assert_eq!(
        session.send_data(1, b"x", true),
        Ok(0),
        "window closed; fin waits for the data"
    );
    receive_all(
        &mut session,
        &encoded(&[Frame::WindowUpdate {
            stream_id: 0,
            delta: 10,
        }]),
    );
    assert_eq!(session.send_data(1, b"0123456789abc", true), Ok(10));
    assert_eq!(session.open_streams(), 1, "not finished: 3 bytes were left");
}

#[test]
fn settings_change_the_windows_of_open_streams() {
    let mut session = session();
    let mut client = Client::new();
    receive_all(&mut session, &client.open(1, "stdout"));
    session.reply(1, &Headers::new(), false).expect("replies");
    let settings = Frame::Settings {
        clear: false,
        entries: vec![frame::Setting {
            flags: 0,
            id: 7,
            value: 1000,
        }],
    };
    receive_all(&mut session, &encoded(&[settings]));
    assert_eq!(session.send_data(1, &[0; 5000], false), Ok(1000));
    let too_big = Frame::Settings {
        clear: false,
        entries: vec![frame::Setting {
            flags: 0,
            id: 7,
            value: 0x8000_0000,
        }],
    };
    let mut events = Vec::new();
    assert!(session.receive(&encoded(&[too_big]), &mut events).is_err());
}

#[test]
fn attack_a_window_pushed_past_two_gigabytes_resets_the_stream() {
    let mut session = session();
    receive_all(&mut session, &Client::new().open(1, "stdin"));
    let update = Frame::WindowUpdate {
        stream_id: 1,
        delta: 0x7fff_ffff,
    };
    let events = receive_all(&mut session, &encoded(&[update]));
    assert_eq!(
        events,
        [Event::Reset {
            stream_id: 1,
            status: RST_FLOW_CONTROL_ERROR
        }]
    );
    let frames = Peer::new().read(&session.take_output());
    assert_eq!(
        frames[0].0,
        Frame::RstStream {
            stream_id: 1,
            status: RST_FLOW_CONTROL_ERROR
        }
    );
    let session_update = Frame::WindowUpdate {
        stream_id: 0,
        delta: 0x7fff_ffff,
    };
    assert!(
        session
            .receive(&encoded(&[session_update]), &mut Vec::new())
            .is_err()
    );
}

#[test]
fn consumed_data_opens_the_peer_windows_in_half_window_steps() {
    let mut session = session();
    receive_all(&mut session, &Client::new().open(1, "stdin"));
    session.consumed(1, 20 << 10).expect("consumed");
    assert!(session.take_output().is_empty());
    session.consumed(1, 20 << 10).expect("consumed");
    session
        .consumed(99, 30 << 10)
        .expect("a forgotten stream still counts for the session");
    let frames: Vec<Frame> = Peer::new()
        .read(&session.take_output())
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        frames,
        [
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 40 << 10
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 40 << 10
            },
        ]
    );
}

#[test]
fn attack_stream_ids_out_of_order_or_from_the_server_range_are_reset() {
    let mut session = session();
    let mut client = Client::new();
    let mut bytes = client.open(5, "stdin");
    bytes.extend(client.open(3, "stdout"));
    bytes.extend(client.open(8, "stderr"));
    let events = receive_all(&mut session, &bytes);
    assert_eq!(events.len(), 1, "only stream 5 opens: {events:?}");
    let frames: Vec<Frame> = Peer::new()
        .read(&session.take_output())
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        frames,
        [
            Frame::RstStream {
                stream_id: 3,
                status: RST_PROTOCOL_ERROR
            },
            Frame::RstStream {
                stream_id: 8,
                status: RST_PROTOCOL_ERROR
            },
        ]
    );
}

#[test]
fn attack_streams_past_the_limit_are_refused() {
    let limits = SessionLimits {
        max_streams: 2,
        ..SessionLimits::default()
    };
    let mut session = Session::new(limits).expect("session");
    let mut client = Client::new();
    let bytes: Vec<u8> = [1, 3, 5]
        .into_iter()
        .flat_map(|id| client.open(id, "data"))
        .collect();
    assert_eq!(receive_all(&mut session, &bytes).len(), 2);
    let frames = Peer::new().read(&session.take_output());
    assert_eq!(
        frames[0].0,
        Frame::RstStream {
            stream_id: 5,
            status: RST_REFUSED_STREAM
        }
    );
    // Once a stream is gone another may open.
    session.reset(1, RST_CANCEL).expect("reset");
    assert_eq!(receive_all(&mut session, &client.open(7, "data")).len(), 1);
}

#[test]
fn after_go_away_no_stream_opens_and_open_ones_go_on() {
    let mut session = session();
    let mut client = Client::new();
    receive_all(&mut session, &client.open(1, "stdout"));
    session.go_away(GOAWAY_OK).expect("go away");
    session
        .go_away(GOAWAY_OK)
        .expect("a second call sends nothing");
    assert!(receive_all(&mut session, &client.open(3, "stdin")).is_empty());
    session
        .reply(1, &Headers::new(), true)
        .expect("the open stream still answers");
    let frames = Peer::new().read(&session.take_output());
    assert_eq!(
        frames[0].0,
        Frame::GoAway {
            last_good_stream_id: 1,
            status: GOAWAY_OK
        }
    );
    assert_eq!(frames.len(), 2);
}

#[test]
fn data_after_the_peer_finished_resets_the_stream() {
    let mut session = session();
    let mut bytes = Client::new().open(1, "stdin");
    bytes.extend(data(1, b"last", FLAG_FIN));
    bytes.extend(data(1, b"late", 0));
    let events = receive_all(&mut session, &bytes);
    assert_eq!(
        events.last(),
        Some(&Event::Reset {
            stream_id: 1,
            status: RST_STREAM_ALREADY_CLOSED
        })
    );
    // Data on a stream nobody knows is dropped: it is late data of a reset stream.
    assert!(receive_all(&mut session, &data(9, b"x", 0)).is_empty());
}

#[test]
fn a_reset_from_the_peer_ends_the_stream() {
    let mut session = session();
    let mut bytes = go_bytes("portforward");
    bytes.extend(data(3, b"after reset", 0));
    let events = receive_all(&mut session, &bytes);
    assert!(events.contains(&Event::Reset {
        stream_id: 3,
        status: RST_CANCEL
    }));
    assert_eq!(
        session.reply(3, &Headers::new(), false),
        Err(ProtocolError::StreamNotOpen(3))
    );
    assert_eq!(
        session.send_data(1, b"x", false),
        Err(ProtocolError::StreamNotOpen(1)),
        "not replied"
    );
}

#[test]
fn attack_a_broken_session_queues_go_away_protocol_error() {
    let mut session = session();
    let mut events = Vec::new();
    let garbage_headers = encoded(&[Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        flags: 0,
        header_block: b"not zlib".to_vec(),
    }]);
    assert_eq!(
        session.receive(&garbage_headers, &mut events),
        Err(ProtocolError::HeaderCompression)
    );
    let frames = Peer::new().read(&session.take_output());
    assert_eq!(
        frames[0].0,
        Frame::GoAway {
            last_good_stream_id: 0,
            status: GOAWAY_PROTOCOL_ERROR
        }
    );
    let too_long = [0, 0, 0, 1, 0, 0xff, 0xff, 0xff];
    assert!(matches!(
        session.receive(&too_long, &mut events),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    assert!(frame::decode(&too_long, MAX_LENGTH).is_ok());
}

#[test]
fn even_pings_unknown_frames_and_replies_are_ignored() {
    let mut session = session();
    let frames = [Frame::Ping { id: 2 }, Frame::Ignored { frame_type: 10 }];
    assert!(receive_all(&mut session, &encoded(&frames)).is_empty());
    let reply = Deflater::new()
        .expect("deflater")
        .deflate(&Headers::new())
        .expect("deflates");
    let reply = Frame::SynReply {
        stream_id: 2,
        flags: 0,
        header_block: reply,
    };
    assert!(receive_all(&mut session, &encoded(&[reply])).is_empty());
    assert!(session.take_output().is_empty());
}
