//! The kubelet API under abuse (issue 10, point 8): the real server, in this process with
//! shrunken [`Limits`], over a pod run by the real engine in the sandbox's systemd. A TCP
//! connection that never starts TLS is dropped, a client trickling its request head is cut
//! off, a kept-alive connection is closed after its idle time, a client without a
//! certificate gets one 401 and the connection closes, connections
//! past the cap are closed at once, a second followed log gets 429 until the first goes
//! away, an overlong journal line is cut and says so, and a read without `limitBytes`
//! stops at the default bound with a notice. The clients here are rustls over blocking
//! sockets (run in `spawn_blocking`) where a test needs byte-level control, else reqwest.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::json;
use systemk::server::tls::{self, ServingCert};
use systemk::server::{Limits, Server, Settings};

use crate::kubelet_api::TestCa;
use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, unique_uid};
use crate::support::wait_for;

/// Small enough that nothing waits long, large enough for a loaded machine.
const SHORT: Duration = Duration::from_secs(1);

/// How much later than its deadline a cut may come on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(4);

/// One in-process kubelet API and what a client needs to reach it.
struct Api {
    address: SocketAddr,
    serving: ServingCert,
    ca: TestCa,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Api {
    async fn start(context: &TestContext, engine: &Engine, limits: Limits) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = TestCa::new("limits test CA");
        let serving = tls::self_signed_cert(
            context.workspace(),
            &["localhost".to_owned()],
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap();
        let settings = Settings {
            address: "127.0.0.1:0".parse().unwrap(),
            serving: serving.clone(),
            client_ca: Some(tls::parse_ca_bundle(ca.pem.as_bytes(), "test CA").unwrap()),
            limits,
            token_webhook_cache_ttl: None,
        };
        let ctx = engine.ctx();
        let server = Server::bind(
            settings,
            ctx.systemd.clone(),
            ctx.dirs.clone(),
            ctx.unit_dir.clone(),
            None,
            "limits-node".to_owned(),
        )
        .unwrap();
        let address = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            serving,
            ca,
            stop: Some(stop),
        }
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&self.serving.chain_pem).unwrap()])
            .identity(self.ca.client("admin", "system:masters"))
            .resolve("localhost", self.address)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.address.port())
    }

    /// A TLS connection over a blocking socket, handshake done; with the admin's
    /// certificate when `with_cert`.
    fn tls(&self, with_cert: bool) -> StreamOwned<ClientConnection, TcpStream> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.serving.chain_pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let config = if with_cert {
            let pem = self.ca.client_pem("admin", "system:masters");
            let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        let connection =
            ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
        let socket = TcpStream::connect(self.address).unwrap();
        socket.set_read_timeout(Some(SLACK * 4)).unwrap();
        let mut stream = StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        stream
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads until the server closes the connection (EOF or an error), returning what came and
/// how long it took; fails the test if the read timeout of the socket passes first.
fn read_until_closed(read: &mut impl std::io::Read) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                panic!(
                    "still open after {:?}: {:?}",
                    start.elapsed(),
                    String::from_utf8_lossy(&seen)
                )
            }
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                panic!("still open after {:?}", start.elapsed())
            }
            Err(_) => break,
        }
    }
    (seen, start.elapsed())
}

fn short_limits() -> Limits {
    Limits {
        tls_handshake_timeout: SHORT,
        header_read_timeout: SHORT,
        // Longer than the header deadline, so the test sees which one closes a connection.
        idle_timeout: SHORT * 2,
        ..Limits::default()
    }
}

#[tokio::test]
async fn silent_slow_and_anonymous_clients_are_cut_off() {
    let context = TestContext::new("kubelet_api_timeouts");
    let engine = Engine::new(None).await;
    let api = Arc::new(Api::start(&context, &engine, short_limits()).await);

    // A TCP connection that never starts the TLS handshake.
    let address = api.address;
    let (_, took) = tokio::task::spawn_blocking(move || {
        let mut socket = TcpStream::connect(address).unwrap();
        socket.set_read_timeout(Some(SLACK * 4)).unwrap();
        read_until_closed(&mut socket)
    })
    .await
    .unwrap();
    assert!(took < SHORT + SLACK, "closed only after {took:?}");

    // Slowloris: a request head trickled in a line at a time never completes.
    let slow = api.clone();
    let took = tokio::task::spawn_blocking(move || {
        let mut stream = slow.tls(true);
        let start = Instant::now();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            .unwrap();
        // The attack itself waits between lines; the test stops at the first refused write.
        while stream.write_all(b"X-Slow: 1\r\n").is_ok() && stream.flush().is_ok() {
            assert!(
                start.elapsed() < SHORT + SLACK,
                "still accepted after {:?}",
                start.elapsed()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        start.elapsed()
    })
    .await
    .unwrap();
    assert!(took >= SHORT, "cut after {took:?}, before its deadline");

    // A client with a certificate that completes the handshake and says nothing.
    let silent = api.clone();
    let (_, took) = tokio::task::spawn_blocking(move || read_until_closed(&mut silent.tls(true)))
        .await
        .unwrap();
    assert!(took < SHORT + SLACK, "closed only after {took:?}");

    // A client without a certificate: one 401, and the connection closes right after.
    let anonymous = api.clone();
    let (answer, took) = tokio::task::spawn_blocking(move || {
        let mut stream = anonymous.tls(false);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        read_until_closed(&mut stream)
    })
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(took < SLACK, "closed only after {took:?}");

    // A kept-alive connection is closed after its idle time, not the header deadline.
    let idle = api.clone();
    let took = tokio::task::spawn_blocking(move || {
        let mut stream = idle.tls(true);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // The answer streams (chunked): it ends with the last, empty chunk.
        while !seen.ends_with(b"0\r\n\r\n") {
            let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
            assert!(
                n > 0,
                "closed before the answer: {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(seen.starts_with(b"HTTP/1.1 200"), "{seen:?}");
        read_until_closed(&mut stream).1
    })
    .await
    .unwrap();
    assert!(
        took >= SHORT * 2 - Duration::from_millis(100) && took < SHORT * 2 + SLACK,
        "idle connection closed after {took:?}"
    );

    // Those who behave are served, and their connection is kept between requests.
    let client = api.client();
    for _ in 0..2 {
        let response = client.get(api.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let context = TestContext::new("kubelet_api_conn_cap");
    let engine = Engine::new(None).await;
    let limits = Limits {
        max_connections: 2,
        // Long, so the held connections stay while the test looks.
        header_read_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let api = Arc::new(Api::start(&context, &engine, limits).await);
    // A finished handshake proves the server gave the connection a slot.
    let holder = api.clone();
    let held = tokio::task::spawn_blocking(move || [holder.tls(true), holder.tls(true)])
        .await
        .unwrap();
    let address = api.address;
    let (seen, took) = tokio::task::spawn_blocking(move || {
        let mut socket = TcpStream::connect(address).unwrap();
        socket.set_read_timeout(Some(SLACK * 4)).unwrap();
        read_until_closed(&mut socket)
    })
    .await
    .unwrap();
    assert!(seen.is_empty() && took < SLACK, "{seen:?} after {took:?}");

    drop(held);
    let client = api.client();
    wait_for(DEADLINE, "a slot to be free again", || async {
        let response = client.get(api.url("/healthz")).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn log_reads_are_bounded_per_line_per_read_and_in_followers() {
    let context = TestContext::new("kubelet_api_log_limits");
    let engine = Engine::new(None).await;
    let pod = serde_json::from_value(json!({
        "metadata": { "name": "long", "namespace": context.namespace(), "uid": unique_uid() },
        "spec": { "containers": [{
            "name": "app",
            "image": "/bin/sh",
            "args": ["-c", "head -c 200 /dev/zero | tr '\\0' x; echo; echo short; echo more-more-more; exec sleep infinity"],
        }]},
    }))
    .unwrap();
    let run = engine.run(pod);
    run.until(DEADLINE, "the pod to run", |status| {
        (status.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let limits = Limits {
        max_line_bytes: 64,
        default_log_bytes: 80,
        max_follow_streams: 1,
        ..Limits::default()
    };
    let api = Api::start(&context, &engine, limits).await;
    let client = api.client();
    let logs = api.url(&format!("/containerLogs/{}/long/app", context.namespace()));
    let get = |query: &'static str| {
        let (client, logs) = (&client, &logs);
        async move {
            let response = client.get(format!("{logs}{query}")).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    let long = format!("{} [truncated, 200 bytes in all]\n", "x".repeat(34));
    assert_eq!(long.len(), 65);
    let whole = format!("{long}short\nmore-more-more\n");
    let (status, body) = wait_for(DEADLINE, "all three lines in the journal", || async {
        let (status, body) = get("?limitBytes=1000").await;
        (body == whole).then_some((status, body))
    })
    .await;
    assert_eq!((status, body), (StatusCode::OK, whole));

    // Without limitBytes the read stops at the default bound, and says so.
    let (status, body) = get("").await;
    assert_eq!(status, StatusCode::OK);
    let notice = "\n[systemk: the log was cut after 80 bytes; ask with tailLines, sinceSeconds or limitBytes for the rest]\n";
    assert_eq!(body, format!("{long}short\nmore-more{notice}"));

    // One followed log at a time; the second waits for the first to go.
    let first = client
        .get(format!("{logs}?follow=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let (status, body) = get("?follow=true").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("already streams 1 followed logs"), "{body}");
    // Reading without follow is not limited by it.
    assert_eq!(get("?tailLines=1").await.0, StatusCode::OK);
    drop(first);
    wait_for(DEADLINE, "the follow slot to be free again", || async {
        let response = client
            .get(format!("{logs}?follow=true"))
            .send()
            .await
            .ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;

    drop(api);
    run.finish().await;
}
