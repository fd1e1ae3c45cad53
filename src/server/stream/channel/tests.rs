use super::*;

#[test]
fn negotiation_takes_the_clients_first_known_protocol() {
    let kubectl = "v5.channel.k8s.io, v4.channel.k8s.io";
    assert_eq!(
        ChannelProtocol::negotiate(Some(kubectl)),
        Some(ChannelProtocol::V5)
    );
    let browser = "unknown, base64.channel.k8s.io, channel.k8s.io";
    assert_eq!(
        ChannelProtocol::negotiate(Some(browser)),
        Some(ChannelProtocol::V1Base64)
    );
    assert_eq!(ChannelProtocol::negotiate(None), Some(ChannelProtocol::V1));
    assert_eq!(ChannelProtocol::negotiate(Some("v3.channel.k8s.io")), None);
    for protocol in ALL {
        assert_eq!(
            ChannelProtocol::negotiate(Some(protocol.name())),
            Some(protocol)
        );
    }
}

#[test]
fn binary_messages_are_a_channel_byte_and_the_bytes() {
    let v4 = ChannelProtocol::V4;
    assert_eq!(
        v4.encode(1, b"out"),
        Ok(Outbound::Binary(b"\x01out".to_vec()))
    );
    assert_eq!(
        v4.decode(b"\x00foo\n"),
        Ok(Some(Inbound::Data {
            channel: 0,
            data: b"foo\n".to_vec()
        }))
    );
    // The kubelet writes an empty message first to say the streams are ready.
    assert_eq!(v4.encode(1, b""), Ok(Outbound::Binary(vec![1])));
    assert_eq!(v4.decode(b""), Ok(None));
}

#[test]
fn base64_messages_are_a_channel_digit_and_base64() {
    // The examples of apimachinery's wsstream documentation.
    let base64 = ChannelProtocol::V1Base64;
    assert_eq!(
        base64.decode(b"0Zm9vCg=="),
        Ok(Some(Inbound::Data {
            channel: 0,
            data: b"foo\n".to_vec()
        }))
    );
    assert_eq!(base64.encode(1, b"\n"), Ok(Outbound::Text("1Cg==".into())));
    assert_eq!(
        ChannelProtocol::V4Base64.encode(3, b""),
        Ok(Outbound::Text("3".into()))
    );
}

#[test]
fn v5_carries_the_close_signal() {
    let v5 = ChannelProtocol::V5;
    assert_eq!(
        v5.decode(&[255, 0]),
        Ok(Some(Inbound::Close { channel: 0 }))
    );
    assert_eq!(v5.close(1), Some(Outbound::Binary(vec![255, 1])));
    assert_eq!(ChannelProtocol::V4.close(1), None);
    // Before v5, 255 is just a channel number.
    assert_eq!(
        ChannelProtocol::V4.decode(&[255, 0]),
        Ok(Some(Inbound::Data {
            channel: 255,
            data: vec![0]
        }))
    );
}

#[test]
fn attack_malformed_messages_are_errors() {
    let bad =
        |r: Result<Option<Inbound>>| matches!(r, Err(ProtocolError::MalformedChannelMessage(_)));
    assert!(bad(ChannelProtocol::V5.decode(&[255])));
    assert!(bad(ChannelProtocol::V5.decode(&[255, 0, 1])));
    assert!(bad(ChannelProtocol::V4Base64.decode(b"x AAAA")));
    assert!(bad(ChannelProtocol::V4Base64.decode(b"0not base64!")));
    assert!(ChannelProtocol::V1Base64.encode(10, b"").is_err());
}

#[test]
fn only_v4_and_later_report_status_as_json() {
    let json: Vec<bool> = ALL.iter().map(|p| p.status_is_json()).collect();
    assert_eq!(json, [true, true, true, false, false]);
}

#[test]
fn port_forward_channels_start_with_the_port_little_endian() {
    assert_eq!(port_prefix(8080), [0x90, 0x1f]);
}
