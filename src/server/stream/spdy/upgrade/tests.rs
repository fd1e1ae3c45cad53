use http::HeaderMap;

use super::*;

fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(*name, HeaderValue::from_static(value));
    }
    headers
}

/// What client-go's SPDY executor sends in 1.30+ (v5 first), with the API server's Upgrade.
fn exec_request() -> HeaderMap {
    request(&[
        ("Connection", "Upgrade"),
        ("Upgrade", "SPDY/3.1"),
        ("X-Stream-Protocol-Version", "v5.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v3.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v2.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "channel.k8s.io"),
    ])
}

#[test]
fn the_clients_first_supported_protocol_wins() {
    assert_eq!(
        negotiate(&exec_request(), REMOTE_COMMAND_PROTOCOLS),
        Ok("v5.channel.k8s.io")
    );
    let older = request(&[
        ("Connection", "keep-alive, Upgrade"),
        ("Upgrade", "spdy/3.1"),
        (
            "X-Stream-Protocol-Version",
            "v4.channel.k8s.io, v3.channel.k8s.io",
        ),
    ]);
    assert_eq!(
        negotiate(&older, REMOTE_COMMAND_PROTOCOLS),
        Ok("v4.channel.k8s.io")
    );
    let port_forward = request(&[
        ("Connection", "Upgrade"),
        ("Upgrade", "SPDY/3.1"),
        ("X-Stream-Protocol-Version", "portforward.k8s.io"),
    ]);
    assert_eq!(
        negotiate(&port_forward, PORT_FORWARD_PROTOCOLS),
        Ok("portforward.k8s.io")
    );
}

#[test]
fn switching_protocols_names_spdy_and_the_protocol() {
    let response = switching_protocols("v5.channel.k8s.io");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("connection"), Some("Upgrade"));
    assert_eq!(header("upgrade"), Some("SPDY/3.1"));
    assert_eq!(
        header("x-stream-protocol-version"),
        Some("v5.channel.k8s.io")
    );
}

#[test]
fn no_common_protocol_is_forbidden_and_lists_what_is_accepted() {
    let old = request(&[
        ("Connection", "Upgrade"),
        ("Upgrade", "SPDY/3.1"),
        (
            "X-Stream-Protocol-Version",
            "v3.channel.k8s.io,channel.k8s.io",
        ),
    ]);
    let refusal = negotiate(&old, REMOTE_COMMAND_PROTOCOLS).expect_err("refused");
    assert_eq!(refusal.status, StatusCode::FORBIDDEN);
    let response = refusal.response();
    let accepted: Vec<&str> = response
        .headers()
        .get_all(ACCEPTED_PROTOCOL_VERSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(accepted, REMOTE_COMMAND_PROTOCOLS);
    assert!(response.body().contains("unable to negotiate protocol"));
}

#[test]
fn attack_missing_or_wrong_upgrade_headers_are_bad_requests() {
    let cases = [
        request(&[("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]),
        request(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", " , "),
        ]),
        request(&[
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ]),
        request(&[
            ("Connection", "Upgrade"),
            ("Upgrade", "h2c"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ]),
    ];
    for headers in cases {
        let refusal = negotiate(&headers, REMOTE_COMMAND_PROTOCOLS).expect_err("refused");
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert!(
            refusal
                .response()
                .headers()
                .get(ACCEPTED_PROTOCOL_VERSIONS)
                .is_none()
        );
    }
}

#[test]
fn websocket_requests_are_told_from_spdy_ones() {
    let websocket = request(&[
        ("Connection", "keep-alive, Upgrade"),
        ("Upgrade", "websocket"),
    ]);
    assert!(is_websocket(&websocket));
    assert!(!is_websocket(&exec_request()));
    assert!(!is_websocket(&request(&[
        ("Connection", "upgraded"),
        ("Upgrade", "websocket")
    ])));
}
