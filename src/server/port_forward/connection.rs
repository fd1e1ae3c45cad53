//! One forwarded connection: dial `127.0.0.1:<port>` (pods share the node's network, where
//! the kubelet dials localhost inside the pod's network namespace) and copy both ways until
//! either side closes. A failed dial ends with the kubelet's message for the error stream
//! (`error forwarding port %d to pod %s, uid %v: %v`). The session owns the client's side
//! and talks to this task through bounded channels. Layer 6.

use std::net::Ipv4Addr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What one read from the pod's port takes.
const READ_BUFFER: usize = 32 * 1024;
/// Chunks from the client waiting for the pod's port.
pub const INBOUND_CHUNKS: usize = 16;

/// The pod a session forwards to, for the kubelet's error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The pod's name.
    pub pod: String,
    /// The pod's UID.
    pub uid: String,
}

/// What a connection reports to its session; `key` names the connection in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// Bytes from the pod's port, for the client.
    Data {
        /// The connection.
        key: u32,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// `len` bytes of the client's went to the pod's port.
    Written {
        /// The connection.
        key: u32,
        /// How many.
        len: usize,
    },
    /// The connection is over; with the kubelet's text when the dial failed.
    Ended {
        /// The connection.
        key: u32,
        /// The error stream's message.
        error: Option<String>,
    },
}

/// Forwards connection `key` to `port` until it ends; returns early when the session is gone.
pub async fn forward(
    key: u32,
    port: u16,
    target: Target,
    mut inbound: mpsc::Receiver<Vec<u8>>,
    outbound: mpsc::Sender<Forwarded>,
) {
    let stream = match TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
        Ok(stream) => stream,
        Err(error) => {
            let error = Some(error_text(port, &target, &error));
            let _ = outbound.send(Forwarded::Ended { key, error }).await;
            return;
        }
    };
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer = vec![0u8; READ_BUFFER];
    loop {
        let report = tokio::select! {
            chunk = inbound.recv() => {
                let Some(chunk) = chunk else { break };
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
                Forwarded::Written { key, len: chunk.len() }
            }
            read = reader.read(&mut buffer) => {
                let Ok(read @ 1..) = read else { break };
                Forwarded::Data { key, bytes: buffer[..read].to_vec() }
            }
        };
        if outbound.send(report).await.is_err() {
            return;
        }
    }
    let _ = outbound.send(Forwarded::Ended { key, error: None }).await;
}

/// The kubelet's text for a port it could not forward (`httpStreamHandler.portForward`),
/// ending as Go's dialer words the error (`connect: connection refused`).
pub fn error_text(port: u16, target: &Target, error: &std::io::Error) -> String {
    format!(
        "error forwarding port {port} to pod {}, uid {}: dial tcp4 127.0.0.1:{port}: connect: {}",
        target.pod,
        target.uid,
        error.kind()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            pod: "web".into(),
            uid: "1234".into(),
        }
    }

    #[tokio::test]
    async fn a_refused_dial_ends_with_the_kubelets_error_text() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let (_to_pod, inbound) = mpsc::channel(1);
        let (outbound, mut reports) = mpsc::channel(4);
        forward(3, port, target(), inbound, outbound).await;
        let Some(Forwarded::Ended {
            key: 3,
            error: Some(error),
        }) = reports.recv().await
        else {
            panic!("no error");
        };
        let prefix = format!("error forwarding port {port} to pod web, uid 1234: dial tcp4 ");
        assert!(error.starts_with(&prefix), "{error}");
        assert!(error.ends_with(": connect: connection refused"), "{error}");
    }

    #[tokio::test]
    async fn bytes_go_both_ways_until_the_pod_side_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (to_pod, inbound) = mpsc::channel(1);
        let (outbound, mut reports) = mpsc::channel(4);
        let task = tokio::spawn(forward(1, port, target(), inbound, outbound));
        let (mut pod, _) = listener.accept().await.unwrap();
        to_pod.send(b"ping".to_vec()).await.unwrap();
        assert_eq!(
            reports.recv().await,
            Some(Forwarded::Written { key: 1, len: 4 })
        );
        let mut got = [0u8; 4];
        pod.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        pod.write_all(b"pong").await.unwrap();
        drop(pod);
        assert_eq!(
            reports.recv().await,
            Some(Forwarded::Data {
                key: 1,
                bytes: b"pong".to_vec()
            })
        );
        assert_eq!(
            reports.recv().await,
            Some(Forwarded::Ended {
                key: 1,
                error: None
            })
        );
        task.await.unwrap();
    }
}
