//! The serving-certificate check of `systemk doctor`: which certificate the kubelet API
//! serves (operator-given, from the cluster, or self-signed, as the agent picks it), its
//! names against the node's current host name and addresses, its expiry and renewal, and
//! the serving CSR the agent recorded as waiting for approval. Pure. Layer: top (cli).

use std::net::IpAddr;
use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;

use super::cert::{CertFacts, cert_facts, key_matches, span, validity_text};
use super::facts::{FileFacts, FileProblem, key_file_warnings, problem_text};
use super::report::{Check, Status};
use crate::sources::kube::certificates::record::CertificateStatus;

const NAME: &str = "serving certificate";

/// Where the serving certificate comes from, as the agent decides it.
#[derive(Debug, Clone)]
pub enum ServingSource {
    /// `--kubelet-port 0`: no kubelet API.
    Off,
    /// `--tls-cert-file` and `--tls-private-key-file`.
    Operator {
        /// The certificate.
        cert: FileFacts,
        /// The key.
        key: FileFacts,
    },
    /// From the cluster (`kubelet-server-current.pem`), the self-signed one until then.
    Cluster {
        /// The cluster-issued certificate and key.
        issued: FileFacts,
        /// The self-signed fallback.
        self_signed: SelfSigned,
    },
    /// Self-signed only.
    SelfSigned(SelfSigned),
}

/// The self-signed certificate in `<state dir>/pki`.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// `kubelet.crt`.
    pub cert: FileFacts,
    /// `kubelet.key`.
    pub key: FileFacts,
}

/// The serving certificate's inputs.
#[derive(Debug, Clone)]
pub struct ServingInput {
    /// Where it comes from.
    pub source: ServingSource,
    /// The certificate directory, resolved (for the cluster-issued file).
    pub cert_dir: PathBuf,
    /// `<state dir>/pki`, resolved (for the self-signed key).
    pub self_signed_dir: PathBuf,
    /// The names it should carry now: the host name (and node name).
    pub dns_names: Vec<String>,
    /// The addresses it should carry now: InternalIP and ExternalIP.
    pub ips: Vec<IpAddr>,
}

/// The serving certificate's check.
pub fn serving_check(
    input: &ServingInput,
    node_name: &str,
    record: Option<&CertificateStatus>,
    now: Timestamp,
) -> Check {
    let pending = record.and_then(|record| record.pending_serving_csr.as_ref());
    match &input.source {
        ServingSource::Off => Check::new(NAME, Status::Ok, "no kubelet API (--kubelet-port 0)"),
        ServingSource::Operator { cert, key } => {
            let check = pair_check(input, cert, key, now, &input.self_signed_dir, false);
            prefixed(check, "operator-given (--tls-cert-file)")
        }
        ServingSource::SelfSigned(own) => {
            let check = pair_check(
                input,
                &own.cert,
                &own.key,
                now,
                &input.self_signed_dir,
                true,
            );
            prefixed(check, "self-signed")
        }
        ServingSource::Cluster {
            issued,
            self_signed,
        } => {
            let waiting = pending.map(|csr| {
                format!(
                    "CSR {} waits for approval since {} (kubectl certificate approve {})",
                    csr.name, csr.since, csr.name
                )
            });
            if issued.content.is_err() && issued.link_target.is_none() {
                let fallback = self_signed_check(input, self_signed, now);
                let why = waiting.unwrap_or_else(|| {
                    "the agent requests one when it runs (kubectl get csr)".to_owned()
                });
                let mut check = prefixed(
                    fallback,
                    &format!(
                        "none from the cluster yet ({} {}): serving the self-signed one until then; {why}; self-signed",
                        issued.path.display(),
                        issued
                            .content
                            .as_ref()
                            .err()
                            .map(problem_text)
                            .unwrap_or_default()
                    ),
                );
                check.status = check.status.max(Status::Warn);
                return check;
            }
            let mut check = cluster_check(input, issued, node_name, now);
            if let Some(waiting) = waiting {
                check.message.push_str(&format!("; a renewal {waiting}"));
            }
            prefixed(check, "from the cluster")
        }
    }
}

/// The self-signed certificate: made by the agent at start, so not there yet is only a
/// warning.
fn self_signed_check(input: &ServingInput, own: &SelfSigned, now: Timestamp) -> Check {
    if own.cert.content == Err(FileProblem::Missing) && own.cert.link_target.is_none() {
        return Check::new(
            NAME,
            Status::Warn,
            format!(
                "{} is not made yet: the agent makes it at start",
                own.cert.path.display()
            ),
        );
    }
    pair_check(
        input,
        &own.cert,
        &own.key,
        now,
        &input.self_signed_dir,
        true,
    )
}

fn prefixed(mut check: Check, source: &str) -> Check {
    check.message = format!("{source}: {}", check.message);
    check
}

/// The cluster-issued certificate: for this node, with its key, valid, naming the node.
fn cluster_check(input: &ServingInput, file: &FileFacts, node_name: &str, now: Timestamp) -> Check {
    let path = file.path.display().to_string();
    let pem = match &file.content {
        Ok(pem) => pem,
        Err(problem) => {
            return Check::new(
                NAME,
                Status::Fail,
                format!("{path}: {}", problem_text(problem)),
            );
        }
    };
    let facts = match cert_facts(pem) {
        Ok(facts) => facts,
        Err(err) => {
            return Check::new(
                NAME,
                Status::Fail,
                format!(
                    "{path}: {err}; the agent serves the self-signed certificate and requests a new one"
                ),
            );
        }
    };
    let expected = format!("system:node:{node_name}");
    if facts.common_names != [expected.as_str()] {
        return Check::new(
            NAME,
            Status::Fail,
            format!(
                "{path} is for {}, not {expected}: the agent will not serve it",
                facts.subject()
            ),
        );
    }
    if let Err(err) = key_matches(pem, pem) {
        return Check::new(NAME, Status::Fail, format!("{path}: {err}"));
    }
    finish(input, file, &facts, now, &input.cert_dir, true)
}

/// A certificate and its key in two files.
fn pair_check(
    input: &ServingInput,
    cert: &FileFacts,
    key: &FileFacts,
    now: Timestamp,
    dir: &std::path::Path,
    own: bool,
) -> Check {
    let path = cert.path.display().to_string();
    let (pem, key_pem) = match (&cert.content, &key.content) {
        (Ok(pem), Ok(key_pem)) => (pem, key_pem),
        (Err(problem), _) => {
            return Check::new(
                NAME,
                Status::Fail,
                format!("{path}: {}", problem_text(problem)),
            );
        }
        (_, Err(problem)) => {
            return Check::new(
                NAME,
                Status::Fail,
                format!("key {}: {}", key.path.display(), problem_text(problem)),
            );
        }
    };
    let facts = match cert_facts(pem) {
        Ok(facts) => facts,
        Err(err) => return Check::new(NAME, Status::Fail, format!("{path}: {err}")),
    };
    if let Err(err) = key_matches(pem, key_pem) {
        return Check::new(
            NAME,
            Status::Fail,
            format!("{path} and {}: {err}", key.path.display()),
        );
    }
    let mut check = finish(input, cert, &facts, now, dir, false);
    if own {
        for warning in key_file_warnings(key, dir) {
            check
                .message
                .push_str(&format!("; key {}: {warning}", key.path.display()));
            check.status = check.status.max(Status::Warn);
        }
    }
    check
}

/// Expiry, renewal and names of a certificate that parsed and matches its key.
fn finish(
    input: &ServingInput,
    file: &FileFacts,
    facts: &CertFacts,
    now: Timestamp,
    dir: &std::path::Path,
    renewed: bool,
) -> Check {
    let path = file.path.display().to_string();
    if now >= facts.not_after {
        return Check::new(
            NAME,
            Status::Fail,
            format!(
                "{path} expired at {} ({} ago): clients refuse it",
                facts.not_after,
                span(now.duration_since(facts.not_after))
            ),
        );
    }
    let (mut status, mut message) =
        validity_text(&path, facts, now, renewed.then_some(file.modified));
    let missing: Vec<String> = input
        .dns_names
        .iter()
        .filter(|name| !facts.dns_names.contains(name))
        .cloned()
        .chain(
            input
                .ips
                .iter()
                .filter(|ip| !facts.ips.contains(ip))
                .map(IpAddr::to_string),
        )
        .collect();
    if missing.is_empty() {
        message.push_str(&format!("; names {}", names(facts)));
    } else {
        let fix = if renewed {
            "the agent requests a new one at its next start"
        } else {
            "clients that check names refuse it"
        };
        message.push_str(&format!(
            "; names {} but not the node's current {}: {fix}",
            names(facts),
            missing.join(", ")
        ));
        status = status.max(Status::Warn);
    }
    if renewed {
        for warning in key_file_warnings(file, dir) {
            message.push_str("; ");
            message.push_str(&warning);
            status = status.max(Status::Warn);
        }
    }
    Check::new(NAME, status, message)
}

fn names(facts: &CertFacts) -> String {
    let all: Vec<String> = facts
        .dns_names
        .iter()
        .cloned()
        .chain(facts.ips.iter().map(IpAddr::to_string))
        .collect();
    if all.is_empty() {
        "nothing".to_owned()
    } else {
        all.join(", ")
    }
}
