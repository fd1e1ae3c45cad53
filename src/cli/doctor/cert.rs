//! What `systemk doctor` reads from a PEM certificate (and the key beside it): subject,
//! issuer, validity, SANs, serial, and whether the key belongs to it. Unlike the agent's
//! check (`Issued::check`), nothing here refuses: a certificate that is expired or for
//! another node still yields its facts so the report can say what is wrong. Garbage,
//! truncated PEM or a key that does not match give an error text, never a panic; and how
//! a certificate's validity and renewal window read. Pure.

use std::net::IpAddr;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;

use super::report::Status;
use crate::sources::kube::certificates::rotation::rotation_deadline;

/// The facts of a certificate's leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// Subject common names.
    pub common_names: Vec<String>,
    /// Subject organisations.
    pub organizations: Vec<String>,
    /// The issuer, as `CN=…` (or the whole name when it has no CN).
    pub issuer: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// The serial number (hex).
    pub serial: String,
}

impl CertFacts {
    /// `CN=<names> O=<organisations>`.
    pub fn subject(&self) -> String {
        let mut subject = format!("CN={}", self.common_names.join(","));
        if !self.organizations.is_empty() {
            subject.push_str(&format!(" O={}", self.organizations.join(",")));
        }
        subject
    }
}

/// Reads the first certificate of `pem`.
pub fn cert_facts(pem: &[u8]) -> Result<CertFacts, String> {
    let der = first_cert(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|err| format!("the certificate does not parse: {err}"))?;
    let names = |name: &x509_parser::x509::X509Name<'_>, organizations: bool| -> Vec<String> {
        let iter: Box<dyn Iterator<Item = _>> = if organizations {
            Box::new(name.iter_organization())
        } else {
            Box::new(name.iter_common_name())
        };
        iter.filter_map(|value| value.as_str().ok().map(str::to_owned))
            .collect()
    };
    let issuer_cns = names(cert.issuer(), false);
    let issuer = if issuer_cns.is_empty() {
        cert.issuer().to_string()
    } else {
        format!("CN={}", issuer_cns.join(","))
    };
    let time = |seconds: i64| {
        Timestamp::from_second(seconds).map_err(|err| format!("validity out of range: {err}"))
    };
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns_names.push((*name).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                        ips.push(IpAddr::from(octets));
                    } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                        ips.push(IpAddr::from(octets));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertFacts {
        common_names: names(cert.subject(), false),
        organizations: names(cert.subject(), true),
        issuer,
        not_before: time(cert.validity().not_before.timestamp())?,
        not_after: time(cert.validity().not_after.timestamp())?,
        dns_names,
        ips,
        serial: cert.raw_serial_as_string(),
    })
}

/// Checks that the private key in `key_pem` belongs to the first certificate of
/// `cert_pem` (they may be the same file, as the kubelet keeps its own).
pub fn key_matches(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not PEM: {err}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|err| format!("no readable private key: {err}"))?;
    let provider = rustls::crypto::ring::default_provider();
    // `from_der` already compares the keys when it can.
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|err| format!("the key does not belong to the certificate: {err}"))?;
    certified
        .keys_match()
        .map_err(|err| format!("the key does not belong to the certificate: {err}"))
}

fn first_cert(pem: &[u8]) -> Result<CertificateDer<'static>, String> {
    match CertificateDer::pem_slice_iter(pem).next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(err)) => Err(format!("not PEM: {err}")),
        None => Err("no PEM certificate in it".to_owned()),
    }
}

/// `<path>: <subject>, issuer …, valid from … to … (… left)`, with the renewal window
/// when systemk renews it (`renewed`: when the agent received it, i.e. wrote its file);
/// WARN when the renewal is overdue.
pub fn validity_text(
    path: &str,
    facts: &CertFacts,
    now: Timestamp,
    renewed: Option<Option<Timestamp>>,
) -> (Status, String) {
    let mut message = format!(
        "{path}: {}, issuer {}, valid {} to {} ({} left)",
        facts.subject(),
        facts.issuer,
        facts.not_before,
        facts.not_after,
        span(facts.not_after.duration_since(now))
    );
    let Some(received) = renewed else {
        return (Status::Ok, message);
    };
    // As the agent counts it: from the arrival when that is later than notBefore.
    let earliest = rotation_deadline(facts.not_before, facts.not_after, received, 0.0);
    let latest = rotation_deadline(facts.not_before, facts.not_after, received, 1.0);
    if now > latest {
        message.push_str(&format!(
            "; renewal overdue since {latest} (due between {earliest} and {latest}): is the agent running, and may it create CSRs?"
        ));
        return (Status::Warn, message);
    }
    message.push_str(&format!("; renewal due between {earliest} and {latest}"));
    (Status::Ok, message)
}

/// A duration as `3d4h`, `5h12m`, `4m10s` or `12s` (negative ones as zero).
pub fn span(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{minutes}m{secs}s"),
        (0, _, _) => format!("{hours}h{minutes}m"),
        _ => format!("{days}d{hours}h"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    /// A self-signed certificate for `cn`/`o` with SANs, valid from `valid.0` seconds
    /// ago to `valid.1` seconds from now: (certificate PEM, key PEM).
    pub(crate) fn cert(
        cn: &str,
        o: Option<&str>,
        dns: &[&str],
        ips: &[&str],
        valid: (i64, i64),
    ) -> (String, String) {
        let mut params =
            CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(ip.parse().unwrap())));
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(o) = o {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        let now = std::time::SystemTime::now();
        let at = |offset: i64| {
            let delta = std::time::Duration::from_secs(offset.unsigned_abs());
            if offset >= 0 {
                now + delta
            } else {
                now - delta
            }
        };
        params.not_before = at(-valid.0).into();
        params.not_after = at(valid.1).into();
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn facts_of_a_node_certificate() {
        let (pem, key) = cert(
            "system:node:a",
            Some("system:nodes"),
            &["a"],
            &["10.0.0.7"],
            (60, 3600),
        );
        let facts = cert_facts(pem.as_bytes()).unwrap();
        assert_eq!(facts.subject(), "CN=system:node:a O=system:nodes");
        assert_eq!(facts.issuer, "CN=system:node:a");
        assert_eq!(facts.dns_names, ["a"]);
        assert_eq!(facts.ips, ["10.0.0.7".parse::<IpAddr>().unwrap()]);
        assert!(facts.not_after > facts.not_before);
        assert!(!facts.serial.is_empty());
        let file = format!("{pem}{key}");
        key_matches(file.as_bytes(), file.as_bytes()).unwrap();
        let (_, other_key) = cert("x", None, &[], &[], (0, 60));
        let err = key_matches(pem.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(err.contains("does not belong"), "{err}");
    }

    #[test]
    fn garbage_and_truncated_pem_are_errors_not_panics() {
        let (pem, key) = cert("n", None, &[], &[], (0, 60));
        assert!(cert_facts(b"").unwrap_err().contains("no PEM"));
        assert!(cert_facts(b"\x00\xffgarbage").is_err());
        let truncated = &pem.as_bytes()[..pem.len() / 2];
        assert!(cert_facts(truncated).is_err());
        let broken_body = pem.replace('M', "*");
        assert!(cert_facts(broken_body.as_bytes()).is_err());
        assert!(key_matches(pem.as_bytes(), b"").is_err());
        assert!(key_matches(pem.as_bytes(), &key.as_bytes()[..40]).is_err());
    }
}
