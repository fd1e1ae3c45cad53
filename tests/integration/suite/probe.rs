//! How the suite talks to a daemon: a request over TCP (or a bare connect for a banner)
//! expecting bytes in the answer, a DNS query over UDP, a request on a control socket in
//! the container's `/run`, or a line the container printed to the journal. Each probe
//! retries until its deadline: daemons take a moment after their unit runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use systemk::unit::UnitName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::support::wait_for;

/// What a case sends and what the answer must contain.
pub enum Probe {
    /// Connect to `127.0.0.1:port`, send `send` (empty: wait for a banner) and read
    /// until the answer contains `expect`.
    Tcp {
        port: u16,
        send: &'static [u8],
        expect: &'static [u8],
    },
    /// An A query for `localhost.` to `127.0.0.1:53`: a matching answer with rcode 0 and
    /// at least one record.
    Dns,
    /// Connect to the Unix socket `/run/<path>` (in the container's own `/run`, or in the
    /// host's when the package ships the directory), send `send`, expect `expect`.
    Unix {
        path: &'static str,
        send: &'static [u8],
        expect: &'static [u8],
    },
    /// The container's journal contains `expect` (for tools that print and exit).
    Journal { expect: &'static str },
}

impl Probe {
    /// An HTTP/1.0 `GET path` on `port` whose answer contains `expect`.
    pub const fn http(port: u16, request: &'static [u8], expect: &'static [u8]) -> Self {
        Self::Tcp {
            port,
            send: request,
            expect,
        }
    }

    /// The TCP port the daemon listens on, when the probe uses one.
    pub fn tcp_port(&self) -> Option<u16> {
        match self {
            Self::Tcp { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// Probes until the answer is right, failing the test after `deadline`.
    pub async fn check(&self, deadline: Duration, run_dir: &Path, unit: &UnitName) {
        match self {
            Self::Tcp { port, send, expect } => {
                wait_for(
                    deadline,
                    &format!("{} on port {port}", show(expect)),
                    || async {
                        let stream = tokio::net::TcpStream::connect(("127.0.0.1", *port))
                            .await
                            .ok()?;
                        exchange(stream, send, expect).await
                    },
                )
                .await;
            }
            Self::Dns => {
                let answer = wait_for(deadline, "an answer on port 53", dns_localhost).await;
                assert_eq!(answer[3] & 0x0f, 0, "rcode: {answer:?}");
                let records = u16::from_be_bytes([answer[6], answer[7]]);
                assert!(records >= 1, "no answer record: {answer:?}");
            }
            Self::Unix { path, send, expect } => {
                let candidates: Vec<PathBuf> =
                    vec![run_dir.join(path), Path::new("/run").join(path)];
                wait_for(
                    deadline,
                    &format!("{} on /run/{path}", show(expect)),
                    || async {
                        for candidate in &candidates {
                            let Ok(stream) = tokio::net::UnixStream::connect(candidate).await
                            else {
                                continue;
                            };
                            if let Some(answer) = exchange(stream, send, expect).await {
                                return Some(answer);
                            }
                        }
                        None
                    },
                )
                .await;
            }
            Self::Journal { expect } => {
                wait_for(deadline, &format!("{expect:?} in the journal"), || async {
                    let out = Command::new("journalctl")
                        .args(["-u", unit.as_str(), "-o", "cat", "--no-pager"])
                        .output()
                        .ok()?;
                    String::from_utf8_lossy(&out.stdout)
                        .contains(expect)
                        .then_some(())
                })
                .await;
            }
        }
    }
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Sends `send` and reads until the answer contains `expect` (or the peer stops).
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    send: &[u8],
    expect: &[u8],
) -> Option<Vec<u8>> {
    if !send.is_empty() {
        stream.write_all(send).await.ok()?;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if contains(&answer, expect) {
            return Some(answer);
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf));
        match read.await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One A query for `localhost.` to 127.0.0.1:53; the answer, if one with our id came.
async fn dns_localhost() -> Option<Vec<u8>> {
    let mut query = vec![0x5a, 0x17, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 9];
    query.extend_from_slice(b"localhost\0\0\x01\0\x01");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.send_to(&query, "127.0.0.1:53").await.ok()?;
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf));
    let n = read.await.ok()?.ok()?;
    (n >= 12 && buf[..2] == [0x5a, 0x17]).then(|| buf[..n].to_vec())
}
