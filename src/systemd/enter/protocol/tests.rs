use super::*;

fn request() -> Request {
    Request {
        id: 7,
        timeout_ms: 1500,
        max_output: 10 * 1024,
        candidates: vec![b"/usr/bin/true".to_vec(), b"/bin/true".to_vec()],
        argv: vec![b"true".to_vec(), Vec::new(), b"a b".to_vec()],
        envp: vec![b"PATH=/usr/bin:/bin".to_vec(), b"EMPTY=".to_vec()],
    }
}

#[test]
fn a_request_comes_back_as_it_was_sent_empty_arguments_included() {
    let packet = request().encode().unwrap();
    assert_eq!(Request::decode(&packet), Some(request()));
    assert_eq!(request_id(&packet), Some(7));
    let no_environment = Request {
        envp: Vec::new(),
        ..request()
    };
    assert_eq!(
        Request::decode(&no_environment.encode().unwrap()),
        Some(no_environment)
    );
}

#[test]
fn a_request_that_cannot_be_passed_to_execve_is_not_encoded() {
    let nul = Request {
        argv: vec![b"tr\0ue".to_vec()],
        ..request()
    };
    assert_eq!(nul.encode(), None);
    let huge = Request {
        envp: vec![vec![b'x'; MAX_REQUEST]],
        ..request()
    };
    assert_eq!(huge.encode(), None);
}

#[test]
fn malformed_requests_are_refused() {
    let packet = request().encode().unwrap();
    // Cut anywhere: the header, or the last string's NUL.
    for length in [0, 3, 19, packet.len() - 1] {
        assert_eq!(Request::decode(&packet[..length]), None, "{length}");
    }
    // More strings claimed than sent; no program; no argv.
    let mut claims_more = packet.clone();
    claims_more[16..20].copy_from_slice(&100u32.to_le_bytes());
    assert_eq!(Request::decode(&claims_more), None);
    for empty in [
        Request {
            candidates: Vec::new(),
            ..request()
        },
        Request {
            argv: Vec::new(),
            ..request()
        },
    ] {
        assert_eq!(Request::decode(&empty.encode().unwrap()), None);
    }
}

#[test]
fn the_output_asked_for_is_capped() {
    let greedy = Request {
        max_output: u32::MAX,
        ..request()
    };
    let decoded = Request::decode(&greedy.encode().unwrap()).unwrap();
    assert_eq!(decoded.max_output as usize, MAX_OUTPUT);
}

#[test]
fn every_end_of_a_reply_comes_back_as_it_was_sent() {
    for end in [
        End::Exited(3),
        End::Signaled(9),
        End::TimedOut,
        End::NotFound,
        End::ExecFailed(13),
        End::ProberFailed(24),
    ] {
        let reply = Reply {
            id: 9,
            end,
            output: b"out".to_vec(),
        };
        assert_eq!(Reply::decode(&reply.encode()), Some(reply));
    }
}

#[test]
fn a_reply_keeps_the_last_bytes_of_long_output() {
    let mut output = vec![b'a'; MAX_OUTPUT];
    output.extend_from_slice(b"end");
    let reply = Reply {
        id: 1,
        end: End::Exited(0),
        output,
    };
    let decoded = Reply::decode(&reply.encode()).unwrap();
    assert_eq!(decoded.output.len(), MAX_OUTPUT);
    assert!(decoded.output.ends_with(b"end"));
}

#[test]
fn replies_from_a_hostile_prober_are_refused() {
    let good = Reply {
        id: 1,
        end: End::Exited(0),
        output: Vec::new(),
    }
    .encode();
    let mut unknown_kind = good.clone();
    unknown_kind[4] = 6;
    assert_eq!(Reply::decode(&unknown_kind), None);
    assert_eq!(Reply::decode(&good[..8]), None);
    let mut too_long = good;
    too_long.resize(MAX_REPLY + 1, b'x');
    assert_eq!(Reply::decode(&too_long), None);
}
