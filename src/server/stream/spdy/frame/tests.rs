use super::*;
use crate::server::stream::spdy::testing::go_frames;

fn every_kind() -> Vec<Frame> {
    vec![
        Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 7,
            flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
            header_block: b"compressed".to_vec(),
        },
        Frame::SynReply {
            stream_id: 3,
            flags: FLAG_FIN,
            header_block: vec![1, 2, 3],
        },
        Frame::RstStream {
            stream_id: 5,
            status: 5,
        },
        Frame::Settings {
            clear: true,
            entries: vec![
                Setting {
                    flags: 1,
                    id: 7,
                    value: 1 << 20,
                },
                Setting {
                    flags: 0,
                    id: 4,
                    value: 100,
                },
            ],
        },
        Frame::Ping { id: 1 },
        Frame::GoAway {
            last_good_stream_id: 7,
            status: 0,
        },
        Frame::Headers {
            stream_id: 9,
            flags: 0,
            header_block: vec![],
        },
        Frame::WindowUpdate {
            stream_id: 0,
            delta: 0x7fff_ffff,
        },
        Frame::Ignored { frame_type: 10 },
        Frame::Data {
            stream_id: 11,
            flags: FLAG_FIN,
            data: vec![0; 70_000],
        },
        Frame::Data {
            stream_id: 13,
            flags: 0,
            data: vec![],
        },
    ]
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out).expect("encodes");
    out
}

#[test]
fn every_frame_type_round_trips() {
    for frame in every_kind() {
        let bytes = encoded(&frame);
        assert_eq!(decode(&bytes, MAX_LENGTH), Ok(Some((frame, bytes.len()))));
    }
}

#[test]
fn a_frame_cut_anywhere_asks_for_more_bytes() {
    for frame in every_kind() {
        let bytes = encoded(&frame);
        for cut in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], MAX_LENGTH),
                Ok(None),
                "{frame:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn frames_back_to_back_split_one_at_a_time() {
    let bytes: Vec<u8> = every_kind().iter().flat_map(encoded).collect();
    let mut rest = bytes.as_slice();
    let mut frames = Vec::new();
    while let Some((frame, used)) = decode(rest, MAX_LENGTH).expect("decodes") {
        frames.push(frame);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    assert_eq!(frames, every_kind());
}

#[test]
fn go_client_frames_decode_to_what_they_say() {
    let frames: Vec<Frame> = go_frames("exec")
        .into_iter()
        .map(|(comment, bytes)| {
            let (frame, used) = decode(&bytes, MAX_LENGTH).expect(&comment).expect(&comment);
            assert_eq!(used, bytes.len(), "{comment}");
            frame
        })
        .collect();
    assert!(matches!(
        &frames[0],
        Frame::SynStream { stream_id: 1, associated_to: 0, priority: 0, flags: 0, header_block }
            if header_block.starts_with(&[0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2])
    ));
    assert!(matches!(frames[3], Frame::SynStream { stream_id: 7, .. }));
    assert_eq!(
        frames[4],
        Frame::Data {
            stream_id: 3,
            flags: 0,
            data: b"hello\n".to_vec()
        }
    );
    assert_eq!(
        frames[5],
        Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: vec![]
        }
    );
    assert_eq!(frames[6], Frame::Ping { id: 1 });
    assert_eq!(
        frames[7],
        Frame::GoAway {
            last_good_stream_id: 0,
            status: 0
        }
    );
}

#[test]
fn go_client_frames_encode_back_to_the_same_bytes() {
    for (comment, bytes) in go_frames("portforward") {
        let (frame, _) = decode(&bytes, MAX_LENGTH).expect(&comment).expect(&comment);
        assert_eq!(encoded(&frame), bytes, "{comment}");
    }
}

#[test]
fn attack_a_length_over_the_limit_is_refused_before_the_body_arrives() {
    // A DATA header claiming 16 MiB - 1, and nothing else.
    let header = [0, 0, 0, 1, 0, 0xff, 0xff, 0xff];
    assert_eq!(
        decode(&header, 1 << 20),
        Err(ProtocolError::FrameTooLarge {
            len: MAX_LENGTH,
            max: 1 << 20
        })
    );
}

#[test]
fn attack_a_settings_count_larger_than_the_frame_is_refused_without_allocating() {
    let mut bytes = vec![0x80, 3, 0, 4, 0, 0, 0, 4];
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        decode(&bytes, MAX_LENGTH),
        Err(ProtocolError::BadLength {
            frame_type: 4,
            len: 4
        })
    );
}

#[test]
fn other_versions_are_refused() {
    // SPDY/2 PING.
    let bytes = [0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1];
    assert_eq!(
        decode(&bytes, MAX_LENGTH),
        Err(ProtocolError::UnsupportedVersion(2))
    );
}

#[test]
fn fixed_size_frames_with_another_size_are_refused() {
    for (frame_type, len) in [
        (3u16, 4usize),
        (6, 8),
        (7, 4),
        (9, 12),
        (1, 9),
        (2, 3),
        (8, 0),
    ] {
        let mut bytes = vec![0x80, 3];
        bytes.extend_from_slice(&frame_type.to_be_bytes());
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
        bytes.resize(8 + len, 1);
        assert_eq!(
            decode(&bytes, MAX_LENGTH),
            Err(ProtocolError::BadLength { frame_type, len }),
            "type {frame_type}"
        );
    }
}

#[test]
fn forbidden_values_are_refused() {
    let cases: [(&[u8], &str); 5] = [
        (&[0, 0, 0, 0, 0, 0, 0, 0], "DATA"),
        (
            &[0x80, 3, 0, 1, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "SYN_STREAM",
        ),
        (
            &[0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
            "RST_STREAM",
        ),
        (
            &[0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0x80, 0, 0, 0],
            "WINDOW_UPDATE",
        ),
        (
            &[0x80, 3, 0, 3, 0, 0, 0, 8, 0x80, 0, 0, 0, 0, 0, 0, 1],
            "RST_STREAM",
        ),
    ];
    for (bytes, name) in cases {
        assert!(
            matches!(decode(bytes, MAX_LENGTH), Err(ProtocolError::InvalidFrame { frame, .. }) if frame == name),
            "{name}: {bytes:?}"
        );
    }
}

#[test]
fn unknown_control_types_are_skipped_whole() {
    let bytes = [0x80, 3, 0x12, 0x34, 0xff, 0, 0, 2, 9, 9, 0x80, 3, 0, 6];
    assert_eq!(
        decode(&bytes, MAX_LENGTH),
        Ok(Some((Frame::Ignored { frame_type: 0x1234 }, 10)))
    );
}

#[test]
fn encoding_refuses_what_spdy_cannot_carry() {
    let mut out = vec![7];
    let too_long = Frame::Data {
        stream_id: 1,
        flags: 0,
        data: vec![0; MAX_LENGTH + 1],
    };
    assert!(matches!(
        encode(&too_long, &mut out),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    let no_stream = Frame::RstStream {
        stream_id: 0,
        status: 5,
    };
    assert!(encode(&no_stream, &mut out).is_err());
    let no_delta = Frame::WindowUpdate {
        stream_id: 1,
        delta: 0,
    };
    assert!(encode(&no_delta, &mut out).is_err());
    assert_eq!(out, vec![7], "a refused frame leaves nothing behind");
}
