//! The checks of `systemk doctor` over what was found ([`Inputs`]): the kubeconfig, the
//! bootstrap kubeconfig, the client certificate; the serving certificate is in
//! [`super::serving`]. Each check is a plain function of the data and the time; nothing
//! here reads a file or asks a server. Layer: top (cli).

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

use super::cert::{cert_facts, key_matches, span, validity_text};
use super::facts::{
    Credentials, FileFacts, FileProblem, KubeconfigSummary, OnlineAnswer, is_bootstrap_token,
    key_file_warnings, mode_text, problem_text, summarize_kubeconfig,
};
use super::report::{Check, Status};
use super::serving::{ServingInput, serving_check};
use crate::sources::kube::certificates::record::CertificateStatus;

/// What to do when the bootstrap token no longer works (README, "Join with a bootstrap
/// token").
pub const NEW_TOKEN_HINT: &str = "create a new bootstrap token on a machine with the admin kubeconfig (kubeadm token create, or k3s token create), write it as the token of the bootstrap kubeconfig, then systemctl restart systemk";

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The node's name.
    pub node_name: String,
    /// Now.
    pub now: Timestamp,
    /// The certificate directory, resolved (`--cert-dir`).
    pub cert_dir: PathBuf,
    /// The kubeconfig the agent joins with; `None`: none, static pods only.
    pub kubeconfig: Option<KubeconfigInput>,
    /// The bootstrap kubeconfig, with `--bootstrap-kubeconfig`.
    pub bootstrap: Option<BootstrapInput>,
    /// The client certificate file in use, when the node has one.
    pub client_cert: Option<ClientCertInput>,
    /// The kubelet API's serving certificate.
    pub serving: ServingInput,
    /// What the agent recorded; `Err` when the record is unreadable.
    pub record: Result<Option<CertificateStatus>, String>,
}

/// The node's kubeconfig.
#[derive(Debug, Clone)]
pub struct KubeconfigInput {
    /// The file.
    pub file: FileFacts,
    /// Written by the agent at TLS bootstrap (missing until then).
    pub from_bootstrap: bool,
}

/// The bootstrap kubeconfig.
#[derive(Debug, Clone)]
pub struct BootstrapInput {
    /// The file.
    pub file: FileFacts,
    /// The token file its user names, read.
    pub token_file: Option<FileFacts>,
    /// The API server's answer to the token (`--online`).
    pub online: Option<OnlineAnswer>,
}

/// The client certificate in use.
#[derive(Debug, Clone)]
pub struct ClientCertInput {
    /// The certificate file (and key, under TLS bootstrap).
    pub file: FileFacts,
    /// Kept by the agent (TLS bootstrap): then it must be for `system:node:<node>` with
    /// its key in the same file, in the certificate directory.
    pub bootstrapped: bool,
}

/// All checks, in the order they print.
pub fn run(inputs: &Inputs) -> Vec<Check> {
    let record = inputs.record.as_ref().ok().cloned().flatten();
    let token = inputs
        .bootstrap
        .as_ref()
        .map(|bootstrap| token_use(bootstrap, record.as_ref()));
    let (client, client_state) = client_check(inputs, token.as_ref());
    let mut checks = vec![kubeconfig_check(inputs, token.as_ref())];
    checks.push(bootstrap_check(
        inputs.bootstrap.as_ref(),
        token.as_ref(),
        client_state,
        record.as_ref(),
    ));
    checks.push(client);
    checks.push(serving_check(
        &inputs.serving,
        &inputs.node_name,
        record.as_ref(),
        inputs.now,
    ));
    if let Err(err) = &inputs.record {
        checks.push(Check::new(
            "agent record",
            Status::Warn,
            format!("cannot read what the agent recorded: {err}"),
        ));
    }
    checks
}

/// Whether the bootstrap token can still get a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUse {
    /// The API server accepted it (`--online`).
    Accepted,
    /// It cannot: why.
    Refused(String),
    /// Unknown without asking the API server; the token's description.
    Unknown(String),
}

/// How the client certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    /// Valid now.
    Valid,
    /// Not there, expired or unusable: the node cannot authenticate with it.
    Unusable,
    /// None is used (token kubeconfig, or no cluster).
    NotUsed,
}

fn kubeconfig_check(inputs: &Inputs, token: Option<&TokenUse>) -> Check {
    const NAME: &str = "kubeconfig";
    let Some(input) = &inputs.kubeconfig else {
        return Check::new(
            NAME,
            Status::Ok,
            "none (--kubeconfig, $KUBECONFIG, ~/.kube/config): the node runs static pods only",
        );
    };
    let path = input.file.path.display();
    let text = match &input.file.content {
        Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Err(FileProblem::Missing) if input.from_bootstrap => {
            let status = match token {
                Some(TokenUse::Refused(_)) => Status::Fail,
                _ => Status::Warn,
            };
            return Check::new(
                NAME,
                status,
                format!("{path} is not written yet: the agent writes it at TLS bootstrap"),
            );
        }
        Err(problem) => {
            return Check::new(
                NAME,
                Status::Fail,
                format!("{path}: {}", problem_text(problem)),
            );
        }
    };
    let dir = input.file.path.parent().unwrap_or(Path::new("/"));
    let summary = match summarize_kubeconfig(&text, dir) {
        Ok(summary) => summary,
        Err(err) => return Check::new(NAME, Status::Fail, format!("{path}: {err}")),
    };
    let KubeconfigSummary {
        server,
        credentials,
    } = summary;
    let server = server.unwrap_or_else(|| "no server".to_owned());
    let (status, uses) = match &credentials {
        Credentials::ClientCertificate(Some(file)) => {
            let expected = inputs.client_cert.as_ref().map(|cert| &cert.file.path);
            match expected {
                Some(expected) if input.from_bootstrap && expected != file => (
                    Status::Warn,
                    format!(
                        "the client certificate {} (TLS bootstrap keeps {})",
                        file.display(),
                        expected.display()
                    ),
                ),
                _ => (
                    Status::Ok,
                    format!("the client certificate {}", file.display()),
                ),
            }
        }
        Credentials::ClientCertificate(None) => {
            (Status::Ok, "a client certificate written in it".to_owned())
        }
        Credentials::Token(_) => (Status::Ok, "a bearer token written in it".to_owned()),
        Credentials::TokenFile(file) => (
            Status::Ok,
            format!("a bearer token from {}", file.display()),
        ),
        Credentials::Other(kind) => (Status::Ok, (*kind).to_owned()),
        Credentials::None => (
            Status::Fail,
            "no credentials: the API server sees an anonymous node".to_owned(),
        ),
    };
    let mut message = format!("{path}: server {server}, authenticates with {uses}");
    if matches!(credentials, Credentials::Token(_)) && input.file.open_to_others().is_some() {
        return Check::new(
            NAME,
            Status::Warn,
            format!(
                "{message}; it holds a token but others may read it ({}): chmod 0600",
                mode_text(input.file.mode)
            ),
        );
    }
    if input.from_bootstrap {
        message.push_str(" (written by TLS bootstrap)");
    }
    Check::new(NAME, status, message)
}

/// Whether the bootstrap kubeconfig's token can still get a certificate, as far as can
/// be known: the API server's answer (`--online`), else a 401 the agent recorded.
pub fn token_use(bootstrap: &BootstrapInput, record: Option<&CertificateStatus>) -> TokenUse {
    let path = bootstrap.file.path.display();
    let text = match &bootstrap.file.content {
        Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Err(problem) => return TokenUse::Refused(format!("{path}: {}", problem_text(problem))),
    };
    let dir = bootstrap.file.path.parent().unwrap_or(Path::new("/"));
    let summary = match summarize_kubeconfig(&text, dir) {
        Ok(summary) => summary,
        Err(err) => return TokenUse::Refused(format!("{path}: {err}")),
    };
    let token = match &summary.credentials {
        Credentials::Token(token) => token.trim().to_owned(),
        Credentials::TokenFile(file) => match bootstrap.token_file.as_ref().map(|f| &f.content) {
            Some(Ok(bytes)) => String::from_utf8_lossy(bytes).trim().to_owned(),
            Some(Err(problem)) => {
                return TokenUse::Refused(format!(
                    "token file {}: {}",
                    file.display(),
                    problem_text(problem)
                ));
            }
            None => String::new(),
        },
        Credentials::None => return TokenUse::Refused(format!("{path} has no credentials")),
        Credentials::ClientCertificate(_) | Credentials::Other(_) => String::new(),
    };
    let described = if token.is_empty() {
        "credentials other than a token".to_owned()
    } else if is_bootstrap_token(&token) {
        // Only the public id: the secret is never printed.
        format!(
            "bootstrap token {}.<secret>",
            token.split('.').next().unwrap_or_default()
        )
    } else {
        "a token that is not a bootstrap token (<6 chars>.<16 chars>, lower case and digits)"
            .to_owned()
    };
    match &bootstrap.online {
        Some(OnlineAnswer::Accepted) => return TokenUse::Accepted,
        Some(OnlineAnswer::Forbidden(_)) => return TokenUse::Accepted,
        Some(OnlineAnswer::Unauthorized) => {
            return TokenUse::Refused(format!(
                "the API server refuses its {described}: 401 Unauthorized (expired, deleted or wrong)"
            ));
        }
        Some(OnlineAnswer::Unreachable(_)) | None => {}
    }
    match record.and_then(|record| record.bootstrap_failure.as_ref()) {
        Some(failure) if failure.unauthorized => TokenUse::Refused(format!(
            "the API server refused its {described} (401 Unauthorized) when the agent last bootstrapped, at {}",
            failure.at
        )),
        _ => TokenUse::Unknown(described),
    }
}

fn bootstrap_check(
    bootstrap: Option<&BootstrapInput>,
    token: Option<&TokenUse>,
    client: CertState,
    record: Option<&CertificateStatus>,
) -> Check {
    const NAME: &str = "bootstrap kubeconfig";
    let (Some(bootstrap), Some(token)) = (bootstrap, token) else {
        return Check::new(
            NAME,
            Status::Ok,
            "not configured (--bootstrap-kubeconfig): systemk neither bootstraps nor renews a client certificate",
        );
    };
    let path = bootstrap.file.path.display();
    let failure = record
        .and_then(|record| record.bootstrap_failure.as_ref())
        .map(|failure| {
            format!(
                "; the last bootstrap failed at {}: {}",
                failure.at, failure.reason
            )
        })
        .unwrap_or_default();
    let mut message = match token {
        TokenUse::Accepted => format!("{path}: the API server accepts its token"),
        TokenUse::Refused(why) => {
            format!("{why}; the node cannot bootstrap: {NEW_TOKEN_HINT}{failure}")
        }
        TokenUse::Unknown(described) => format!(
            "{path}: {described}; whether the API server still accepts it cannot be known without asking it (systemk doctor --online){failure}"
        ),
    };
    let mut status = match (token, client) {
        (TokenUse::Refused(_), CertState::Unusable) => Status::Fail,
        (TokenUse::Refused(_), _) => Status::Warn,
        (TokenUse::Unknown(described), _) if !described.starts_with("bootstrap token") => {
            Status::Warn
        }
        (TokenUse::Unknown(_), _) if !failure.is_empty() => Status::Warn,
        _ => Status::Ok,
    };
    if let Some(OnlineAnswer::Unreachable(err)) = &bootstrap.online {
        message.push_str(&format!("; --online could not ask the API server: {err}"));
        status = status.max(Status::Warn);
    }
    if let Some(mode) = bootstrap.file.open_to_others() {
        message.push_str(&format!(
            "; it holds a token but others may read it ({}): chmod 0600",
            mode_text(Some(mode))
        ));
        status = status.max(Status::Warn);
    }
    Check::new(NAME, status, message)
}

fn client_check(inputs: &Inputs, token: Option<&TokenUse>) -> (Check, CertState) {
    const NAME: &str = "client certificate";
    let Some(input) = &inputs.client_cert else {
        let why = if inputs.kubeconfig.is_some() {
            "not used: the kubeconfig authenticates otherwise"
        } else {
            "not used: no cluster"
        };
        return (Check::new(NAME, Status::Ok, why), CertState::NotUsed);
    };
    let path = input.file.path.display();
    // What happens when the node has no usable certificate.
    let recovery = |what: String| -> (Check, CertState) {
        let check = match token {
            _ if !input.bootstrapped => Check::new(
                NAME,
                Status::Fail,
                format!("{what}; renew it (no --bootstrap-kubeconfig)"),
            ),
            Some(TokenUse::Refused(why)) => Check::new(
                NAME,
                Status::Fail,
                format!(
                    "{what}, and the bootstrap token cannot get a new one ({why}): the node cannot reach the cluster; {NEW_TOKEN_HINT}"
                ),
            ),
            Some(TokenUse::Accepted) => Check::new(
                NAME,
                Status::Warn,
                format!(
                    "{what}; the agent bootstraps a new one with the bootstrap kubeconfig, whose token the API server accepts"
                ),
            ),
            _ => Check::new(
                NAME,
                Status::Fail,
                format!(
                    "{what}; the agent bootstraps a new one only if the API server still accepts the bootstrap token (check: systemk doctor --online)"
                ),
            ),
        };
        (check, CertState::Unusable)
    };
    let pem = match &input.file.content {
        Ok(pem) => pem,
        Err(problem) => return recovery(format!("{path}: {}", problem_text(problem))),
    };
    let facts = match cert_facts(pem) {
        Ok(facts) => facts,
        Err(err) => return recovery(format!("{path}: {err}")),
    };
    let expected = format!("system:node:{}", inputs.node_name);
    if input.bootstrapped {
        if facts.common_names != [expected.as_str()] {
            return recovery(format!(
                "{path} is for {}, not {expected}: the agent will not use it",
                facts.subject()
            ));
        }
        if let Err(err) = key_matches(pem, pem) {
            return recovery(format!("{path}: {err}"));
        }
    }
    if inputs.now >= facts.not_after {
        return recovery(format!(
            "{path} ({}) expired at {} ({} ago)",
            facts.subject(),
            facts.not_after,
            span(inputs.now.duration_since(facts.not_after))
        ));
    }
    let (mut status, mut message) = validity_text(
        &path.to_string(),
        &facts,
        inputs.now,
        input.bootstrapped.then_some(input.file.modified),
    );
    if input.bootstrapped {
        for warning in key_file_warnings(&input.file, &inputs.cert_dir) {
            message.push_str("; ");
            message.push_str(&warning);
            status = status.max(Status::Warn);
        }
    }
    (Check::new(NAME, status, message), CertState::Valid)
}
