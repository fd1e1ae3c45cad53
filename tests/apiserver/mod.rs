//! The project's test Kubernetes API server: in-memory, plain HTTP on loopback, faithful to
//! kube-apiserver's REST semantics for the resources systemk and kubectl use (see
//! `tests/apiserver/README.md` for what is implemented and what is simplified). Test-only code:
//! it never runs in production and has no controllers — objects are stored, not acted on.
//!
//! `TestApiServer::start()` serves on a random port until the handle is dropped;
//! `TestApiServer::write_kubeconfig` points kubectl or a kube client at it;
//! `TestApiServer::issue_client_cert` and `TestApiServer::grant` let a test act as a user
//! against a kubelet that authenticates with the cluster's client CA and authorizes through
//! SubjectAccessReview. `Config::https` serves TLS with request authentication, CSRs signed
//! by the cluster CA and bootstrap tokens (`https`).

mod access;
mod admission;
pub mod audit;
mod authn;
mod authorization;
pub mod base64;
mod bootstrap;
mod csr;
mod delete;
mod discovery;
mod events;
mod handlers;
mod https;
mod list;
pub mod node_authorizer;
mod node_proxy;
mod objects;
mod openapi;
mod patch;
mod pki;
mod pod_exec;
mod pod_logs;
mod pod_portforward;
mod priority;
mod protobuf;
pub mod rbac;
mod request;
pub mod request_info;
mod resources;
mod selectors;
mod server;
mod signer;
mod status;
mod status_validation;
mod store;
mod tables;
mod token;
mod token_review;
mod watch;

#[cfg(test)]
mod crud_tests;
#[cfg(test)]
mod csr_tests;
#[cfg(test)]
mod delete_tests;
#[cfg(test)]
mod exec_tests;
#[cfg(test)]
mod fake_kubelet;
#[cfg(test)]
mod http_client;
#[cfg(test)]
mod https_tests;
#[cfg(test)]
mod kubectl_tests;
#[cfg(test)]
mod logs_tests;
#[cfg(test)]
mod node_proxy_tests;
#[cfg(test)]
mod portforward_tests;
#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod status_tests;
#[cfg(test)]
mod token_review_tests;
#[cfg(test)]
mod typed_tests;
#[cfg(test)]
mod watch_tests;

pub use server::{Config, TestApiServer};

use store::Store;

/// Shared server state.
pub struct Api {
    /// The objects.
    store: Store,
    /// Server settings.
    config: Config,
    /// The cluster CA: client CA (`--client-ca-file`, published for kubelets to
    /// authenticate callers), signer of the serving certificate and of approved CSRs.
    client_ca: pki::ClientCa,
    /// Verifies client certificates against `client_ca` (HTTPS mode, per request).
    client_verifier: std::sync::Arc<dyn rustls::server::danger::ClientCertVerifier>,
    /// HTTPS client with the server's kubelet client certificate, for `pods/log`.
    kubelet_client: reqwest::Client,
    /// What SubjectAccessReviews allow beyond `system:masters`.
    grants: authorization::Grants,
    /// What authenticated users asked for (HTTPS mode).
    audit: audit::Audit,
    /// How many TokenReviews were posted.
    token_reviews: std::sync::atomic::AtomicUsize,
    /// `host:port` the server listens on, published in `/api`.
    address: String,
    /// True while the server is stopped; watches end when it turns true.
    stopped: tokio::sync::watch::Sender<bool>,
}
