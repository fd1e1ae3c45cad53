//! A certificate the cluster issued, checked before systemk uses it: it parses, it is for
//! the key systemk made, its subject is exactly the `CN=system:node:<node>`,
//! `O=system:nodes` that was asked for, it allows the usage it is for (client or server
//! auth), and it has not expired. A server that answers a request with a certificate for
//! another node or another key is refused, never installed. The same checks apply to a
//! certificate read back from the certificate directory at start. Pure: the time comes
//! in. Layer 5.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::csr::{NODES_GROUP, Signer, Template};
use crate::sources::{Error, Result};

/// A checked certificate with its key.
#[derive(Clone)]
pub struct Issued {
    /// The certificate chain (PEM, leaf first), as the signer returned it.
    pub cert_pem: String,
    /// The private key (PEM); never logged.
    pub key_pem: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// When systemk received it; `None` for one read back from disk.
    pub received: Option<Timestamp>,
    /// The chain and key as rustls uses them.
    pub certified: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Issued")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// Checks `cert_pem` (leaf first) against the key `key_pem` and `template` at `now`.
    pub fn check(
        cert_pem: &str,
        key_pem: &str,
        template: &Template,
        now: Timestamp,
    ) -> Result<Issued> {
        let what = template.signer.what();
        let invalid = |problem: String| Error::Certificate {
            what: what.to_owned(),
            problem,
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid(format!("not PEM certificates: {err}")))?;
        let leaf = chain
            .first()
            .ok_or_else(|| invalid("no certificate in the answer".to_owned()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|err| invalid(format!("unreadable private key: {err}")))?;
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(chain.clone(), key, &provider)
            .map_err(|err| invalid(format!("unusable with its key: {err}")))?;
        // `from_der` lets an undecidable comparison pass; here only a proven match does.
        certified
            .keys_match()
            .map_err(|err| invalid(format!("not for the key systemk made: {err}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|err| invalid(format!("does not parse: {err}")))?;
        let subject = cert.subject();
        let common_names: Vec<&str> = subject
            .iter_common_name()
            .filter_map(|name| name.as_str().ok())
            .collect();
        let organizations: Vec<&str> = subject
            .iter_organization()
            .filter_map(|name| name.as_str().ok())
            .collect();
        let expected_cn = template.common_name();
        if common_names != [expected_cn.as_str()] || organizations != [NODES_GROUP] {
            return Err(invalid(format!(
                "issued for CN={common_names:?} O={organizations:?}, not CN={expected_cn} O={NODES_GROUP}"
            )));
        }
        let usage = cert
            .extended_key_usage()
            .map_err(|err| invalid(format!("unreadable extended key usage: {err}")))?;
        let allowed = usage.is_some_and(|ext| match template.signer {
            Signer::KubeletClient => ext.value.client_auth || ext.value.any,
            Signer::KubeletServing => ext.value.server_auth || ext.value.any,
        });
        if !allowed {
            return Err(invalid(format!(
                "its extended key usage does not allow {}",
                match template.signer {
                    Signer::KubeletClient => "client auth",
                    Signer::KubeletServing => "server auth",
                }
            )));
        }
        let validity = cert.validity();
        let not_before = Timestamp::from_second(validity.not_before.timestamp())
            .map_err(|err| invalid(format!("notBefore out of range: {err}")))?;
        let not_after = Timestamp::from_second(validity.not_after.timestamp())
            .map_err(|err| invalid(format!("notAfter out of range: {err}")))?;
        if now >= not_after {
            return Err(invalid(format!("expired at {not_after}")));
        }
        Ok(Issued {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            not_before,
            not_after,
            received: None,
            certified: Arc::new(certified),
        })
    }

    /// Reads a certificate file as systemk writes it ([`Issued::file_pem`]: certificates,
    /// then the key) and checks it.
    pub fn from_file_pem(pem: &str, template: &Template, now: Timestamp) -> Result<Issued> {
        let (certs, key) = split_pem(pem);
        Issued::check(&certs, &key, template, now)
    }

    /// The one-file form the kubelet keeps (`kubelet-client-current.pem`): certificates,
    /// then the key. The file holds a key: mode 0600.
    pub fn file_pem(&self) -> String {
        let mut pem = self.cert_pem.trim_end().to_owned();
        pem.push('\n');
        pem.push_str(self.key_pem.trim_end());
        pem.push('\n');
        pem
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        now >= self.not_after
    }
}

/// The certificate blocks and the key block of one PEM file.
fn split_pem(pem: &str) -> (String, String) {
    let mut certs = String::new();
    let mut key = String::new();
    let mut current: Option<&mut String> = None;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN ") {
            current = Some(if line.contains("PRIVATE KEY") {
                &mut key
            } else {
                &mut certs
            });
        }
        if let Some(target) = current.as_deref_mut() {
            target.push_str(line);
            target.push('\n');
        }
        if line.starts_with("-----END ") {
            current = None;
        }
    }
    (certs, key)
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    use super::super::csr::generate;
    use super::*;

    /// A test cluster CA that signs requests the way a signer would, or with a twist.
    pub(crate) struct TestCa {
        key: KeyPair,
        params: CertificateParams,
    }

    impl TestCa {
        pub(crate) fn new() -> Self {
            let mut params = CertificateParams::default();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, "test-ca");
            Self {
                key: KeyPair::generate().unwrap(),
                params,
            }
        }

        /// Signs the public key of `key_pem` for `cn` (with `O=system:nodes`) and the
        /// SANs of `template`, valid from `valid.0` seconds ago to `valid.1` seconds
        /// from now (real clock).
        pub(crate) fn sign(
            &self,
            key_pem: &str,
            template: &Template,
            cn: &str,
            valid: (i64, i64),
        ) -> String {
            let public = KeyPair::from_pem(key_pem).unwrap();
            let mut params = CertificateParams::new(template.dns_names.clone()).unwrap();
            params
                .subject_alt_names
                .extend(template.ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
            let usage = match template.signer {
                Signer::KubeletClient => ExtendedKeyUsagePurpose::ClientAuth,
                Signer::KubeletServing => ExtendedKeyUsagePurpose::ServerAuth,
            };
            params
                .distinguished_name
                .push(DnType::OrganizationName, NODES_GROUP);
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
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
            let issuer = Issuer::from_params(&self.params, &self.key);
            params.signed_by(&public, &issuer).unwrap().pem()
        }
    }

    /// A request for `template` signed by a fresh CA: (certificate, key).
    pub(crate) fn issued_pair(template: &Template, valid: (i64, i64)) -> (String, String) {
        let request = generate(template).unwrap();
        let cert = TestCa::new().sign(&request.key_pem, template, &template.common_name(), valid);
        (cert, request.key_pem)
    }

    #[test]
    fn a_proper_certificate_is_accepted_and_round_trips_through_its_file() {
        let template = Template::client("node-a");
        let (cert, key) = issued_pair(&template, (300, 3600));
        let issued = Issued::check(&cert, &key, &template, crate::clock::now()).unwrap();
        assert!(issued.not_after > issued.not_before);
        let again =
            Issued::from_file_pem(&issued.file_pem(), &template, crate::clock::now()).unwrap();
        assert_eq!(again.cert_pem.trim(), issued.cert_pem.trim());
        assert!(!format!("{issued:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_certificate_for_another_node_is_refused() {
        let template = Template::client("node-a");
        let request = generate(&template).unwrap();
        let ca = TestCa::new();
        let cert = ca.sign(
            &request.key_pem,
            &template,
            "system:node:node-b",
            (300, 3600),
        );
        let err = Issued::check(&cert, &request.key_pem, &template, crate::clock::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("node-b"), "{err}");
    }

    #[test]
    fn a_certificate_for_another_key_is_refused() {
        let template = Template::client("node-a");
        let (cert, _) = issued_pair(&template, (300, 3600));
        let other_key = generate(&template).unwrap().key_pem;
        let err = Issued::check(&cert, &other_key, &template, crate::clock::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("key"), "{err}");
    }

    #[test]
    fn an_expired_or_wrong_usage_certificate_is_refused() {
        let template = Template::client("node-a");
        let (cert, key) = issued_pair(&template, (3600, -60));
        let err = Issued::check(&cert, &key, &template, crate::clock::now()).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        let serving = Template::serving("node-a", &["node-a".into()], &[]);
        let (cert, key) = issued_pair(&serving, (300, 3600));
        // A serving certificate is no client certificate.
        let err = Issued::check(&cert, &key, &template, crate::clock::now()).unwrap_err();
        assert!(err.to_string().contains("client auth"), "{err}");
        Issued::check(&cert, &key, &serving, crate::clock::now()).unwrap();
    }
}
