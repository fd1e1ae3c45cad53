//! `systemk doctor`'s checks over made-up node states: a healthy bootstrapped node, and
//! the attacks and accidents doctor must name without panicking (garbage or truncated
//! PEM, another node's certificate, a key others may read, a symlink out of the
//! certificate directory, an expired certificate with a refused token).

use std::path::{Path, PathBuf};

use super::cert::tests::cert;
use super::checks::{BootstrapInput, ClientCertInput, Inputs, KubeconfigInput, run};
use super::facts::{FileFacts, OnlineAnswer};
use super::report::{Check, Status, exit_code};
use super::serving::{SelfSigned, ServingInput, ServingSource};
use crate::sources::kube::certificates::Template;
use crate::sources::kube::certificates::issued::tests::issued_pair;
use crate::sources::kube::certificates::record::{BootstrapFailure, CertificateStatus, PendingCsr};

const PKI: &str = "/var/lib/systemk/pki";
const BOOTSTRAP: &str = "/etc/systemk/bootstrap-kubeconfig";
const TOKEN: &str = "abcdef.0123456789abcdef";

fn kubeconfig(user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n{user}"
    )
}

fn pem_file(template: &Template, valid: (i64, i64)) -> String {
    let (cert, key) = issued_pair(template, valid);
    format!("{cert}{key}")
}

fn client_file() -> PathBuf {
    Path::new(PKI).join("kubelet-client-current.pem")
}

/// A node bootstrapped a while ago: everything in order.
fn healthy() -> Inputs {
    let client = pem_file(&Template::client("node-a"), (600, 3600));
    let ips = vec!["10.0.0.7".parse().unwrap()];
    let serving = pem_file(
        &Template::serving("node-a", &["node-a".into()], &ips),
        (600, 3600),
    );
    let (self_cert, self_key) = cert("node-a@1", None, &["node-a"], &["10.0.0.7"], (600, 3600));
    let cert_path = client_file().display().to_string();
    Inputs {
        node_name: "node-a".into(),
        now: crate::clock::now(),
        cert_dir: PKI.into(),
        kubeconfig: Some(KubeconfigInput {
            file: FileFacts::present(
                "/var/lib/systemk/kubeconfig",
                kubeconfig(&format!(
                    "    client-certificate: {cert_path}\n    client-key: {cert_path}\n"
                )),
                0o600,
            ),
            from_bootstrap: true,
        }),
        bootstrap: Some(BootstrapInput {
            file: FileFacts::present(
                BOOTSTRAP,
                kubeconfig(&format!("    token: {TOKEN}\n")),
                0o600,
            ),
            token_file: None,
            online: None,
        }),
        client_cert: Some(ClientCertInput {
            file: FileFacts::present(client_file(), client, 0o600),
            bootstrapped: true,
        }),
        serving: ServingInput {
            source: ServingSource::Cluster {
                issued: FileFacts::present(
                    Path::new(PKI).join("kubelet-server-current.pem"),
                    serving,
                    0o600,
                ),
                self_signed: SelfSigned {
                    cert: FileFacts::present(Path::new(PKI).join("kubelet.crt"), self_cert, 0o644),
                    key: FileFacts::present(Path::new(PKI).join("kubelet.key"), self_key, 0o600),
                },
            },
            cert_dir: PKI.into(),
            self_signed_dir: PKI.into(),
            dns_names: vec!["node-a".into()],
            ips,
        },
        record: Ok(None),
    }
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|check| check.check == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
}

fn client_with(inputs: &mut Inputs, content: &[u8], mode: u32) {
    inputs.client_cert = Some(ClientCertInput {
        file: FileFacts::present(client_file(), content, mode),
        bootstrapped: true,
    });
}

#[test]
fn a_healthy_bootstrapped_node_is_all_ok() {
    let checks = run(&healthy());
    for check in &checks {
        assert_eq!(check.status, Status::Ok, "{check:?}");
    }
    assert_eq!(exit_code(&checks), 0);
    let client = &check(&checks, "client certificate").message;
    assert!(
        client.contains("CN=system:node:node-a O=system:nodes"),
        "{client}"
    );
    assert!(client.contains("renewal due between"), "{client}");
    assert!(client.contains("left)"), "{client}");
    let bootstrap = &check(&checks, "bootstrap kubeconfig").message;
    assert!(
        bootstrap.contains("bootstrap token abcdef.<secret>"),
        "{bootstrap}"
    );
    assert!(
        !bootstrap.contains("0123456789abcdef"),
        "the secret leaked: {bootstrap}"
    );
    assert!(
        bootstrap.contains("cannot be known without asking it"),
        "{bootstrap}"
    );
    let kubeconfig = &check(&checks, "kubeconfig").message;
    assert!(
        kubeconfig.contains("server https://10.0.0.1:6443"),
        "{kubeconfig}"
    );
    assert!(
        kubeconfig.contains("kubelet-client-current.pem"),
        "{kubeconfig}"
    );
    let serving = &check(&checks, "serving certificate").message;
    assert!(serving.starts_with("from the cluster:"), "{serving}");
    assert!(serving.contains("names node-a, 10.0.0.7"), "{serving}");
}

#[test]
fn garbage_or_truncated_client_certificates_fail_clearly() {
    let good = pem_file(&Template::client("node-a"), (600, 3600));
    for bad in [
        b"\x00\x01garbage\xff".to_vec(),
        good.as_bytes()[..good.len() / 3].to_vec(),
        Vec::new(),
    ] {
        let mut inputs = healthy();
        client_with(&mut inputs, &bad, 0o600);
        let checks = run(&inputs);
        let client = check(&checks, "client certificate");
        assert_eq!(client.status, Status::Fail, "{client:?}");
        assert!(client.message.contains("PEM"), "{client:?}");
        assert_eq!(exit_code(&checks), 1);
    }
}

#[test]
fn another_nodes_certificate_fails_naming_both_nodes() {
    let mut inputs = healthy();
    let other = pem_file(&Template::client("node-b"), (600, 3600));
    client_with(&mut inputs, other.as_bytes(), 0o600);
    let client = run(&inputs)
        .into_iter()
        .find(|check| check.check == "client certificate")
        .unwrap();
    assert_eq!(client.status, Status::Fail);
    assert!(client.message.contains("system:node:node-b"), "{client:?}");
    assert!(
        client.message.contains("not system:node:node-a"),
        "{client:?}"
    );
}

#[test]
fn a_key_others_may_read_and_a_symlink_out_of_the_cert_dir_warn() {
    let good = pem_file(&Template::client("node-a"), (600, 3600));
    let mut inputs = healthy();
    client_with(&mut inputs, good.as_bytes(), 0o644);
    let checks = run(&inputs);
    let client = check(&checks, "client certificate");
    assert_eq!(client.status, Status::Warn);
    assert!(client.message.contains("mode 0644"), "{client:?}");
    assert!(client.message.contains("0600"), "{client:?}");
    assert_eq!(exit_code(&checks), 0);

    let mut inputs = healthy();
    let mut file = FileFacts::present(client_file(), good, 0o600);
    file.link_target = Some("/home/someone/node.pem".into());
    inputs.client_cert = Some(ClientCertInput {
        file,
        bootstrapped: true,
    });
    let client = run(&inputs)
        .into_iter()
        .find(|check| check.check == "client certificate")
        .unwrap();
    assert_eq!(client.status, Status::Warn);
    assert!(
        client
            .message
            .contains("symlink to /home/someone/node.pem, outside /var/lib/systemk/pki"),
        "{client:?}"
    );
}

#[test]
fn an_expired_certificate_with_a_refused_token_says_what_to_do() {
    let expired = pem_file(&Template::client("node-a"), (3600, -60));
    let mut inputs = healthy();
    client_with(&mut inputs, expired.as_bytes(), 0o600);
    inputs.record = Ok(Some(CertificateStatus {
        bootstrap_failure: Some(BootstrapFailure {
            at: "2026-01-01T12:00:00Z".parse().unwrap(),
            reason: "cannot create a client certificate request: Unauthorized".into(),
            unauthorized: true,
        }),
        pending_serving_csr: None,
    }));
    let checks = run(&inputs);
    let client = check(&checks, "client certificate");
    assert_eq!(client.status, Status::Fail);
    for needle in [
        "expired at",
        "the bootstrap token cannot get a new one",
        "401 Unauthorized",
        "the node cannot reach the cluster",
        "kubeadm token create",
    ] {
        assert!(client.message.contains(needle), "{needle}: {client:?}");
    }
    assert_eq!(check(&checks, "bootstrap kubeconfig").status, Status::Fail);
    assert_eq!(exit_code(&checks), 1);

    // Asked online: the API server's answer decides.
    let mut inputs = healthy();
    client_with(&mut inputs, expired.as_bytes(), 0o600);
    if let Some(bootstrap) = inputs.bootstrap.as_mut() {
        bootstrap.online = Some(OnlineAnswer::Unauthorized);
    }
    let checks = run(&inputs);
    assert!(
        check(&checks, "client certificate")
            .message
            .contains("refuses its bootstrap token")
    );
    if let Some(bootstrap) = inputs.bootstrap.as_mut() {
        bootstrap.online = Some(OnlineAnswer::Accepted);
    }
    let checks = run(&inputs);
    assert_eq!(check(&checks, "client certificate").status, Status::Warn);
    assert_eq!(check(&checks, "bootstrap kubeconfig").status, Status::Ok);

    // Not asked, nothing recorded: doctor cannot know, and says how to find out.
    let mut inputs = healthy();
    client_with(&mut inputs, expired.as_bytes(), 0o600);
    let client = run(&inputs)
        .into_iter()
        .find(|check| check.check == "client certificate")
        .unwrap();
    assert_eq!(client.status, Status::Fail);
    assert!(client.message.contains("--online"), "{client:?}");
}

#[test]
fn a_missing_bootstrap_kubeconfig_or_a_strange_token_is_named() {
    let mut inputs = healthy();
    inputs.bootstrap = Some(BootstrapInput {
        file: FileFacts::missing(BOOTSTRAP),
        token_file: None,
        online: None,
    });
    let checks = run(&inputs);
    // The node's certificate is still valid: a warning, not a failure.
    assert_eq!(check(&checks, "bootstrap kubeconfig").status, Status::Warn);
    assert!(
        check(&checks, "bootstrap kubeconfig")
            .message
            .contains("missing")
    );
    let mut inputs = healthy();
    inputs.bootstrap = Some(BootstrapInput {
        file: FileFacts::present(
            BOOTSTRAP,
            kubeconfig("    token: Not-A-Bootstrap-Token\n"),
            0o644,
        ),
        token_file: None,
        online: None,
    });
    let bootstrap = run(&inputs)
        .into_iter()
        .find(|check| check.check == "bootstrap kubeconfig")
        .unwrap();
    assert_eq!(bootstrap.status, Status::Warn);
    assert!(
        bootstrap.message.contains("not a bootstrap token"),
        "{bootstrap:?}"
    );
    assert!(bootstrap.message.contains("chmod 0600"), "{bootstrap:?}");
    assert!(
        !bootstrap.message.contains("Not-A-Bootstrap-Token"),
        "{bootstrap:?}"
    );
}

#[test]
fn serving_certificate_states() {
    // Not issued yet: the self-signed one is served, and the pending CSR is named.
    let mut inputs = healthy();
    if let ServingSource::Cluster { issued, .. } = &mut inputs.serving.source {
        *issued = FileFacts::missing(Path::new(PKI).join("kubelet-server-current.pem"));
    }
    inputs.record = Ok(Some(CertificateStatus {
        bootstrap_failure: None,
        pending_serving_csr: Some(PendingCsr {
            name: "csr-x7".into(),
            since: "2026-01-01T12:00:00Z".parse().unwrap(),
        }),
    }));
    let serving = check(&run(&inputs), "serving certificate").clone();
    assert_eq!(serving.status, Status::Warn);
    assert!(
        serving
            .message
            .contains("kubectl certificate approve csr-x7"),
        "{serving:?}"
    );
    assert!(serving.message.contains("self-signed"), "{serving:?}");

    // The node moved: its new address is not in the certificate.
    let mut inputs = healthy();
    inputs.serving.ips = vec!["10.0.0.8".parse().unwrap()];
    let serving = check(&run(&inputs), "serving certificate").clone();
    assert_eq!(serving.status, Status::Warn);
    assert!(
        serving.message.contains("not the node's current 10.0.0.8"),
        "{serving:?}"
    );

    // Garbage, or another node's certificate, in the cluster-issued file.
    let other_node = pem_file(
        &Template::serving("node-b", &["node-b".into()], &[]),
        (600, 3600),
    );
    for (bad, needle) in [
        (b"-----BEGIN CERTIFICATE-----\nAAAA".to_vec(), "PEM"),
        (other_node.into_bytes(), "system:node:node-b"),
    ] {
        let mut inputs = healthy();
        if let ServingSource::Cluster { issued, .. } = &mut inputs.serving.source {
            issued.content = Ok(bad);
        }
        let serving = check(&run(&inputs), "serving certificate").clone();
        assert_eq!(serving.status, Status::Fail, "{serving:?}");
        assert!(serving.message.contains(needle), "{needle}: {serving:?}");
    }

    // Self-signed only, with a key others may read.
    let mut inputs = healthy();
    let (self_cert, self_key) = cert("node-a@1", None, &["node-a"], &["10.0.0.7"], (60, 3600));
    inputs.serving.source = ServingSource::SelfSigned(SelfSigned {
        cert: FileFacts::present(Path::new(PKI).join("kubelet.crt"), self_cert, 0o644),
        key: FileFacts::present(Path::new(PKI).join("kubelet.key"), self_key, 0o640),
    });
    let serving = check(&run(&inputs), "serving certificate").clone();
    assert_eq!(serving.status, Status::Warn, "{serving:?}");
    assert!(serving.message.starts_with("self-signed:"), "{serving:?}");
    assert!(serving.message.contains("mode 0640"), "{serving:?}");
}

#[test]
fn a_node_without_a_cluster_is_fine() {
    let mut inputs = healthy();
    inputs.kubeconfig = None;
    inputs.bootstrap = None;
    inputs.client_cert = None;
    let checks = run(&inputs);
    assert_eq!(check(&checks, "kubeconfig").status, Status::Ok);
    assert!(
        check(&checks, "kubeconfig")
            .message
            .contains("static pods only")
    );
    assert!(
        check(&checks, "bootstrap kubeconfig")
            .message
            .contains("not configured")
    );
    assert!(
        check(&checks, "client certificate")
            .message
            .contains("no cluster")
    );
}
