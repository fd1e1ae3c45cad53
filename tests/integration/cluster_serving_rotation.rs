//! The kubelet API's serving certificate renewed without a restart, with certificates of
//! 90 seconds from the test API server (its `--cluster-signing-duration`): the test
//! approves each serving CSR as an operator would, holds one TLS keep-alive connection to
//! the kubelet API open across the swap (it keeps answering, still with the old
//! certificate), and a connection opened after the swap gets the new certificate (serial
//! numbers compared with the file the agent wrote).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::cluster::harness::{Cluster, condition};
use crate::cluster_certs::{bootstrapping_cluster, csrs, wait_ready};

/// What the kubelet API logs each time it swaps in a serving certificate for new
/// connections (after the agent stored it).
const SWAPPED: &str = "serving the renewed certificate to new connections";

/// A certificate of 90 s is renewed 63–81 s after it arrives; approval and a loaded
/// machine add to that.
const RENEWAL: Duration = Duration::from_secs(150);

/// How often the open connection is used: well within the kubelet API's idle timeout.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(5);

/// Accepts any server certificate: the test compares serial numbers itself.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One TLS connection to the kubelet API, used for several requests (blocking: run it
/// off the runtime, which also serves the test API server).
struct KeepAlive {
    stream: StreamOwned<ClientConnection, TcpStream>,
}

impl KeepAlive {
    /// Connects to `port` on 127.0.0.1 with the client certificate `identity` (PEM).
    fn connect(port: u16, identity: &(String, String)) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(identity.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(identity.1.as_bytes()).unwrap();
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_client_auth_cert(chain, key)
            .unwrap();
        // A fresh handshake, never a resumed one: it must show the current certificate.
        config.resumption = rustls::client::Resumption::disabled();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let connection = ClientConnection::new(Arc::new(config), name).unwrap();
        let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut stream = StreamOwned::new(connection, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        Self { stream }
    }

    /// The serial number of the certificate this connection's server presented.
    fn serial(&self) -> String {
        let der = &self.stream.conn.peer_certificates().unwrap()[0];
        serial_of(der)
    }

    /// `GET /healthz` on this connection: the status code and body.
    fn healthz(&mut self) -> (u16, String) {
        self.stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head[9..12].parse().unwrap();
        let header = |wanted: &str| {
            head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case(wanted)
                    .then(|| value.trim().to_owned())
            })
        };
        let body = match header("content-length") {
            Some(length) => self.read_bytes(length.parse().unwrap()),
            None if header("transfer-encoding").as_deref() == Some("chunked") => {
                self.read_chunked()
            }
            None => panic!("neither content-length nor chunked in {head}"),
        };
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn read_bytes(&mut self, length: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; length];
        self.stream.read_exact(&mut bytes).unwrap();
        bytes
    }

    /// One CRLF-ended line, without the CRLF.
    fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            line.extend(self.read_bytes(1));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).unwrap()
    }

    /// A `Transfer-Encoding: chunked` body (RFC 9112 §7.1), without trailers.
    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let size_line = self.read_line();
            let size = size_line.split(';').next().unwrap().trim();
            let size = usize::from_str_radix(size, 16).unwrap();
            if size == 0 {
                while !self.read_line().is_empty() {}
                return body;
            }
            body.extend(self.read_bytes(size));
            assert_eq!(self.read_line(), "", "a chunk ends with CRLF");
        }
    }
}

fn serial_of(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial_as_string()
}

/// The serial number of the certificate in a PEM file.
fn file_serial(path: &Path) -> String {
    let pem = std::fs::read(path).unwrap();
    let der = CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap();
    serial_of(&der)
}

/// Approves every serving CSR not yet decided, as the operator (or an approver) does.
async fn approve_serving_csrs(cluster: &Cluster) {
    for csr in csrs(cluster, "kubernetes.io/kubelet-serving").await {
        if condition(&csr, "Approved").is_none() {
            let name = csr["metadata"]["name"].as_str().unwrap_or_default();
            // A race with a CSR just approved is harmless.
            let _ = cluster.try_kubectl(&["certificate", "approve", name]).await;
        }
    }
}

async fn on_connection<T: Send + 'static>(
    connection: KeepAlive,
    use_it: impl FnOnce(&mut KeepAlive) -> T + Send + 'static,
) -> (KeepAlive, T) {
    tokio::task::spawn_blocking(move || {
        let mut connection = connection;
        let out = use_it(&mut connection);
        (connection, out)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn serving_certificate_is_renewed_without_a_restart_and_open_connections_survive() {
    let Some((mut cluster, _)) =
        bootstrapping_cluster("serving_rotation", Duration::from_secs(90), true).await
    else {
        return;
    };
    cluster.start_agent().await;
    wait_ready(&cluster).await;
    let pid = cluster.agent_pid();
    cluster
        .wait_until(RENEWAL, "the first serving certificate", || async {
            approve_serving_csrs(&cluster).await;
            (cluster.log().matches(SWAPPED).count() >= 1).then_some(())
        })
        .await;
    let served = cluster.state_dir().join("pki/kubelet-server-current.pem");
    let first = file_serial(&served);

    // One connection, opened before the swap, by a user allowed to use the kubelet API.
    cluster.server.grant("alice", "get", "nodes", "proxy");
    let alice = cluster.server.issue_client_cert("alice", &["dev"]);
    let port = cluster.kubelet_port();
    let (mut open, (serial, answer)) = on_connection(
        tokio::task::spawn_blocking(move || KeepAlive::connect(port, &alice))
            .await
            .unwrap(),
        |connection| (connection.serial(), connection.healthz()),
    )
    .await;
    assert_eq!(serial, first);
    assert_eq!(answer, (200, "ok".to_owned()));

    // Used every few seconds while the certificate is renewed and swapped in.
    let deadline = tokio::time::Instant::now() + RENEWAL;
    while cluster.log().matches(SWAPPED).count() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no renewal within {RENEWAL:?}:\n{}",
            cluster.log()
        );
        approve_serving_csrs(&cluster).await;
        let (connection, answer) = on_connection(open, KeepAlive::healthz).await;
        open = connection;
        assert_eq!(
            answer.0, 200,
            "the open connection failed before the swap: {answer:?}"
        );
        tokio::time::sleep(KEEP_ALIVE_EVERY).await;
    }
    let second = file_serial(&served);
    assert_ne!(second, first, "the file still holds the first certificate");

    // The old connection still works, on the certificate it shook hands with.
    let (open, (serial, answer)) = on_connection(open, |connection| {
        (connection.serial(), connection.healthz())
    })
    .await;
    assert_eq!(serial, first);
    assert_eq!(answer, (200, "ok".to_owned()));
    drop(open);
    // A new connection gets the new certificate.
    let alice = cluster.server.issue_client_cert("alice", &["dev"]);
    let (_, (serial, answer)) = on_connection(
        tokio::task::spawn_blocking(move || KeepAlive::connect(port, &alice))
            .await
            .unwrap(),
        |connection| (connection.serial(), connection.healthz()),
    )
    .await;
    assert_eq!(serial, second);
    assert_eq!(answer, (200, "ok".to_owned()));
    assert_eq!(cluster.agent_pid(), pid);
    assert!(
        cluster.agent_running(),
        "systemk exited:\n{}",
        cluster.log()
    );
    cluster.teardown().await;
}
