//! `tcpSocket`: a connect within the timeout, closed at once (kubelet `probe/tcp`).
//! Layer 4.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use super::outcome::Outcome;

/// Connects to `host:port`; the error text is the output, as the kubelet's.
pub async fn probe(host: &str, port: u16, limit: Duration) -> Outcome {
    match timeout(limit, TcpStream::connect((host, port))).await {
        Ok(Ok(_stream)) => Outcome::success(""),
        Ok(Err(error)) => Outcome::failure(format!("dial tcp {host}:{port}: {error}")),
        Err(_) => Outcome::failure(format!("dial tcp {host}:{port}: i/o timeout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::probe::outcome::Result;

    #[tokio::test]
    async fn connects_or_fails_with_the_dial_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(up.result, Result::Success);
        drop(listener);
        let down = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(down.result, Result::Failure);
        assert!(
            down.output.starts_with("dial tcp 127.0.0.1:"),
            "{}",
            down.output
        );
    }
}
