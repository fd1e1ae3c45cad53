use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::net::TcpListener;

use super::*;
use crate::server::stream::spdy::frame::{self, FLAG_FIN, Frame};
use crate::server::stream::spdy::headers::Deflater;
use crate::server::stream::spdy::testing::Peer;
use crate::server::stream_session::STREAM_CREATION_TIMEOUT;

const TIMEOUTS: Timeouts = Timeouts {
    creation: STREAM_CREATION_TIMEOUT,
    idle: Duration::from_secs(3600),
};

fn target() -> Target {
    Target {
        pod: "web".into(),
        uid: "1234".into(),
    }
}

/// The client's side, as client-go's port-forwarder writes it.
struct Client {
    io: DuplexStream,
    deflater: Deflater,
    peer: Peer,
    frames: Vec<(Frame, Option<Headers>)>,
    unread: Vec<u8>,
}

impl Client {
    fn new(io: DuplexStream) -> Self {
        Self {
            io,
            deflater: Deflater::new().unwrap(),
            peer: Peer::new(),
            frames: Vec::new(),
            unread: Vec::new(),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut bytes = Vec::new();
        frame::encode(&frame, &mut bytes).unwrap();
        self.io.write_all(&bytes).await.unwrap();
    }

    async fn open(&mut self, stream_id: u32, role: &str, port: u16, request_id: &str) {
        let headers = Headers::new()
            .with("streamType", role)
            .with("port", &port.to_string())
            .with("requestID", request_id);
        let header_block = self.deflater.deflate(&headers).unwrap();
        let frame = Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            header_block,
        };
        self.send(frame).await;
    }

    async fn data(&mut self, stream_id: u32, data: &[u8], fin: bool) {
        let flags = if fin { FLAG_FIN } else { 0 };
        let data = data.to_vec();
        self.send(Frame::Data {
            stream_id,
            flags,
            data,
        })
        .await;
    }

    /// Reads what the session wrote next.
    async fn read_more(&mut self) {
        let mut buffer = [0u8; 4096];
        let read = self.io.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the session ended");
        self.unread.extend_from_slice(&buffer[..read]);
        let mut whole = 0;
        while let Ok(Some((_, used))) = frame::decode(&self.unread[whole..], frame::MAX_LENGTH) {
            whole += used;
        }
        let complete: Vec<u8> = self.unread.drain(..whole).collect();
        self.frames.extend(self.peer.read(&complete));
    }

    /// Reads until `stream` has FIN; returns its bytes.
    async fn until_fin(&mut self, stream: u32) -> Vec<u8> {
        loop {
            let (bytes, fin) = data_of(&self.frames, stream);
            if fin {
                return bytes;
            }
            self.read_more().await;
        }
    }
}

fn data_of(frames: &[(Frame, Option<Headers>)], stream: u32) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let mut fin = false;
    for (frame, _) in frames {
        if let Frame::Data {
            stream_id,
            flags,
            data,
        } = frame
            && *stream_id == stream
        {
            bytes.extend(data);
            fin |= flags & FLAG_FIN != 0;
        }
    }
    (bytes, fin)
}

fn session() -> (Client, tokio::task::JoinHandle<()>) {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(serve(server_io, target(), TIMEOUTS));
    (Client::new(client_io), server)
}

#[tokio::test]
async fn a_pair_forwards_to_the_port_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (mut client, server) = session();
    client.open(1, "error", port, "0").await;
    client.open(3, "data", port, "0").await;
    client.data(3, b"ping", false).await;
    let (mut pod, _) = listener.accept().await.unwrap();
    let mut got = [0u8; 4];
    pod.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
    pod.write_all(b"pong").await.unwrap();
    drop(pod);
    assert_eq!(client.until_fin(3).await, b"pong");
    assert_eq!(client.until_fin(1).await, b"");
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn data_before_the_error_stream_waits_for_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (mut client, server) = session();
    client.open(1, "data", port, "0").await;
    client.data(1, b"early", false).await;
    client.open(3, "error", port, "0").await;
    let (mut pod, _) = listener.accept().await.unwrap();
    let mut got = [0u8; 5];
    pod.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"early");
    drop(pod);
    assert_eq!(client.until_fin(1).await, b"");
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_reported_on_the_error_stream() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (mut client, server) = session();
    client.open(1, "error", port, "7").await;
    client.open(3, "data", port, "7").await;
    let error = String::from_utf8(client.until_fin(1).await).unwrap();
    let expected = format!("error forwarding port {port} to pod web, uid 1234: ");
    assert!(error.starts_with(&expected), "{error}");
    assert_eq!(client.until_fin(3).await, b"");
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn attack_streams_with_bad_headers_are_refused() {
    let (mut client, server) = session();
    let headers = Headers::new().with("streamType", "data").with("port", "0");
    let header_block = client.deflater.deflate(&headers).unwrap();
    let frame = Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        flags: 0,
        header_block,
    };
    client.send(frame).await;
    client.open(3, "error", 80, "1").await;
    client.open(5, "error", 80, "1").await;
    let message = client.until_reset(5).await;
    drop(client);
    server.await.unwrap();
    assert!(
        message.0.contains(&1),
        "the bad stream is refused: {message:?}"
    );
    assert!(
        message.0.contains(&5),
        "the second error stream is refused: {message:?}"
    );
    assert_eq!(
        message.1,
        b"error processing stream for request 1: error stream already assigned"
    );
}

impl Client {
    /// Reads until `stream` is reset and stream 3 has data; returns the streams reset and
    /// that data.
    async fn until_reset(&mut self, stream: u32) -> (Vec<u32>, Vec<u8>) {
        loop {
            let resets: Vec<u32> = self
                .frames
                .iter()
                .filter_map(|(f, _)| match f {
                    Frame::RstStream { stream_id, .. } => Some(*stream_id),
                    _ => None,
                })
                .collect();
            let error = data_of(&self.frames, 3).0;
            if resets.contains(&stream) && !error.is_empty() {
                return (resets, error);
            }
            self.read_more().await;
        }
    }
}

#[tokio::test]
async fn a_pair_missing_its_data_stream_times_out_on_its_error_stream() {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let short = Timeouts {
        creation: Duration::from_millis(50),
        ..TIMEOUTS
    };
    let server = tokio::spawn(serve(server_io, target(), short));
    let mut client = Client::new(client_io);
    client.open(1, "error", 80, "4").await;
    assert_eq!(
        client.until_fin(1).await,
        b"(request=4) timed out waiting for streams"
    );
    drop(client);
    server.await.unwrap();
}

#[test]
fn held_bytes_are_accounted_when_a_connection_takes_or_drops_them() {
    let (to_pod, mut inbound) = mpsc::channel(1);
    let mut forward = Forward {
        error: 1,
        to_pod: Some(to_pod),
        waiting: VecDeque::from([b"ab".to_vec(), b"cde".to_vec(), b"f".to_vec()]),
        in_flight: 0,
        finished: false,
    };
    assert_eq!(forward.pass_on(), 0);
    assert_eq!(
        (forward.in_flight, forward.waiting.len()),
        (2, 2),
        "one chunk fits"
    );
    assert_eq!(inbound.try_recv().unwrap(), b"ab");
    drop(inbound);
    assert_eq!(
        forward.pass_on(),
        4,
        "the rest is dropped with the connection"
    );
    assert!(forward.waiting.is_empty() && forward.to_pod.is_none());
}
