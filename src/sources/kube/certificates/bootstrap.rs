//! The node's client certificate, as the kubelet's TLS bootstrap keeps it
//! (pkg/kubelet/certificate/bootstrap, client-go's certificate manager):
//!
//! - At start, `<cert dir>/kubelet-client-current.pem` (certificate and key, 0600, in a
//!   0700 directory) is used when it holds a valid certificate for this node. Otherwise
//!   the bootstrap kubeconfig (a bootstrap token) creates a CSR for signer
//!   `kubernetes.io/kube-apiserver-client-kubelet`, waits for its approval (the
//!   controller manager's csrapproving approves it for bootstrappers), checks the
//!   certificate, stores it, and writes the node's kubeconfig: the bootstrap kubeconfig's
//!   cluster (server, CA) with that file as client certificate and key, as the kubelet
//!   writes its `--kubeconfig`.
//! - While running, [`keep_current`] renews it at 70–90 % of its lifetime
//!   ([`super::rotation`]) with the node's own certificate (a `selfnodeclient` CSR, not
//!   the bootstrap token), and swaps it into the running client
//!   ([`super::client_identity`]). If the certificate expired anyway (the node was off,
//!   the API server was down), it bootstraps again with the bootstrap kubeconfig; when
//!   that fails too it says so at error level on every attempt, naming what to fix.
//!
//! Files are written atomically (`crate::atomic_file`); keys and tokens are never
//! logged. Layer 5.

use std::fs::{self, DirBuilder};
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::config::Kubeconfig;

use super::client_identity::ClientIdentity;
use super::csr::Template;
use super::issued::Issued;
use super::record::{Recorder, bootstrap_failure};
use super::request::{CERTIFICATE_WAIT, request_certificate};
use super::rotation::{rotation_deadline, unit_random, until};
use crate::atomic_file::{self, Durability};
use crate::backoff::{API_SERVER, Backoff, Retry};
use crate::sources::{Error, Result};

/// The client certificate's file in the certificate directory (the kubelet's name).
pub const CLIENT_CERT_FILE: &str = "kubelet-client-current.pem";

/// What an operator can do about a client CSR nobody approves.
const CLIENT_HINT: &str = ": is the controller manager's csrapproving controller running (k3s, kubeadm), and may the bootstrap token's group create node client CSRs (ClusterRoleBinding to system:certificates.k8s.io:certificatesigningrequests:nodeclient)? Or approve it: kubectl certificate approve <name>";

/// Where the node's client identity lives and comes from.
#[derive(Debug, Clone)]
pub struct ClientCertConfig {
    /// The node's name: the certificate is for `system:node:<name>`.
    pub node_name: String,
    /// The certificate directory (`--cert-dir`), 0700.
    pub cert_dir: PathBuf,
    /// The node's kubeconfig (`--kubeconfig`), written at bootstrap.
    pub kubeconfig: PathBuf,
    /// The bootstrap kubeconfig (`--bootstrap-kubeconfig`).
    pub bootstrap_kubeconfig: PathBuf,
    /// Where bootstrap failures are recorded for `systemk doctor`.
    pub recorder: Recorder,
    /// Where the bootstrap client's requests count.
    pub requests: crate::sources::kube::ApiRequests,
}

impl ClientCertConfig {
    /// The certificate file.
    pub fn cert_file(&self) -> PathBuf {
        self.cert_dir.join(CLIENT_CERT_FILE)
    }
}

/// The node's client certificate: the stored one when it is valid, else a new one from
/// the bootstrap kubeconfig. Writes the node's kubeconfig when it is missing or the
/// certificate was bootstrapped.
pub async fn load_or_bootstrap(config: &ClientCertConfig) -> Result<Arc<ClientIdentity>> {
    let template = Template::client(&config.node_name);
    match read_stored(&config.cert_file(), &template) {
        Ok(issued) => {
            tracing::info!(cert = %config.cert_file().display(), not_after = %issued.not_after,
                "using the stored client certificate");
            if !config.kubeconfig.exists() {
                write_node_kubeconfig(config)?;
            }
            return Ok(ClientIdentity::new(issued));
        }
        Err(err) => {
            tracing::info!(reason = %crate::error_chain::Chain(&err),
                bootstrap_kubeconfig = %config.bootstrap_kubeconfig.display(),
                "no usable client certificate; bootstrapping one");
        }
    }
    let issued = bootstrap(config).await?;
    Ok(ClientIdentity::new(issued))
}

/// A new certificate through the bootstrap kubeconfig, stored, with the node's
/// kubeconfig written; the outcome is recorded for `systemk doctor`.
async fn bootstrap(config: &ClientCertConfig) -> Result<Issued> {
    let result = bootstrap_once(config).await;
    match &result {
        Ok(_) => config.recorder.bootstrapped(),
        Err(err) => config
            .recorder
            .bootstrap_failed(bootstrap_failure(err, crate::clock::now())),
    }
    result
}

async fn bootstrap_once(config: &ClientCertConfig) -> Result<Issued> {
    let (client, _) = super::super::connect(&config.bootstrap_kubeconfig, &config.requests).await?;
    let template = Template::client(&config.node_name);
    let issued = request_certificate(&client, &template, CERTIFICATE_WAIT, CLIENT_HINT).await?;
    store(&config.cert_file(), &issued)?;
    write_node_kubeconfig(config)?;
    Ok(issued)
}

/// Reads and checks a stored certificate file.
pub(super) fn read_stored(path: &Path, template: &Template) -> Result<Issued> {
    let pem = fs::read_to_string(path).map_err(|source| Error::CertificateFile {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    Issued::from_file_pem(&pem, template, crate::clock::now())
}

/// Writes `issued` (certificate and key) to `path`, 0600, its directory 0700.
pub(super) fn store(path: &Path, issued: &Issued) -> Result<()> {
    let file_error = |source| Error::CertificateFile {
        action: "write",
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(file_error)?;
        // An existing directory keeps its mode through `create`: tighten it.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(file_error)?;
    }
    atomic_file::write(
        path,
        issued.file_pem().as_bytes(),
        0o600,
        Durability::Synced,
    )
    .map_err(file_error)
}

/// Writes the node's kubeconfig: the bootstrap kubeconfig's current cluster with the
/// certificate file as client certificate and key.
fn write_node_kubeconfig(config: &ClientCertConfig) -> Result<()> {
    let invalid = |message: String| Error::Kubeconfig {
        path: config.bootstrap_kubeconfig.clone(),
        message,
    };
    let bootstrap = Kubeconfig::read_from(&config.bootstrap_kubeconfig)
        .map_err(|err| invalid(err.to_string()))?;
    let context_name = bootstrap
        .current_context
        .clone()
        .ok_or_else(|| invalid("no current-context".to_owned()))?;
    let cluster_name = bootstrap
        .contexts
        .iter()
        .find(|context| context.name == context_name)
        .and_then(|context| context.context.as_ref())
        .map(|context| context.cluster.clone())
        .ok_or_else(|| invalid(format!("context {context_name} is missing")))?;
    let cluster = bootstrap
        .clusters
        .iter()
        .find(|cluster| cluster.name == cluster_name)
        .and_then(|cluster| cluster.cluster.as_ref())
        .ok_or_else(|| invalid(format!("cluster {cluster_name} is missing")))?;
    let text = node_kubeconfig(cluster, &config.bootstrap_kubeconfig, &config.cert_file())
        .map_err(invalid)?;
    if let Some(dir) = config.kubeconfig.parent() {
        fs::create_dir_all(dir).map_err(|source| Error::CertificateFile {
            action: "write",
            path: config.kubeconfig.clone(),
            source,
        })?;
    }
    // It names the key file but holds no secret; 0600 anyway, as the kubelet's.
    atomic_file::write(
        &config.kubeconfig,
        text.as_bytes(),
        0o600,
        Durability::Synced,
    )
    .map_err(|source| Error::CertificateFile {
        action: "write",
        path: config.kubeconfig.clone(),
        source,
    })?;
    tracing::info!(kubeconfig = %config.kubeconfig.display(), "wrote the node's kubeconfig");
    Ok(())
}

/// The node's kubeconfig text for `cluster` (of the kubeconfig at `bootstrap_path`,
/// against which a relative CA path is resolved), authenticating with `cert_file`.
fn node_kubeconfig(
    cluster: &kube::config::Cluster,
    bootstrap_path: &Path,
    cert_file: &Path,
) -> std::result::Result<String, String> {
    let server = cluster
        .server
        .clone()
        .ok_or_else(|| "the cluster has no server".to_owned())?;
    let mut entry = serde_json::json!({ "server": server });
    if let Some(data) = &cluster.certificate_authority_data {
        entry["certificate-authority-data"] = data.clone().into();
    } else if let Some(file) = &cluster.certificate_authority {
        let path = bootstrap_path.parent().unwrap_or(Path::new("/")).join(file);
        entry["certificate-authority"] = path.display().to_string().into();
    }
    if let Some(name) = &cluster.tls_server_name {
        entry["tls-server-name"] = name.clone().into();
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        entry["insecure-skip-tls-verify"] = true.into();
    }
    let cert = cert_file.display().to_string();
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "default-cluster", "cluster": entry }],
        "contexts": [{ "name": "default-context", "context": {
            "cluster": "default-cluster", "namespace": "default", "user": "default-auth" } }],
        "current-context": "default-context",
        "users": [{ "name": "default-auth", "user": {
            "client-certificate": cert, "client-key": cert } }],
    });
    serde_yaml_ng::to_string(&config).map_err(|err| err.to_string())
}

/// Delays between failed renewals: 2 s doubling to 5 minutes, so a cluster that refuses
/// does not collect a CSR every few seconds.
fn renewal_backoff() -> Backoff {
    Backoff::try_new(Duration::from_secs(2), Duration::from_secs(300), 2.0, 0.1)
        .unwrap_or(API_SERVER)
}

/// Renews the client certificate in `identity` before it expires (see the module
/// documentation) until `stop`. `client` is the node's own client.
pub async fn keep_current(
    client: Client,
    identity: Arc<ClientIdentity>,
    config: ClientCertConfig,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let template = Template::client(&config.node_name);
    let mut retry = Retry::new(renewal_backoff());
    loop {
        let current = identity.current();
        let deadline = match retry.pending_delay() {
            Some(delay) => {
                crate::clock::now()
                    + k8s_openapi::jiff::SignedDuration::try_from(delay).unwrap_or_default()
            }
            None => rotation_deadline(
                current.not_before,
                current.not_after,
                current.received,
                unit_random(),
            ),
        };
        tracing::info!(renew_at = %deadline, not_after = %current.not_after,
            "client certificate renewal scheduled");
        tokio::select! {
            () = tokio::time::sleep(until(deadline, crate::clock::now())) => {}
            () = &mut stop => return,
        }
        let expired = identity.current().expired(crate::clock::now());
        let attempt = async {
            if expired {
                tracing::warn!(not_after = %current.not_after,
                    "the client certificate expired; bootstrapping a new one with the bootstrap kubeconfig");
                bootstrap(&config).await
            } else {
                request_certificate(&client, &template, CERTIFICATE_WAIT, CLIENT_HINT)
                    .await
                    .and_then(|issued| store(&config.cert_file(), &issued).map(|()| issued))
            }
        };
        // A request may wait for approval for minutes: a stop must not wait for it.
        let renewed = tokio::select! {
            renewed = attempt => renewed,
            () = &mut stop => return,
        };
        match renewed {
            Ok(issued) => {
                retry.succeeded();
                tracing::info!(not_after = %issued.not_after, "client certificate renewed; new connections use it");
                identity.replace(issued);
            }
            Err(err) if expired => {
                let delay = retry.failed();
                tracing::error!(error = %crate::error_chain::Chain(&err), retry_in = ?delay,
                    bootstrap_kubeconfig = %config.bootstrap_kubeconfig.display(),
                    "the node's client certificate expired and the bootstrap kubeconfig cannot get a new one: the node cannot reach the cluster; give it a valid bootstrap token (kubeadm token create) or a new certificate");
            }
            Err(err) => {
                let delay = retry.failed();
                tracing::warn!(error = %crate::error_chain::Chain(&err), retry_in = ?delay,
                    not_after = %current.not_after, "cannot renew the client certificate");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::issued::tests::issued_pair;
    use super::*;

    #[test]
    fn stored_certificate_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let template = Template::client("node-a");
        let (cert, key) = issued_pair(&template, (300, 3600));
        let issued = Issued::check(&cert, &key, &template, crate::clock::now()).unwrap();
        let path = dir.path().join("pki").join(CLIENT_CERT_FILE);
        store(&path, &issued).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("pki")), 0o700);
        let again = read_stored(&path, &template).unwrap();
        assert_eq!(again.not_after, issued.not_after);
        // Another node's file is not ours.
        assert!(read_stored(&path, &Template::client("node-b")).is_err());
    }

    #[test]
    fn node_kubeconfig_keeps_the_cluster_and_names_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = dir.path().join("bootstrap-kubeconfig");
        fs::write(
            &bootstrap,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: Q0E=\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: abcdef.0123456789abcdef\n",
        )
        .unwrap();
        let config = ClientCertConfig {
            node_name: "node-a".into(),
            cert_dir: dir.path().join("pki"),
            kubeconfig: dir.path().join("kubeconfig"),
            recorder: Recorder::new(&dir.path().join("pki")),
            bootstrap_kubeconfig: bootstrap,
            requests: crate::sources::kube::ApiRequests::default(),
        };
        write_node_kubeconfig(&config).unwrap();
        let text = fs::read_to_string(&config.kubeconfig).unwrap();
        assert!(
            !text.contains("0123456789abcdef"),
            "the token must not be copied: {text}"
        );
        let parsed = Kubeconfig::from_yaml(&text).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
        let cert = config.cert_file().display().to_string();
        assert_eq!(user.client_certificate.as_deref(), Some(cert.as_str()));
        assert_eq!(user.client_key.as_deref(), Some(cert.as_str()));
        assert_eq!(
            fs::metadata(&config.kubeconfig)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
}
