//! Asking the cluster for a certificate: create a CertificateSigningRequest for a fresh
//! key (`generateName: csr-`, as the kubelet), then watch that CSR by name until it is
//! approved and carries `status.certificate`, is denied or failed, or the wait runs out.
//! The certificate is checked ([`Issued::check`]) before it is returned. Progress is
//! logged (created, still pending with the `kubectl certificate approve` line, issued),
//! never the key. Layer 5.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};

use super::csr::{Template, generate};
use super::issued::Issued;
use crate::sources::{Error, Result};

/// How long one request waits for approval and signing: client-go's certificate manager
/// waits 15 minutes (`certificateWaitTimeout`) before trying again.
pub const CERTIFICATE_WAIT: Duration = Duration::from_secs(15 * 60);

/// How often a pending request is logged again while it waits.
const PENDING_LOG_EVERY: Duration = Duration::from_secs(60);

/// Creates a CSR for `template` with `client`, waits up to `wait` for its certificate and
/// returns it checked. `hint` is appended to the timeout error (what an operator can do).
pub async fn request_certificate(
    client: &Client,
    template: &Template,
    wait: Duration,
    hint: &'static str,
) -> Result<Issued> {
    let pending = create(client, template).await?;
    wait_for_issue(client, pending, template, wait, hint).await
}

/// A created CSR whose certificate has not come yet.
pub struct Pending {
    /// The CSR's name.
    pub name: String,
    /// The key it is for (PEM); never logged.
    key_pem: String,
}

/// Creates a CSR for `template` (a fresh key) with `client`.
pub async fn create(client: &Client, template: &Template) -> Result<Pending> {
    let new = generate(template)?;
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".to_owned()),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(new.csr_pem.into_bytes()),
            signer_name: template.signer.name().to_owned(),
            usages: Some(template.signer.usages().map(str::to_owned).to_vec()),
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    };
    let what = format!("a {} request", template.signer.what());
    let created = super::super::bounded("create", &what, async {
        api.create(&PostParams::default(), &csr)
            .await
            .map_err(Error::api("create", what.clone()))
    })
    .await?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::info!(csr = %name, signer = template.signer.name(), node = %template.node_name,
        "created a certificate signing request; waiting for approval");
    Ok(Pending {
        name,
        key_pem: new.key_pem,
    })
}

/// Waits up to `wait` for the certificate of `pending` and returns it checked.
pub async fn wait_for_issue(
    client: &Client,
    pending: Pending,
    template: &Template,
    wait: Duration,
    hint: &'static str,
) -> Result<Issued> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let name = pending.name;
    let cert_pem = wait_for_certificate(&api, &name, wait, template, hint).await?;
    let mut issued = Issued::check(&cert_pem, &pending.key_pem, template, crate::clock::now())?;
    issued.received = Some(crate::clock::now());
    tracing::info!(csr = %name, what = template.signer.what(), not_after = %issued.not_after,
        "certificate issued");
    Ok(issued)
}

/// What a CSR's status says.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Approved and signed: the certificate (PEM).
    Issued(String),
    /// `Denied` or `Failed`, with the reason and message.
    Refused(&'static str, String),
    /// Not decided or not signed yet.
    Pending,
}

/// Reads the outcome from a CSR's status, as client-go's `WaitForCertificate`: denied or
/// failed ends the wait; approved with a certificate is done.
fn outcome(csr: &CertificateSigningRequest) -> Outcome {
    let Some(status) = &csr.status else {
        return Outcome::Pending;
    };
    for condition in status.conditions.iter().flatten() {
        let outcome = match condition.type_.as_str() {
            "Denied" => "denied",
            "Failed" => "failed",
            _ => continue,
        };
        if condition.status == "True" || condition.status.is_empty() {
            let reason = format!(
                "{} {}",
                condition.reason.as_deref().unwrap_or(""),
                condition.message.as_deref().unwrap_or("")
            );
            return Outcome::Refused(outcome, reason.trim().to_owned());
        }
    }
    let approved = status.conditions.iter().flatten().any(|condition| {
        condition.type_ == "Approved" && (condition.status == "True" || condition.status.is_empty())
    });
    match &status.certificate {
        Some(cert) if approved && !cert.0.is_empty() => {
            Outcome::Issued(String::from_utf8_lossy(&cert.0).into_owned())
        }
        _ => Outcome::Pending,
    }
}

async fn wait_for_certificate(
    api: &Api<CertificateSigningRequest>,
    name: &str,
    wait: Duration,
    template: &Template,
    hint: &'static str,
) -> Result<String> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(api.clone(), config)
        .default_backoff()
        .boxed();
    let deadline = tokio::time::Instant::now() + wait;
    let mut pending_log = tokio::time::interval(PENDING_LOG_EVERY);
    pending_log.tick().await;
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = pending_log.tick() => {
                tracing::warn!(csr = %name, signer = template.signer.name(),
                    "certificate signing request still waits for approval (kubectl certificate approve {name})");
                continue;
            }
            () = tokio::time::sleep_until(deadline) => None,
        };
        let csrs = match event {
            None => {
                return Err(Error::CsrNotIssued {
                    name: name.to_owned(),
                    waited: wait,
                    hint,
                });
            }
            Some(Err(err)) => {
                tracing::warn!(csr = %name, error = %crate::error_chain::Chain(&err),
                    "cannot watch the certificate signing request; retrying");
                continue;
            }
            Some(Ok(Event::Apply(csr) | Event::InitApply(csr))) => vec![csr],
            Some(Ok(_)) => continue,
        };
        // Whatever the server does with the field selector, only this CSR counts.
        for csr in csrs
            .iter()
            .filter(|csr| csr.metadata.name.as_deref() == Some(name))
        {
            match outcome(csr) {
                Outcome::Issued(pem) => return Ok(pem),
                Outcome::Refused(outcome, reason) => {
                    return Err(Error::CsrRefused {
                        name: name.to_owned(),
                        outcome,
                        reason,
                    });
                }
                Outcome::Pending => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestStatus,
    };

    use super::*;

    fn csr(conditions: &[(&str, &str)], certificate: Option<&str>) -> CertificateSigningRequest {
        CertificateSigningRequest {
            status: Some(CertificateSigningRequestStatus {
                certificate: certificate.map(|c| ByteString(c.as_bytes().to_vec())),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(type_, status)| CertificateSigningRequestCondition {
                            type_: (*type_).to_owned(),
                            status: (*status).to_owned(),
                            reason: Some("Because".to_owned()),
                            ..CertificateSigningRequestCondition::default()
                        })
                        .collect(),
                ),
            }),
            ..CertificateSigningRequest::default()
        }
    }

    #[test]
    fn outcome_follows_the_conditions() {
        assert_eq!(
            outcome(&CertificateSigningRequest::default()),
            Outcome::Pending
        );
        assert_eq!(
            outcome(&csr(&[("Approved", "True")], None)),
            Outcome::Pending
        );
        assert_eq!(outcome(&csr(&[], Some("PEM"))), Outcome::Pending);
        assert_eq!(
            outcome(&csr(&[("Approved", "True")], Some("PEM"))),
            Outcome::Issued("PEM".into())
        );
        assert_eq!(
            outcome(&csr(&[("Denied", "True")], None)),
            Outcome::Refused("denied", "Because".into())
        );
        assert_eq!(
            outcome(&csr(
                &[("Approved", "True"), ("Failed", "True")],
                Some("PEM")
            )),
            Outcome::Refused("failed", "Because".into())
        );
        assert_eq!(
            outcome(&csr(&[("Approved", "False")], Some("PEM"))),
            Outcome::Pending
        );
    }
}
