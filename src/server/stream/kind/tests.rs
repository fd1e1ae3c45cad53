use super::*;

#[test]
fn remote_command_streams_by_type() {
    let kinds: Vec<_> = ["error", "stdin", "stdout", "stderr", "resize"]
        .iter()
        .map(|t| RemoteCommandStream::from_headers(&Headers::new().with("streamType", t)))
        .collect();
    use RemoteCommandStream::*;
    assert_eq!(
        kinds,
        [Ok(Error), Ok(Stdin), Ok(Stdout), Ok(Stderr), Ok(Resize)]
    );
    assert!(RemoteCommandStream::from_headers(&Headers::new().with("streamType", "data")).is_err());
    assert!(RemoteCommandStream::from_headers(&Headers::new()).is_err());
}

#[test]
fn port_forward_streams_pair_by_request_id() {
    let headers = Headers::new()
        .with("streamType", "data")
        .with("port", "8080")
        .with("requestID", "4");
    assert_eq!(
        PortForwardStream::from_headers(&headers, 9),
        Ok(PortForwardStream {
            port: 8080,
            request_id: "4".into(),
            role: PortForwardRole::Data
        })
    );
}

#[test]
fn port_forward_without_request_id_pairs_by_stream_id_as_the_kubelet_does() {
    let error = Headers::new()
        .with("streamType", "error")
        .with("port", "80");
    let data = Headers::new().with("streamType", "data").with("port", "80");
    let error = PortForwardStream::from_headers(&error, 5).expect("error stream");
    let data = PortForwardStream::from_headers(&data, 7).expect("data stream");
    assert_eq!(
        (error.request_id.as_str(), data.request_id.as_str()),
        ("5", "5")
    );
}

#[test]
fn attack_bad_port_forward_headers_are_refused() {
    for (port, stream_type) in [
        (None, "data"),
        (Some("0"), "data"),
        (Some("65536"), "data"),
        (Some("-1"), "data"),
        (Some("80"), "stdin"),
    ] {
        let mut headers = Headers::new().with("streamType", stream_type);
        if let Some(port) = port {
            headers = headers.with("port", port);
        }
        assert!(
            PortForwardStream::from_headers(&headers, 1).is_err(),
            "{port:?} {stream_type}"
        );
    }
}

#[test]
fn resize_sizes_arrive_whole_or_in_pieces() {
    let mut decoder = ResizeDecoder::default();
    let size = |width, height| TerminalSize { width, height };
    assert_eq!(
        decoder.push(br#"{"Width":80,"Height":24}{"Width":1"#),
        Ok(vec![size(80, 24)])
    );
    assert_eq!(decoder.push(br#"00,"Height":50}"#), Ok(vec![size(100, 50)]));
    assert_eq!(decoder.push(b" \n"), Ok(vec![]));
}

#[test]
fn attack_resize_garbage_and_endless_objects_are_refused() {
    assert!(ResizeDecoder::default().push(b"not json").is_err());
    assert!(
        ResizeDecoder::default()
            .push(br#"{"Width":-1,"Height":1}"#)
            .is_err()
    );
    let mut endless = ResizeDecoder::default();
    let mut long = br#"{"Width":1,"x":""#.to_vec();
    long.extend(std::iter::repeat_n(b'a', 2000));
    assert_eq!(
        endless.push(&long),
        Err(ProtocolError::MalformedResize("a size longer than 1 KiB"))
    );
}

#[test]
fn a_go_tty_exec_names_its_streams_and_sends_a_size() {
    use crate::server::stream::spdy::testing::go_bytes;
    use crate::server::stream::spdy::{Event, Session, SessionLimits};
    let mut session = Session::new(SessionLimits::default()).expect("session");
    let mut events = Vec::new();
    session
        .receive(&go_bytes("tty"), &mut events)
        .expect("receives");
    let mut kinds = Vec::new();
    let mut sizes = ResizeDecoder::default();
    let mut got = Vec::new();
    for event in events {
        match event {
            Event::Opened { headers, .. } => {
                kinds.push(RemoteCommandStream::from_headers(&headers).expect("known stream"));
            }
            Event::Data { stream_id: 7, data } => got.extend(sizes.push(&data).expect("sizes")),
            other => panic!("unexpected {other:?}"),
        }
    }
    use RemoteCommandStream::*;
    assert_eq!(kinds, [Error, Stdin, Stdout, Resize]);
    assert_eq!(
        got,
        [TerminalSize {
            width: 80,
            height: 24
        }]
    );
}
