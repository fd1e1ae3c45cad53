//! The cluster's PKI as kubeadm sets it up: one cluster CA that is the client CA
//! (`--client-ca-file`, the CA kubelets and the API server authenticate callers against), signs
//! the API server's serving certificate (HTTPS mode), certificates for users (CN = user,
//! O = groups, as the x509 authenticator reads them), the API server's own kubelet client
//! certificate (`--kubelet-client-certificate`: CN `kube-apiserver-kubelet-client`, O
//! `system:masters`) and approved CSRs (`signer`). Test support: keys are generated at start
//! and live only in memory.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The user name kube-apiserver's kubelet client certificate carries (kubeadm's and k3s' name).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
/// The group that every authorizer lets do anything.
pub const MASTERS_GROUP: &str = "system:masters";

/// A CA that signs client certificates.
pub struct ClientCa {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate, PEM.
    pub pem: String,
}

impl ClientCa {
    /// A fresh self-signed client CA.
    pub fn generate() -> Self {
        let key = KeyPair::generate().expect("generate the client CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes-client-ca");
        let pem = params
            .self_signed(&key)
            .expect("self-sign the client CA")
            .pem();
        Self { params, key, pem }
    }

    /// A client certificate for `user` in `groups`, signed by this CA: `(cert_pem, key_pem)`.
    /// The x509 authenticator reads every `O` as a group; rcgen keeps one value per attribute
    /// type, so the second group is written under the same OID as a custom attribute type and
    /// more than two groups cannot be expressed (the call panics saying so).
    pub fn issue(&self, user: &str, groups: &[&str]) -> (String, String) {
        let now = time::OffsetDateTime::now_utc();
        self.issue_valid(
            user,
            groups,
            now - time::Duration::minutes(5),
            now + time::Duration::days(365),
        )
    }

    /// As `issue`, valid from `not_before` to `not_after` (in the past: an expired certificate).
    pub fn issue_valid(
        &self,
        user: &str,
        groups: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (String, String) {
        assert!(
            groups.len() <= 2,
            "the test PKI writes at most two groups (O attributes) into a certificate"
        );
        let key = KeyPair::generate().expect("generate a client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, user);
        if let Some(group) = groups.first() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        if let Some(group) = groups.get(1) {
            let organization = DnType::CustomDnType(vec![2, 5, 4, 10]);
            params.distinguished_name.push(organization, *group);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params
            .signed_by(&key, &self.issuer())
            .expect("sign a client certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// The API server's serving certificate for `127.0.0.1` and `localhost`, as kubeadm's
    /// `apiserver.crt` (serverAuth): `(cert_pem, key_pem)`.
    pub fn serving_cert(&self) -> (String, String) {
        let key = KeyPair::generate().expect("generate the serving key");
        let names = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default"];
        let mut params = CertificateParams::new(names.map(String::from).to_vec())
            .expect("serving certificate params");
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer())
            .expect("sign the serving certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// The CA as an rcgen issuer, to sign with.
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// The HTTPS client kube-apiserver talks to kubelets with: it presents `identity_pem`
/// (certificate and key) and, as kube-apiserver without `--kubelet-certificate-authority`,
/// does not verify the kubelet's serving certificate — unless `verify_with` is a CA (PEM):
/// then the certificate must chain to it and name the address dialled, as with that flag.
/// Redirects are not followed (kube-apiserver's `PreventRedirects`).
pub fn kubelet_client(identity_pem: &str, verify_with: Option<&str>) -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; the process default is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let identity =
        reqwest::Identity::from_pem(identity_pem.as_bytes()).expect("kubelet client identity");
    let builder = match verify_with {
        Some(ca_pem) => {
            reqwest::Client::builder()
                .tls_certs_only([
                    reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("the cluster CA")
                ])
        }
        None => reqwest::Client::builder().tls_danger_accept_invalid_certs(true),
    };
    builder
        .identity(identity)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("build the kubelet client")
}
