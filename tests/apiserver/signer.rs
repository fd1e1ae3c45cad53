//! What kube-controller-manager does with CSRs, as plain functions: parse and verify the
//! PKCS#10 request (`certificates.ParseCSR` + `CheckSignature`), the kubelet signers'
//! requirements (`ValidateKubeletClientCSR`, `ValidateKubeletServingCSR`), the validity the
//! signer gives (`signer.duration` and `PermissiveSigningPolicy`: notBefore = now − 5 min;
//! notAfter = now + ttl, minus the 5 min backdate again when ttl ≥ 8 h) and the signing
//! itself with the cluster CA (subject, SANs and public key from the request, usages from
//! the spec). No store access.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType, SerialNumber,
    SubjectPublicKeyInfo,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::base64;
use super::pki::ClientCa;

/// The kubelet client signer.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The kubelet serving signer.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// How far back the signer dates certificates (`signer.go`'s Backdate).
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Below this lifetime the notAfter is not backdated (`signer.go`'s Short).
const SHORT: Duration = Duration::from_secs(8 * 3600);
/// The shortest lifetime the signer issues for a requested `expirationSeconds`.
const MIN_TTL: Duration = Duration::from_secs(10 * 60);

/// What a verified request asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
    /// SubjectPublicKeyInfo, DER.
    pub public_key: Vec<u8>,
}

/// `spec.request` (base64 in JSON) parsed and its signature checked, or Go's error text.
pub fn parse(request_b64: &str) -> Result<Request, String> {
    let pem = base64::decode_standard(request_b64).ok_or("illegal base64 data in spec.request")?;
    let block_error = "PEM block type must be CERTIFICATE REQUEST";
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).map_err(|_| block_error)?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(block_error.to_owned());
    }
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|err| format!("asn1: structure error: {err}"))?;
    csr.verify_signature()
        .map_err(|_| "x509: signature verification failure".to_owned())?;
    let info = &csr.certification_request_info;
    let mut parsed = Request {
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_owned(),
        organizations: info
            .subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect(),
        public_key: info.subject_pki.raw.to_vec(),
        ..Request::default()
    };
    for extension in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = extension {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(dns) => parsed.dns_names.push((*dns).to_owned()),
                    GeneralName::RFC822Name(email) => parsed.emails.push((*email).to_owned()),
                    GeneralName::URI(uri) => parsed.uris.push((*uri).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            parsed.ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            parsed.ips.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(parsed)
}

fn same_set(usages: &[&str], wanted: &[&str]) -> bool {
    usages.iter().all(|u| wanted.contains(u)) && wanted.iter().all(|w| usages.contains(w))
}

/// `ValidateKubeletClientCSR`: why the request is not a kubelet client certificate request.
pub fn kubelet_client_problem(request: &Request, usages: &[&str]) -> Option<String> {
    if request.organizations != ["system:nodes"] {
        return Some("subject organization is not system:nodes".into());
    }
    if !request.dns_names.is_empty() {
        return Some("DNS subjectAltNames are not allowed".into());
    }
    if !request.emails.is_empty() {
        return Some("Email subjectAltNames are not allowed".into());
    }
    if !request.ips.is_empty() {
        return Some("IP subjectAltNames are not allowed".into());
    }
    if !request.uris.is_empty() {
        return Some("URI subjectAltNames are not allowed".into());
    }
    if !request.common_name.starts_with("system:node:") {
        return Some("subject common name does not begin with system:node:".into());
    }
    let rsa = ["client auth", "digital signature", "key encipherment"];
    if !same_set(usages, &rsa) && !same_set(usages, &rsa[..2]) {
        return Some(format!("usages did not match [{}]", rsa.join(" ")));
    }
    None
}

/// `ValidateKubeletServingCSR`: why the request is not a kubelet serving certificate request.
pub fn kubelet_serving_problem(request: &Request, usages: &[&str]) -> Option<String> {
    if request.organizations != ["system:nodes"] {
        return Some("subject organization is not system:nodes".into());
    }
    if request.dns_names.is_empty() && request.ips.is_empty() {
        return Some("DNS or IP subjectAltName is required".into());
    }
    if !request.emails.is_empty() {
        return Some("Email subjectAltNames are not allowed".into());
    }
    if !request.uris.is_empty() {
        return Some("URI subjectAltNames are not allowed".into());
    }
    let rsa = ["digital signature", "key encipherment", "server auth"];
    let no_rsa = ["digital signature", "server auth"];
    if !same_set(usages, &rsa) && !same_set(usages, &no_rsa) {
        return Some(format!("usages did not match [{}]", rsa.join(" ")));
    }
    if !request.common_name.starts_with("system:node:") {
        return Some("subject common name does not begin with system:node:".into());
    }
    None
}

/// `signer.duration`: the cluster signing duration, or the requested one when shorter (but
/// never below 10 minutes).
pub fn ttl(cluster_signing_duration: Duration, expiration_seconds: Option<i64>) -> Duration {
    let Some(seconds) = expiration_seconds else {
        return cluster_signing_duration;
    };
    let requested = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    if requested > cluster_signing_duration {
        cluster_signing_duration
    } else if requested < MIN_TTL {
        MIN_TTL
    } else {
        requested
    }
}

/// `(notBefore, notAfter)` as `PermissiveSigningPolicy` sets them for `ttl` from `now`.
pub fn validity(
    now: time::OffsetDateTime,
    ttl: Duration,
) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let not_before = now - BACKDATE;
    let not_after = if ttl < SHORT {
        now + ttl
    } else {
        now + ttl - BACKDATE
    };
    (not_before, not_after)
}

/// The certificate (PEM, leaf only) the cluster CA issues for `request` with `usages`,
/// valid for `ttl` as the signer dates it.
pub fn sign(
    ca: &ClientCa,
    request: &Request,
    usages: &[&str],
    ttl: Duration,
) -> Result<String, String> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if !request.common_name.is_empty() {
        params
            .distinguished_name
            .push(DnType::CommonName, request.common_name.as_str());
    }
    for (i, organization) in request.organizations.iter().enumerate() {
        // rcgen keeps one value per type: later O's go under the same OID as custom types.
        let kind = if i == 0 {
            DnType::OrganizationName
        } else {
            DnType::CustomDnType(vec![2, 5, 4, 10])
        };
        params.distinguished_name.push(kind, organization.as_str());
    }
    for dns in &request.dns_names {
        let name = dns.clone().try_into().map_err(|err| format!("{err}"))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in &request.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for usage in usages {
        match *usage {
            "signing" | "digital signature" => {
                params.key_usages.push(KeyUsagePurpose::DigitalSignature)
            }
            "content commitment" => params.key_usages.push(KeyUsagePurpose::ContentCommitment),
            "key encipherment" => params.key_usages.push(KeyUsagePurpose::KeyEncipherment),
            "key agreement" => params.key_usages.push(KeyUsagePurpose::KeyAgreement),
            "data encipherment" => params.key_usages.push(KeyUsagePurpose::DataEncipherment),
            "cert sign" => params.key_usages.push(KeyUsagePurpose::KeyCertSign),
            "crl sign" => params.key_usages.push(KeyUsagePurpose::CrlSign),
            "server auth" => params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth),
            "client auth" => params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth),
            "any" => params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::Any),
            _ => {}
        }
    }
    params.key_usages.dedup();
    let (not_before, not_after) = validity(time::OffsetDateTime::now_utc(), ttl);
    params.not_before = not_before;
    params.not_after = not_after;
    let serial: Vec<u8> = super::objects::new_uid()
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .take(16)
        .collect();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.use_authority_key_identifier_extension = true;
    let public_key =
        SubjectPublicKeyInfo::from_der(&request.public_key).map_err(|err| format!("{err}"))?;
    let cert = params
        .signed_by(&public_key, &ca.issuer())
        .map_err(|err| format!("{err}"))?;
    Ok(cert.pem())
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn ttl_is_the_shorter_of_the_two_but_at_least_ten_minutes() {
        let year = Duration::from_secs(365 * 86400);
        assert_eq!(ttl(year, None), year);
        assert_eq!(ttl(year, Some(3600)), Duration::from_secs(3600));
        assert_eq!(ttl(year, Some(60)), MIN_TTL);
        assert_eq!(
            ttl(Duration::from_secs(120), Some(3600)),
            Duration::from_secs(120)
        );
        assert_eq!(
            ttl(Duration::from_secs(120), None),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn long_lived_certificates_are_backdated_at_both_ends() {
        let now = time::OffsetDateTime::now_utc();
        let (from, to) = validity(now, Duration::from_secs(3600));
        assert_eq!(
            (now - from, to - now),
            (time::Duration::minutes(5), time::Duration::hours(1))
        );
        let (_, to) = validity(now, Duration::from_secs(9 * 3600));
        assert_eq!(
            to - now,
            time::Duration::hours(9) - time::Duration::minutes(5)
        );
    }
}
