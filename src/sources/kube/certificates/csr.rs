//! Building a node's CertificateSigningRequest: a fresh ECDSA P-256 key and the PKCS#10
//! request the kubelet sends, for the client signer
//! (`kubernetes.io/kube-apiserver-client-kubelet`) or the serving signer
//! (`kubernetes.io/kubelet-serving`), with `CN=system:node:<node>`, `O=system:nodes`, the
//! serving SANs, and the usages the kubelet asks for (pkg/kubelet/certificate: digital
//! signature plus client or server auth; key encipherment only for RSA keys, which
//! systemk never makes). Pure apart from the key's randomness: no I/O. Layer 5.

use std::net::IpAddr;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

use crate::sources::{Error, Result};

/// The group every node certificate carries as its organisation.
pub const NODES_GROUP: &str = "system:nodes";

/// Which signer a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// Client certificates of kubelets (`kubernetes.io/kube-apiserver-client-kubelet`).
    KubeletClient,
    /// Serving certificates of kubelets (`kubernetes.io/kubelet-serving`).
    KubeletServing,
}

impl Signer {
    /// The signer's name in `spec.signerName`.
    pub fn name(self) -> &'static str {
        match self {
            Signer::KubeletClient => "kubernetes.io/kube-apiserver-client-kubelet",
            Signer::KubeletServing => "kubernetes.io/kubelet-serving",
        }
    }

    /// `spec.usages` for an ECDSA key, as the kubelet asks for them.
    pub fn usages(self) -> [&'static str; 2] {
        match self {
            Signer::KubeletClient => ["digital signature", "client auth"],
            Signer::KubeletServing => ["digital signature", "server auth"],
        }
    }

    /// What the certificate is called in logs and errors.
    pub fn what(self) -> &'static str {
        match self {
            Signer::KubeletClient => "client certificate",
            Signer::KubeletServing => "serving certificate",
        }
    }
}

/// What a certificate must say: its signer, node, and (serving only) names and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The signer.
    pub signer: Signer,
    /// The node's name.
    pub node_name: String,
    /// DNS SANs (serving only).
    pub dns_names: Vec<String>,
    /// IP SANs (serving only).
    pub ips: Vec<IpAddr>,
}

impl Template {
    /// The node's client certificate.
    pub fn client(node_name: &str) -> Self {
        Self {
            signer: Signer::KubeletClient,
            node_name: node_name.to_owned(),
            dns_names: Vec::new(),
            ips: Vec::new(),
        }
    }

    /// The node's serving certificate for `dns_names` and `ips` (duplicates dropped).
    pub fn serving(node_name: &str, dns_names: &[String], ips: &[IpAddr]) -> Self {
        let mut names: Vec<String> = Vec::new();
        for name in dns_names {
            if !name.is_empty() && !names.contains(name) {
                names.push(name.clone());
            }
        }
        let mut addresses: Vec<IpAddr> = Vec::new();
        for ip in ips {
            if !addresses.contains(ip) {
                addresses.push(*ip);
            }
        }
        Self {
            signer: Signer::KubeletServing,
            node_name: node_name.to_owned(),
            dns_names: names,
            ips: addresses,
        }
    }

    /// `system:node:<node>`, the certificate's common name.
    pub fn common_name(&self) -> String {
        format!("system:node:{}", self.node_name)
    }
}

/// A new key and the request for it.
pub struct NewRequest {
    /// The private key (PKCS#8 PEM); never logged.
    pub key_pem: String,
    /// The PKCS#10 request (PEM), for `spec.request`.
    pub csr_pem: String,
}

/// A fresh key and the request for `template`.
pub fn generate(template: &Template) -> Result<NewRequest> {
    let invalid = |err: rcgen::Error| Error::Certificate {
        what: format!("new {} request", template.signer.what()),
        problem: err.to_string(),
    };
    let key = KeyPair::generate().map_err(invalid)?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, NODES_GROUP);
    subject.push(DnType::CommonName, template.common_name());
    params.distinguished_name = subject;
    for name in &template.dns_names {
        let name = name.clone().try_into().map_err(invalid)?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params
        .subject_alt_names
        .extend(template.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    let csr = params.serialize_request(&key).map_err(invalid)?;
    Ok(NewRequest {
        key_pem: key.serialize_pem(),
        csr_pem: csr.pem().map_err(invalid)?,
    })
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::{FromDer as _, GeneralName, X509CertificationRequest};

    use super::*;

    fn parse(pem: &str) -> Vec<u8> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        assert_eq!(block.label, "CERTIFICATE REQUEST");
        block.contents
    }

    #[test]
    fn client_request_names_the_node_and_nothing_else() {
        let request = generate(&Template::client("node-a")).unwrap();
        let der = parse(&request.csr_pem);
        let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
        let subject = &csr.certification_request_info.subject;
        let cn: Vec<_> = subject
            .iter_common_name()
            .map(|n| n.as_str().unwrap())
            .collect();
        let o: Vec<_> = subject
            .iter_organization()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(cn, ["system:node:node-a"]);
        assert_eq!(o, ["system:nodes"]);
        assert!(
            csr.requested_extensions()
                .is_none_or(|mut e| e.next().is_none())
        );
        assert!(request.key_pem.contains("PRIVATE KEY"));
        assert_eq!(
            Signer::KubeletClient.usages(),
            ["digital signature", "client auth"]
        );
    }

    #[test]
    fn serving_request_carries_names_and_addresses() {
        let ips: Vec<IpAddr> = vec!["10.0.0.7".parse().unwrap(), "10.0.0.7".parse().unwrap()];
        let template = Template::serving("node-a", &["node-a".into(), "node-a".into()], &ips);
        assert_eq!(template.dns_names, ["node-a"]);
        assert_eq!(template.ips.len(), 1);
        let request = generate(&template).unwrap();
        let der = parse(&request.csr_pem);
        let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
        let sans: Vec<String> = csr
            .requested_extensions()
            .into_iter()
            .flatten()
            .filter_map(|ext| match ext {
                x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) => {
                    Some(san.general_names.iter().map(|n| match n {
                        GeneralName::DNSName(d) => d.to_string(),
                        GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                        other => format!("{other:?}"),
                    }))
                }
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(sans, ["node-a".to_owned(), "ip:[10, 0, 0, 7]".to_owned()]);
        assert_eq!(
            Signer::KubeletServing.usages(),
            ["digital signature", "server auth"]
        );
    }
}
