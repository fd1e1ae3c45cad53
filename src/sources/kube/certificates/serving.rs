//! The kubelet API's serving certificate from the cluster (the kubelet's
//! `--rotate-server-certificates`): a CSR for signer `kubernetes.io/kubelet-serving`
//! with `CN=system:node:<node>`, `O=system:nodes` and the node's host name and addresses
//! as SANs, made with the node's own client certificate. Nothing upstream approves these
//! CSRs (kube-controller-manager only approves client CSRs): an operator or an approver
//! does. Until one is issued the server keeps the certificate it started with (the
//! self-signed one), and the wait is logged with the `kubectl certificate approve` line
//! and announced in a `ServingCertificatePending` event on the Node.
//!
//! The issued certificate is kept in `<cert dir>/kubelet-server-current.pem` (0600),
//! sent to the server through a `watch` channel (the server swaps it in for new
//! handshakes; open connections keep theirs) and renewed like the client certificate at
//! 70–90 % of its lifetime, or at once when the node's names or addresses changed.
//! Layer 5.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use super::bootstrap::{read_stored, store};
use super::csr::Template;
use super::issued::Issued;
use super::record::{PendingCsr, Recorder};
use super::request::{CERTIFICATE_WAIT, create, wait_for_issue};
use super::rotation::{rotation_deadline, unit_random, until};
use crate::backoff::{API_SERVER, Backoff, Retry};
use crate::pod::EventKind;
use crate::sources::kube::EventPublisher;

/// The serving certificate's file in the certificate directory (the kubelet's name).
pub const SERVING_CERT_FILE: &str = "kubelet-server-current.pem";

/// What an operator can do about a serving CSR.
const SERVING_HINT: &str = ": serving certificate requests need an approver (kubectl certificate approve <name>); the kubelet API serves its self-signed certificate meanwhile";

/// What the serving certificate must say, and where it is kept.
#[derive(Debug, Clone)]
pub struct ServingCertConfig {
    /// The node's name and SANs.
    pub template: Template,
    /// The certificate directory (`--cert-dir`).
    pub cert_dir: PathBuf,
    /// Where the pending CSR is recorded for `systemk doctor`.
    pub recorder: Recorder,
}

/// Where the event about a pending serving CSR goes: the Node, once registered.
pub struct PendingEvents {
    /// The publisher.
    pub publisher: EventPublisher,
    /// The Node's UID, once registered.
    pub node_uid: watch::Receiver<Option<String>>,
}

/// How long the pending-CSR event waits for the Node to be registered.
const NODE_UID_WAIT: Duration = Duration::from_secs(30);

impl PendingEvents {
    /// A Normal event `ServingCertificatePending` on the Node naming the CSR to approve.
    async fn publish(&mut self, node_name: &str, csr: &str) {
        let wait = self.node_uid.wait_for(|uid| uid.is_some());
        let uid = match tokio::time::timeout(NODE_UID_WAIT, wait).await {
            // The guard is dropped at the end of this statement, before the next await.
            Ok(Ok(uid)) => uid.clone().unwrap_or_default(),
            _ => return,
        };
        let message = format!(
            "the kubelet API's serving certificate request {csr} waits for approval (kubectl certificate approve {csr}); the self-signed certificate is served meanwhile"
        );
        self.publisher
            .publish_node(
                node_name,
                &uid,
                EventKind::Normal,
                "ServingCertificatePending",
                &message,
            )
            .await;
    }
}

impl ServingCertConfig {
    /// The certificate file.
    pub fn cert_file(&self) -> PathBuf {
        self.cert_dir.join(SERVING_CERT_FILE)
    }
}

/// The stored serving certificate, when it is valid and still names exactly the node's
/// names and addresses.
pub fn load_stored(config: &ServingCertConfig) -> Option<Issued> {
    match read_stored(&config.cert_file(), &config.template) {
        Ok(issued) if covers(&issued, &config.template) => Some(issued),
        Ok(_) => {
            tracing::info!(cert = %config.cert_file().display(),
                "the stored serving certificate names other host names or addresses; requesting a new one");
            None
        }
        Err(err) => {
            tracing::debug!(reason = %crate::error_chain::Chain(&err), "no stored serving certificate");
            None
        }
    }
}

/// Whether the certificate's SANs are exactly the template's.
fn covers(issued: &Issued, template: &Template) -> bool {
    let Some(der) = issued.certified.cert.first() else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return template.dns_names.is_empty() && template.ips.is_empty();
    };
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    for name in &san.value.general_names {
        match name {
            x509_parser::extensions::GeneralName::DNSName(name) => dns.push((*name).to_owned()),
            x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                    ips.push(std::net::IpAddr::from(octets));
                } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                    ips.push(std::net::IpAddr::from(octets));
                }
            }
            _ => {}
        }
    }
    let mut want_dns = template.dns_names.clone();
    let mut want_ips = template.ips.clone();
    dns.sort();
    want_dns.sort();
    ips.sort();
    want_ips.sort();
    dns == want_dns && ips == want_ips
}

/// Keeps a cluster-issued serving certificate in `updates` until `stop`: the stored one
/// first (when valid), then new ones before each expires. `client` is the node's own.
pub async fn keep_current(
    client: Client,
    config: ServingCertConfig,
    updates: watch::Sender<Option<Arc<CertifiedKey>>>,
    mut events: PendingEvents,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut current = load_stored(&config);
    if let Some(issued) = &current {
        tracing::info!(cert = %config.cert_file().display(), not_after = %issued.not_after,
            "serving the stored cluster-issued certificate");
        updates.send_replace(Some(issued.certified.clone()));
    }
    let backoff = Backoff::try_new(Duration::from_secs(2), Duration::from_secs(300), 2.0, 0.1)
        .unwrap_or(API_SERVER);
    let mut retry = Retry::new(backoff);
    loop {
        let wait = match (retry.pending_delay(), &current) {
            (Some(delay), _) => delay,
            (None, Some(issued)) => {
                let deadline = rotation_deadline(
                    issued.not_before,
                    issued.not_after,
                    issued.received,
                    unit_random(),
                );
                tracing::info!(renew_at = %deadline, "serving certificate renewal scheduled");
                until(deadline, crate::clock::now())
            }
            (None, None) => Duration::ZERO,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut stop => return,
        }
        let attempt = async {
            let pending = create(&client, &config.template).await?;
            config.recorder.serving_pending(Some(PendingCsr {
                name: pending.name.clone(),
                since: crate::clock::now(),
            }));
            if current.is_none() {
                events
                    .publish(&config.template.node_name, &pending.name)
                    .await;
            }
            wait_for_issue(
                &client,
                pending,
                &config.template,
                CERTIFICATE_WAIT,
                SERVING_HINT,
            )
            .await
        };
        let requested = tokio::select! {
            result = attempt => result,
            () = &mut stop => return,
        };
        match requested.and_then(|issued| store(&config.cert_file(), &issued).map(|()| issued)) {
            Ok(issued) => {
                retry.succeeded();
                config.recorder.serving_pending(None);
                tracing::info!(not_after = %issued.not_after,
                    "serving the cluster-issued certificate; new connections use it");
                updates.send_replace(Some(issued.certified.clone()));
                current = Some(issued);
            }
            Err(err) => {
                let delay = retry.failed();
                let serving = if current.is_some() {
                    "the previous cluster-issued"
                } else {
                    "the self-signed"
                };
                tracing::warn!(error = %crate::error_chain::Chain(&err), retry_in = ?delay,
                    "no serving certificate from the cluster; the kubelet API keeps {serving} certificate");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::issued::tests::issued_pair;
    use super::*;

    #[test]
    fn a_stored_certificate_counts_only_for_the_same_names() {
        let dir = tempfile::tempdir().unwrap();
        let ips = ["10.0.0.7".parse().unwrap()];
        let template = Template::serving("node-a", &["node-a".into()], &ips);
        let config = ServingCertConfig {
            template: template.clone(),
            cert_dir: dir.path().into(),
            recorder: Recorder::new(dir.path()),
        };
        assert!(load_stored(&config).is_none());
        let (cert, key) = issued_pair(&template, (300, 3600));
        let issued = Issued::check(&cert, &key, &template, crate::clock::now()).unwrap();
        store(&config.cert_file(), &issued).unwrap();
        assert!(load_stored(&config).is_some());
        let moved = ServingCertConfig {
            template: Template::serving(
                "node-a",
                &["node-a".into()],
                &["10.0.0.8".parse().unwrap()],
            ),
            cert_dir: dir.path().into(),
            recorder: Recorder::new(dir.path()),
        };
        assert!(load_stored(&moved).is_none());
    }
}
