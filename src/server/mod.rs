//! The kubelet API (layer 6): HTTPS on `--address`:`--kubelet-port`, so the API server can
//! proxy `kubectl logs` to the node. Callers authenticate with a client certificate
//! verified against the client CA ([`tls`], [`client_ca`]) or, with
//! `--authentication-token-webhook`, a bearer token the API server vouches for
//! ([`token`]), and are authorized like the
//! kubelet's webhook mode ([`auth`]); there is no anonymous access to anything. Serves
//! `/healthz`, `/pods` and `/containerLogs/{namespace}/{pod}/{container}` ([`logs`]); it
//! reads what the reconciler and systemd know and changes nothing. Every connection and
//! every log read is bounded by [`Limits`] ([`conn`], [`logs`]). `/stats/summary` and
//! `/metrics/resource` ([`stats`]) serve `kubectl top` through metrics-server; `/metrics`
//! ([`metrics`]) systemk's own metrics.

mod attach;
mod attach_output;
pub mod auth;
pub mod client_ca;
mod command_session;
mod conn;
mod error;
mod exec;
mod handlers;
pub mod journal;
pub mod limits;
pub mod logs;
pub mod metrics;
mod port_forward;
mod remote_command;
pub mod stats;
pub mod stream;
mod stream_session;
mod stream_websocket;
mod streaming;
pub mod tls;
pub mod token;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::CertificateDer;
use tokio::sync::Semaphore;

pub use error::{Error, Result};
pub use limits::Limits;

use crate::pod::PodDirs;
use crate::systemd::{Cgroups, Systemd};
use auth::{Authorizer, DecisionCache};
use metrics::OwnMetrics;
use stats::CpuRates;
use tls::ServingCert;
use token::TokenAuthenticator;

/// How long open requests (a followed log) may go on after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// hyper's smallest read buffer (it panics below), 8 KiB.
const MIN_HYPER_BUFFER: usize = 8192;

/// What the server reads to answer.
pub struct State {
    /// The service manager the containers run in.
    pub systemd: Systemd,
    /// The pods' saved state.
    pub dirs: PodDirs,
    /// Where the pods' units are.
    pub unit_dir: PathBuf,
    /// Who may do what.
    pub authorizer: Authorizer,
    /// Who a bearer token names, when `--authentication-token-webhook` is on.
    pub tokens: Option<TokenAuthenticator>,
    /// The bounds on callers.
    pub limits: Arc<Limits>,
    /// One permit per `follow=true` log stream that may be open.
    pub follow_streams: Arc<Semaphore>,
    /// The node's name, for `/stats/summary`.
    pub node_name: String,
    /// Where systemd's cgroups are, for the containers' and pods' usage.
    pub cgroups: Cgroups,
    /// The previous CPU reading of each cgroup, for `usageNanoCores`; a sync lock, never
    /// held across an await.
    pub cpu_rates: Mutex<CpuRates>,
    /// systemk's own metrics for `/metrics`, once `main` hands them over
    /// ([`Server::with_metrics`]); unset, `/metrics` is 404.
    pub own_metrics: OnceLock<OwnMetrics>,
}

/// Serving certificates to swap in (`None` until the cluster issued one).
pub type ServingUpdates = tokio::sync::watch::Receiver<Option<Arc<rustls::sign::CertifiedKey>>>;

/// Where and how the server listens.
pub struct Settings {
    /// Address and port.
    pub address: SocketAddr,
    /// The serving certificate.
    pub serving: ServingCert,
    /// The client CA from `--client-ca-file`; `None` reads it from the cluster, when
    /// there is one.
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
    /// The bounds on callers; [`Limits::default`] in systemk.
    pub limits: Limits,
    /// Bearer tokens are reviewed by the API server, their answers cached this long
    /// (`--authentication-token-webhook`, `-cache-ttl`); `None`: tokens are not read.
    pub token_webhook_cache_ttl: Option<Duration>,
}

/// A bound, not yet serving kubelet API.
pub struct Server {
    listener: TcpListener,
    tls: RustlsConfig,
    serving: Arc<tls::ServingResolver>,
    /// Serving certificates issued by the cluster, swapped in as they come.
    serving_updates: Option<ServingUpdates>,
    client_ca_from_cluster: Option<kube::Client>,
    state: Arc<State>,
}

impl Server {
    /// Opens the listening socket and sets up TLS; fails when the address is taken or the
    /// certificates do not load. `client` is the cluster's client, when systemk has one:
    /// then access is reviewed by the API server, and without `--client-ca-file` the client
    /// CA is read from there.
    pub fn bind(
        settings: Settings,
        systemd: Systemd,
        dirs: PodDirs,
        unit_dir: PathBuf,
        client: Option<kube::Client>,
        node_name: String,
    ) -> Result<Self> {
        let serving = tls::ServingResolver::new(&settings.serving)?;
        let config = tls::server_config(serving.clone(), settings.client_ca.as_deref())?;
        let listener = TcpListener::bind(settings.address).map_err(|source| Error::Bind {
            address: settings.address,
            source,
        })?;
        let client_ca_from_cluster = match (&settings.client_ca, &client) {
            (None, Some(client)) => Some(client.clone()),
            (None, None) => {
                tracing::warn!(
                    "no --client-ca-file and no cluster: nobody can authenticate, every kubelet API request gets 401"
                );
                None
            }
            (Some(_), _) => None,
        };
        let tokens = match (settings.token_webhook_cache_ttl, &client) {
            (Some(ttl), Some(client)) => Some(TokenAuthenticator::new(client.clone(), ttl)?),
            (Some(_), None) => return Err(Error::TokenWebhookWithoutCluster),
            (None, _) => None,
        };
        let authorizer = match client {
            Some(client) => Authorizer::Cluster {
                client,
                node_name: node_name.clone(),
                cache: Mutex::new(DecisionCache::default()),
            },
            None => Authorizer::ClientCaOnly,
        };
        Ok(Self {
            listener,
            tls: RustlsConfig::from_config(config),
            serving,
            serving_updates: None,
            client_ca_from_cluster,
            state: Arc::new(State {
                systemd,
                dirs,
                unit_dir,
                authorizer,
                tokens,
                follow_streams: Arc::new(Semaphore::new(settings.limits.max_follow_streams)),
                limits: Arc::new(settings.limits),
                node_name,
                cgroups: Cgroups::discover(),
                cpu_rates: Mutex::new(CpuRates::default()),
                own_metrics: OnceLock::new(),
            }),
        })
    }

    /// Serves each certificate `updates` brings (a cluster-issued serving certificate)
    /// instead of the one it was bound with, from the next handshake on.
    pub fn with_serving_updates(mut self, updates: ServingUpdates) -> Self {
        self.serving_updates = Some(updates);
        self
    }

    /// Serves `own.registry` on `/metrics`, with `own.gauges` (registered in it) set from
    /// the pods at each scrape, and `own.probes` on `/metrics/probes`.
    pub fn with_metrics(self, own: OwnMetrics) -> Self {
        // Set once, before serving: nothing else sets it.
        let _ = self.state.own_metrics.set(own);
        self
    }

    /// The address it listens on (the port when 0 was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(Error::Serve)
    }

    /// Serves until `shutdown`, then gives open requests [`SHUTDOWN_GRACE`].
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let address = self.local_addr()?;
        let handle = Handle::new();
        let stopper = handle.clone();
        let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stopped_tx.send(true);
            stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
        });
        if let Some(client) = self.client_ca_from_cluster {
            let mut stopped = stopped_rx.clone();
            tokio::spawn(client_ca::watch(
                client,
                self.serving.clone(),
                self.tls.clone(),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            ));
        }
        if let Some(mut updates) = self.serving_updates {
            let serving = self.serving.clone();
            tokio::spawn(async move {
                // Ends when the sender (the certificate task) is gone.
                while updates.changed().await.is_ok() {
                    if let Some(key) = updates.borrow_and_update().clone() {
                        serving.replace(key);
                        tracing::info!(
                            "kubelet API: serving the renewed certificate to new connections"
                        );
                    }
                }
            });
        }
        let limits = self.state.limits.clone();
        let app = router(self.state);
        tracing::info!(%address, "kubelet API listening");
        let acceptor = conn::GuardAcceptor::new(RustlsAcceptor::new(self.tls), limits.clone());
        let mut server = axum_server::from_tcp(self.listener)
            .map_err(Error::Serve)?
            .acceptor(acceptor)
            .handle(handle);
        // HTTP/1.1 only, as ALPN says: the deadlines in `conn` are HTTP/1's request cycle.
        // Said to hyper's builder, not to axum-server, whose `http1_only` serves without
        // upgrades (exec's SPDY).
        let builder = server.http_builder();
        *builder = builder.clone().http1_only();
        builder
            .http1()
            // `conn` keeps the header deadline; hyper's would also cut idle keep-alives.
            .header_read_timeout(None)
            // hyper refuses a buffer under 8 KiB.
            .max_buf_size(limits.max_request_head_bytes.max(MIN_HYPER_BUFFER));
        server
            .serve(app.into_make_service())
            .await
            .map_err(Error::Serve)
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/pods", get(handlers::pods))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(handlers::container_logs),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(exec::exec).post(exec::exec),
        )
        .route(
            "/exec/{namespace}/{pod}/{uid}/{container}",
            get(exec::exec_with_uid).post(exec::exec_with_uid),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(attach::attach).post(attach::attach),
        )
        .route(
            "/attach/{namespace}/{pod}/{uid}/{container}",
            get(attach::attach_with_uid).post(attach::attach_with_uid),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(port_forward::port_forward).post(port_forward::port_forward),
        )
        .route(
            "/portForward/{namespace}/{pod}/{uid}",
            get(port_forward::port_forward_with_uid).post(port_forward::port_forward_with_uid),
        )
        .route(
            "/stats/summary",
            get(stats::stats_summary).post(stats::stats_summary),
        )
        .route("/metrics/resource", get(stats::metrics_resource))
        .route("/metrics", get(metrics::metrics))
        .route("/metrics/probes", get(metrics::probes))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::authenticate,
        ))
        // Outermost: a request holds its connection busy until its body has been sent.
        .layer(axum::middleware::from_fn(conn::track))
        .with_state(state)
}
