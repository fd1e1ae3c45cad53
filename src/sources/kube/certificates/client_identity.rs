//! The node's client certificate as a swappable cell, and the API client built on it.
//!
//! [`ClientIdentity`] holds the current certificate; rustls asks it for the certificate at
//! every TLS handshake (`ResolvesClientCert`), so a renewed certificate is used by every
//! new connection at once, without a restart and without a new `kube::Client` (whose
//! clones every task holds). Connections already open keep the certificate they shook
//! hands with, and the API server checks a client certificate's validity on every
//! request, not once per connection: so at each swap the client also drops its pool of
//! idle connections (a fresh `hyper` client behind the same `kube::Client`). Requests in
//! flight, watches included, finish on their old connection; the watch then reconnects
//! with the new certificate, as after any watch timeout. The new pool also starts with an
//! empty TLS session cache: a resumed session carries the certificate of the handshake
//! that made it (the integration test `cluster_certs` caught 401s from exactly that).
//!
//! The stack mirrors kube's own (`kube::client::ClientBuilder` for a kubeconfig: base URI,
//! connect/read/write timeouts, rustls with the kubeconfig's CA and server name), minus
//! the auth layers a client certificate does not need. Layer 5.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::Client;
use kube::client::{Body, ConfigExt as _};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;

use super::issued::Issued;
use crate::sources::kube::ApiRequests;
use crate::sources::{Error, Result};

/// The node's current client certificate; see the module documentation.
#[derive(Debug)]
pub struct ClientIdentity {
    current: RwLock<Arc<Issued>>,
    /// Bumped at every swap: the HTTP client rebuilds its pool when it changed.
    generation: AtomicU64,
}

impl ClientIdentity {
    /// A cell holding `issued`.
    pub fn new(issued: Issued) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(issued)),
            generation: AtomicU64::new(0),
        })
    }

    /// The certificate in use.
    pub fn current(&self) -> Arc<Issued> {
        // A poisoned lock still holds a whole `Arc`: writers only swap it.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts `issued` in use for every new connection.
    pub fn replace(&self, issued: Issued) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(issued);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current().certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// TLS sessions each pool remembers for resumption (rustls' default store size).
const SESSIONS_PER_POOL: usize = 256;

type Connector = hyper_timeout::TimeoutConnector<hyper_rustls::HttpsConnector<HttpConnector>>;

/// Builds fresh pools: everything a `hyper` client needs, and the timeouts of the
/// kubeconfig's `kube::Config`.
struct PoolFactory {
    tls: Arc<rustls::ClientConfig>,
    server_name: Option<rustls::pki_types::ServerName<'static>>,
    config: kube::Config,
}

impl PoolFactory {
    fn build(&self) -> HyperClient<Connector, Body> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let mut tls = (*self.tls).clone();
        // A resumed TLS session carries the client certificate of the handshake that
        // made it, on both sides: a pool for a new certificate must not resume an old
        // session, or the server sees the old (soon expired) certificate again.
        tls.resumption = rustls::client::Resumption::in_memory_sessions(SESSIONS_PER_POOL);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let builder = match &self.server_name {
            Some(name) => builder.with_server_name_resolver(
                hyper_rustls::FixedServerNameResolver::new(name.clone()),
            ),
            None => builder,
        };
        let mut connector =
            hyper_timeout::TimeoutConnector::new(builder.enable_http1().wrap_connector(http));
        connector.set_connect_timeout(self.config.connect_timeout);
        connector.set_read_timeout(self.config.read_timeout);
        connector.set_write_timeout(self.config.write_timeout);
        HyperClient::builder(TokioExecutor::new()).build(connector)
    }
}

/// The HTTP service under the `kube::Client`: one pool per identity generation.
#[derive(Clone)]
struct RotatingHttps {
    identity: Arc<ClientIdentity>,
    factory: Arc<PoolFactory>,
    pool: Arc<Mutex<(u64, HyperClient<Connector, Body>)>>,
}

impl tower::Service<http::Request<Body>> for RotatingHttps {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        // The hyper client is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let generation = self.identity.generation();
        let client = {
            let mut pool = self
                .pool
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if pool.0 != generation {
                // The old pool's idle connections close once its last request is done.
                *pool = (generation, self.factory.build());
            }
            pool.1.clone()
        };
        client.request(request)
    }
}

/// A client for the cluster of `kubeconfig` (its server, CA and timeouts; its user is
/// ignored) that authenticates with `identity` and counts its requests in `requests`;
/// and the API server's host and port.
pub async fn connect(
    kubeconfig: &Path,
    identity: Arc<ClientIdentity>,
    requests: &ApiRequests,
) -> Result<(Client, Option<(String, u16)>)> {
    let invalid = |message: String| Error::Kubeconfig {
        path: kubeconfig.to_owned(),
        message,
    };
    let file = Kubeconfig::read_from(kubeconfig).map_err(|err| invalid(err.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|err| invalid(err.to_string()))?;
    // The identity comes from the cell, never from the file.
    config.auth_info = kube::config::AuthInfo::default();
    let mut tls = config
        .rustls_client_config()
        .map_err(|err| invalid(err.to_string()))?;
    tls.client_auth_cert_resolver = identity.clone();
    let server_name = match &config.tls_server_name {
        Some(name) => Some(
            rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|err| invalid(format!("tls-server-name {name}: {err}")))?,
        ),
        None => None,
    };
    let api_server = super::super::api_server_address(&config.cluster_url.to_string());
    let factory = Arc::new(PoolFactory {
        tls: Arc::new(tls),
        server_name,
        config: config.clone(),
    });
    let https = RotatingHttps {
        pool: Arc::new(Mutex::new((identity.generation(), factory.build()))),
        identity,
        factory,
    };
    let service = tower::ServiceBuilder::new()
        .layer(requests.clone())
        .layer(config.base_uri_layer())
        .service(https);
    Ok((Client::new(service, config.default_namespace), api_server))
}
