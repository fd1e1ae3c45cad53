//! `systemk doctor [-o json] [--online]`: checks the node's certificates and kubeconfigs
//! as the agent would use them, from the same settings (flags, `SYSTEMK_<FLAG>`,
//! `/etc/default/systemk`), and prints one OK/WARN/FAIL line per check: the kubeconfig,
//! the bootstrap kubeconfig, the client certificate and the serving certificate, with what
//! the agent recorded (`certificate-status.json`: the last failed bootstrap, a pending
//! serving CSR). Changes nothing; asks the API server only with `--online`. Exit code 0
//! unless a check fails (1). This file reads; the checks are plain functions
//! ([`checks`], [`serving`]) over what it read ([`facts`]).

mod cert;
mod checks;
mod facts;
mod report;
mod serving;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, ListParams};

use crate::config::{DoctorArgs, DoctorFormat, detect_node_ips, host_addresses};
use crate::sources::kube::certificates::record::CertificateStatus;
use crate::sources::kube::certificates::{CLIENT_CERT_FILE, SERVING_CERT_FILE, Template};
use checks::{BootstrapInput, ClientCertInput, Inputs, KubeconfigInput};
use facts::{Credentials, FileFacts, OnlineAnswer, read_file, summarize_kubeconfig};
use serving::{SelfSigned, ServingInput, ServingSource};

/// How long `--online` waits for the API server.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the checks and prints the report; returns the exit code.
pub async fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let agent = &args.agent;
    let node_name = match &agent.nodename {
        Some(name) => name.clone(),
        None => super::hostname()?,
    };
    let hostname = super::hostname()?;
    let cert_dir = resolved(&agent.cert_dir());
    let kubeconfig = match agent.bootstrapped_kubeconfig() {
        Some(path) => Some(KubeconfigInput {
            file: read_file(&path),
            from_bootstrap: true,
        }),
        None => agent
            .kubeconfig_choice(|name| std::env::var(name).ok())
            .path()
            .map(|path| KubeconfigInput {
                file: read_file(path),
                from_bootstrap: false,
            }),
    };
    let mut bootstrap = agent.bootstrap_kubeconfig.as_deref().map(|path| {
        let file = read_file(path);
        let token_file = match credentials(&file) {
            Some(Credentials::TokenFile(token)) => Some(read_file(&token)),
            _ => None,
        };
        BootstrapInput {
            file,
            token_file,
            online: None,
        }
    });
    if let (true, Some(input), Some(path)) = (
        args.online,
        bootstrap.as_mut(),
        agent.bootstrap_kubeconfig.as_deref(),
    ) {
        input.online = Some(ask(path).await);
    }
    let client_cert = if agent.bootstrap_kubeconfig.is_some() {
        Some(ClientCertInput {
            file: read_file(&cert_dir.join(CLIENT_CERT_FILE)),
            bootstrapped: true,
        })
    } else {
        match kubeconfig
            .as_ref()
            .and_then(|input| credentials(&input.file))
        {
            Some(Credentials::ClientCertificate(Some(file))) => Some(ClientCertInput {
                file: read_file(&file),
                bootstrapped: false,
            }),
            _ => None,
        }
    };
    let ips = match host_addresses() {
        Ok(addresses) => detect_node_ips(agent.node_ip, agent.node_external_ip, &addresses)
            .map(|ips| vec![ips.internal, ips.external])
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let self_signed_dir = resolved(&agent.paths.state_dir.join("pki"));
    let self_signed = || SelfSigned {
        cert: read_file(&self_signed_dir.join("kubelet.crt")),
        key: read_file(&self_signed_dir.join("kubelet.key")),
    };
    let joined = kubeconfig.is_some();
    let (source, dns_names) = match (&agent.tls_cert_file, &agent.tls_private_key_file) {
        _ if agent.kubelet_port == 0 => (ServingSource::Off, Vec::new()),
        (Some(cert), Some(key)) => (
            ServingSource::Operator {
                cert: read_file(cert),
                key: read_file(key),
            },
            vec![hostname.clone()],
        ),
        _ if agent.serving_from_cluster(joined) => (
            ServingSource::Cluster {
                issued: read_file(&cert_dir.join(SERVING_CERT_FILE)),
                self_signed: self_signed(),
            },
            // What the agent asks the cluster for.
            Template::serving(&node_name, std::slice::from_ref(&hostname), &ips).dns_names,
        ),
        _ => (
            ServingSource::SelfSigned(self_signed()),
            vec![node_name.clone(), hostname.clone()],
        ),
    };
    let mut unique_ips = Vec::new();
    for ip in ips {
        if !unique_ips.contains(&ip) {
            unique_ips.push(ip);
        }
    }
    let inputs = Inputs {
        node_name,
        now: crate::clock::now(),
        record: CertificateStatus::read(&cert_dir).map_err(|err| {
            format!(
                "{}: {err}",
                cert_dir
                    .join(crate::sources::kube::certificates::record::RECORD_FILE)
                    .display()
            )
        }),
        serving: ServingInput {
            source,
            cert_dir: cert_dir.clone(),
            self_signed_dir,
            dns_names,
            ips: unique_ips,
        },
        cert_dir,
        kubeconfig,
        bootstrap,
        client_cert,
    };
    let checks = checks::run(&inputs);
    let out = match args.output {
        DoctorFormat::Text => report::text(&checks),
        DoctorFormat::Json => report::json(&checks),
    };
    print!("{out}");
    Ok(report::exit_code(&checks))
}

/// A directory with its symlinks resolved (as is, when it does not exist).
fn resolved(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

/// The credentials a kubeconfig file names, when it reads.
fn credentials(file: &FileFacts) -> Option<Credentials> {
    let text = String::from_utf8_lossy(file.content.as_ref().ok()?).into_owned();
    let dir = file.path.parent().unwrap_or(Path::new("/"));
    summarize_kubeconfig(&text, dir)
        .ok()
        .map(|summary| summary.credentials)
}

/// Asks the API server of `kubeconfig` a harmless question with its credentials: list
/// one CertificateSigningRequest, which a bootstrap token may do (system:node-bootstrapper).
async fn ask(kubeconfig: &Path) -> OnlineAnswer {
    let answer = async {
        let requests = crate::sources::kube::ApiRequests::default();
        let (client, _) = crate::sources::kube::connect(kubeconfig, &requests)
            .await
            .map_err(|err| {
                OnlineAnswer::Unreachable(crate::error_chain::Chain(&err).to_string())
            })?;
        let api: Api<CertificateSigningRequest> = Api::all(client);
        api.list(&ListParams::default().limit(1))
            .await
            .map(|_| OnlineAnswer::Accepted)
            .map_err(|err| match &err {
                kube::Error::Api(status) if status.code == 401 => OnlineAnswer::Unauthorized,
                kube::Error::Api(status) if status.code == 403 => {
                    OnlineAnswer::Forbidden(status.message.clone())
                }
                _ => OnlineAnswer::Unreachable(crate::error_chain::Chain(&err).to_string()),
            })
    };
    match tokio::time::timeout(ONLINE_TIMEOUT, answer).await {
        Ok(Ok(answer) | Err(answer)) => answer,
        Err(_) => {
            OnlineAnswer::Unreachable(format!("no answer within {}s", ONLINE_TIMEOUT.as_secs()))
        }
    }
}
