//! HTTPS mode (`Config::https`): serving TLS with a certificate from the cluster CA for
//! 127.0.0.1/localhost, asking for (not requiring) client certificates so bootstrap and
//! service account token users can connect too (`authn` checks every request), plus the
//! test handles that belong to a cluster with a PKI: the admin and bootstrap kubeconfigs,
//! bootstrap tokens, CSR approval and group grants.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::authn::AnyClientCert;
use super::request::ResourceRequest;
use super::server::TestApiServer;
use super::{Api, base64, bootstrap, csr, resources};

/// The user of the admin kubeconfig (kubeadm's admin.conf).
const ADMIN_USER: &str = "kubernetes-admin";

/// A verifier of client certificates issued by `ca_pem` (chain, validity, clientAuth).
pub fn client_verifier(ca_pem: &str) -> Arc<dyn ClientCertVerifier> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("cluster CA PEM"))
        .expect("cluster CA as a root");
    WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .expect("client verifier")
}

/// Serves `app` over TLS on `listener` until the server is stopped; then every connection
/// is closed at once.
pub fn serve(api: &Arc<Api>, listener: TcpListener, app: Router) -> JoinHandle<()> {
    let (cert_pem, key_pem) = api.client_ca.serving_cert();
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(AnyClientCert(api.client_verifier.clone())))
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("serving cert")],
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("serving key"),
        )
        .expect("TLS server config");
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
    let listener = listener.into_std().expect("std listener");
    let handle = axum_server::Handle::new();
    let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls)
        .expect("serve TLS")
        .handle(handle.clone());
    let mut stopped = api.stopped.subscribe();
    tokio::spawn(async move {
        let serving = server.serve(app.into_make_service());
        tokio::pin!(serving);
        tokio::select! {
            _ = &mut serving => return,
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
        handle.shutdown();
        let _ = serving.await;
    })
}

fn indent_b64(text: &str) -> String {
    base64::standard(text.as_bytes())
}

fn kubeconfig(api: &Api, user: &str, credentials: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://{}\n    certificate-authority-data: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: {user}\n    namespace: default\nusers:\n- name: {user}\n  user:\n{credentials}current-context: test\n",
        api.address,
        indent_b64(&api.client_ca.pem),
    )
}

/// kubeadm's admin.conf: the cluster CA and a `system:masters` client certificate.
pub fn write_admin_kubeconfig(api: &Api, dir: &Path) -> PathBuf {
    let (cert, key) = api
        .client_ca
        .issue(ADMIN_USER, &[super::pki::MASTERS_GROUP]);
    let credentials = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        indent_b64(&cert),
        indent_b64(&key)
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, kubeconfig(api, ADMIN_USER, &credentials)).expect("write kubeconfig");
    path
}

impl TestApiServer {
    /// PEM of the cluster CA: it signs the serving certificate (HTTPS mode), client
    /// certificates and CSR certificates. The same as `client_ca_pem`.
    pub fn cluster_ca_pem(&self) -> String {
        self.api.client_ca.pem.clone()
    }

    /// A bootstrap token Secret in kube-system for `groups` (`system:bootstrappers:…`),
    /// as `kubeadm token create` makes it; returns `<id>.<secret>`.
    pub fn create_bootstrap_token(&self, groups: &[&str]) -> String {
        bootstrap::create_token(&self.api, groups)
    }

    /// A kubeconfig with the HTTPS URL, the cluster CA and `token` as the user's bearer
    /// token (kubeadm's bootstrap-kubelet.conf), written into `dir`.
    pub fn write_bootstrap_kubeconfig(&self, dir: &Path, token: &str) -> PathBuf {
        let user = "tls-bootstrap-token-user";
        let path = dir.join("bootstrap-kubeconfig");
        let credentials = format!("    token: {token}\n");
        std::fs::write(&path, kubeconfig(&self.api, user, &credentials))
            .expect("write bootstrap kubeconfig");
        path
    }

    /// Approves CSR `name` through its `approval` subresource, as an admin would; the
    /// signer then runs. Panics when the CSR does not exist or the update is refused.
    pub fn approve_csr(&self, name: &str) {
        let request = csr_request(name, Some("approval"));
        let mut current = super::handlers::get(&self.api, &csr_request(name, None))
            .unwrap_or_else(|err| panic!("CSR {name}: {}", err.message));
        let condition = json!({"type": "Approved", "status": "True", "reason": "TestApprove", "message": "Approved by the test through TestApiServer::approve_csr."});
        match current["status"]["conditions"].as_array_mut() {
            Some(list) => list.push(condition),
            None => current["status"]["conditions"] = json!([condition]),
        }
        csr::update_status(&self.api, &request, current, true)
            .unwrap_or_else(|err| panic!("approve CSR {name}: {}", err.message));
    }

    /// Names of the stored CSRs.
    pub fn csr_names(&self) -> Vec<String> {
        let resource = csr_resource();
        self.api
            .store
            .lock()
            .list(resource, None)
            .into_iter()
            .map(|(key, _)| key.name)
            .collect()
    }

    /// CSR `name` as stored, if any.
    pub fn csr(&self, name: &str) -> Option<Value> {
        super::handlers::get(&self.api, &csr_request(name, None)).ok()
    }

    /// Lets every member of `group` do `verb` on `resource`/`subresource` (SubjectAccessReviews
    /// and the CSR approver's checks).
    pub fn grant_group(&self, group: &str, verb: &str, resource: &str, subresource: &str) {
        self.api
            .grants
            .add_group(group, verb, resource, subresource);
    }

    /// A client certificate from the cluster CA valid from `not_before` to `not_after`
    /// (in the past: an expired one), as `(cert_pem, key_pem)`.
    pub fn issue_client_cert_valid(
        &self,
        cn: &str,
        groups: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (String, String) {
        self.api
            .client_ca
            .issue_valid(cn, groups, not_before, not_after)
    }
}

fn csr_resource() -> &'static resources::Resource {
    resources::find("certificates.k8s.io", "v1", "certificatesigningrequests")
        .expect("CSRs are served")
}

fn csr_request(name: &str, subresource: Option<&str>) -> ResourceRequest {
    ResourceRequest {
        resource: csr_resource(),
        namespace: None,
        name: Some(name.to_owned()),
        subresource: subresource.map(str::to_owned),
        query: Default::default(),
    }
}
