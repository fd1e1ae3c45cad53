use super::*;

const TIMEOUT: Duration = Duration::from_secs(30);

fn stream(role: PortForwardRole, request_id: &str, port: u16) -> PortForwardStream {
    PortForwardStream {
        port,
        request_id: request_id.into(),
        role,
    }
}

#[test]
fn a_pair_completes_with_its_second_stream_in_either_order() {
    let now = Instant::now();
    let mut pairs = Pairs::new(TIMEOUT);
    assert_eq!(
        pairs.add(stream(PortForwardRole::Error, "0", 80), 1, now),
        Ok(None)
    );
    assert_eq!(
        pairs.add(stream(PortForwardRole::Data, "1", 81), 3, now),
        Ok(None)
    );
    assert_eq!(
        pairs.add(stream(PortForwardRole::Data, "0", 80), 5, now),
        Ok(Some(Pair {
            port: 80,
            data: 5,
            error: 1
        }))
    );
    assert_eq!(
        pairs.add(stream(PortForwardRole::Error, "1", 81), 7, now),
        Ok(Some(Pair {
            port: 81,
            data: 3,
            error: 7
        }))
    );
    assert_eq!(pairs.next_deadline(), None);
}

#[test]
fn a_second_stream_of_the_same_role_is_refused_on_the_error_stream() {
    let now = Instant::now();
    let mut pairs = Pairs::new(TIMEOUT);
    pairs
        .add(stream(PortForwardRole::Error, "0", 80), 1, now)
        .unwrap();
    assert_eq!(
        pairs.add(stream(PortForwardRole::Error, "0", 80), 3, now),
        Err(Refused {
            error: Some(1),
            message: "error processing stream for request 0: error stream already assigned".into()
        })
    );
}

#[test]
fn an_incomplete_pair_times_out_as_the_kubelets_does() {
    let now = Instant::now();
    let mut pairs = Pairs::new(TIMEOUT);
    pairs
        .add(stream(PortForwardRole::Error, "7", 80), 1, now)
        .unwrap();
    assert_eq!(pairs.next_deadline(), Some(now + TIMEOUT));
    assert!(pairs.expire(now + TIMEOUT / 2).is_empty());
    let expired = pairs.expire(now + TIMEOUT);
    assert_eq!(
        expired,
        [(
            vec![1],
            Refused {
                error: Some(1),
                message: "(request=7) timed out waiting for streams".into()
            }
        )]
    );
    assert_eq!(pairs.next_deadline(), None);
}
