//! A fake kubelet for the `pods/log` tests: a real HTTPS server (axum-server, rustls) on
//! 127.0.0.1 with a self-signed serving certificate that requires a client certificate
//! chaining to the cluster's client CA, records every certificate it accepted, and echoes the
//! request it got (`GET <path>?<query>`) — or fails, by container name, the ways a kubelet
//! fails. Test support only.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A client-certificate verifier that records every certificate it accepted.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ClientCertVerifier>,
    accepted: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ClientCertVerifier for Recording {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        self.accepted.lock().unwrap().push(end_entity.to_vec());
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Shared state of the fake kubelet's handler.
struct Kubelet {
    /// Lines for the next `follow` request, after its echo line.
    follow: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

/// A fake kubelet on 127.0.0.1 with a self-signed serving certificate.
pub struct FakeKubelet {
    /// The HTTPS port.
    pub port: u16,
    accepted: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Sends lines to the open `follow` request; dropping the kubelet ends that stream.
    pub follow: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fake kubelet's `/containerLogs/...`: errors by container name, else the echo line
/// `GET <path>?<query>`, followed by the lines the test sends when `follow=true`. An
/// upgrade request (`/exec/...`) gets 101 with the first protocol offered, then the
/// connection writes `<METHOD> <path>?<query>\n` and echoes what it reads.
async fn container_logs(State(kubelet): State<Arc<Kubelet>>, request: Request) -> Response {
    let uri = request.uri().clone();
    if request.headers().contains_key(header::UPGRADE) {
        return upgrade(request);
    }
    let echo = format!("GET {uri}\n");
    match uri.path().rsplit('/').next().unwrap_or("") {
        "gone" => return (StatusCode::NOT_FOUND, "container gone is not running").into_response(),
        "denied" => {
            let why = "Forbidden (user=someone, verb=get, resource=nodes, subresource=proxy)";
            return (StatusCode::FORBIDDEN, why).into_response();
        }
        "crash" => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "journal unreadable").into_response();
        }
        _ => {}
    }
    if !uri.query().unwrap_or("").contains("follow=true") {
        return echo.into_response();
    }
    let lines = kubelet.follow.lock().unwrap().take().expect("one follower");
    let first = futures::stream::once(async move { Ok::<_, Infallible>(echo) });
    let rest = futures::stream::unfold(lines, |mut lines| async move {
        lines.recv().await.map(|line| (Ok(line), lines))
    });
    Body::from_stream(first.chain(rest)).into_response()
}

fn upgrade(mut request: Request) -> Response {
    match request.uri().path().rsplit('/').next().unwrap_or("") {
        "gone" => {
            let text = "container not found (\"gone\")";
            return (StatusCode::INTERNAL_SERVER_ERROR, text).into_response();
        }
        "denied" => {
            let why = "Forbidden (user=someone, verb=create, resource=nodes, subresource=proxy)";
            return (StatusCode::FORBIDDEN, why).into_response();
        }
        _ => {}
    }
    let line = format!("{} {}\n", request.method(), request.uri());
    let protocol = request
        .headers()
        .get("x-stream-protocol-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static("none"));
    let upgraded = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgraded.await else { return };
        let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        if writer.write_all(line.as_bytes()).await.is_ok() {
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert("x-stream-protocol-version", protocol);
    response
}

impl FakeKubelet {
    /// Starts a kubelet trusting `client_ca_pem` for client certificates.
    pub fn start(client_ca_pem: &str) -> Self {
        Self::start_serving(client_ca_pem, None)
    }

    /// As `start`, serving with `serving` (certificate and key PEM) instead of a
    /// self-signed certificate.
    pub fn start_serving(client_ca_pem: &str, serving: Option<(&str, &str)>) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(client_ca_pem.as_bytes()).unwrap())
            .unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let verifier = Arc::new(Recording {
            inner: WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .unwrap(),
            accepted: accepted.clone(),
        });
        let (cert_pem, key_pem) = match serving {
            Some((cert, key)) => (cert.to_owned(), key.to_owned()),
            None => {
                let key = rcgen::KeyPair::generate().unwrap();
                let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
                (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
            }
        };
        let config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (follow, lines) = mpsc::unbounded_channel();
        let state = Arc::new(Kubelet {
            follow: Mutex::new(Some(lines)),
        });
        let app = Router::new().fallback(container_logs).with_state(state);
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
        let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls).unwrap();
        let task = tokio::spawn(async move {
            server.serve(app.into_make_service()).await.unwrap();
        });
        Self {
            port,
            accepted,
            follow,
            task,
        }
    }

    /// The subjects (DER) of the client certificates accepted so far contain `text`.
    pub fn saw_client(&self, text: &str) -> bool {
        let accepted = self.accepted.lock().unwrap();
        !accepted.is_empty()
            && accepted
                .iter()
                .all(|der| der.windows(text.len()).any(|w| w == text.as_bytes()))
    }
}

/// Checks an upgrade the fake kubelet accepted through the API server: it wrote
/// `request_line` (its `METHOD path?query` and a newline) first, then echoes what it is
/// sent.
pub async fn expect_passed_through(response: reqwest::Response, request_line: &str) {
    let mut upgraded = response.upgrade().await.unwrap();
    let mut line = vec![0u8; request_line.len()];
    upgraded.read_exact(&mut line).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&line), request_line);
    upgraded.write_all(b"both ways").await.unwrap();
    let mut echo = [0u8; 9];
    upgraded.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"both ways");
}
