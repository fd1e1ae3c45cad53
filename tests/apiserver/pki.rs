//! The cluster's client PKI as kube-apiserver has it: a client CA (`--client-ca-file`, the CA
//! kubelets authenticate API callers against), certificates it signs for users (CN = user,
//! O = groups, as the x509 authenticator reads them), and the API server's own kubelet client
//! certificate (`--kubelet-client-certificate`: CN `kube-apiserver-kubelet-client`, O
//! `system:masters`). Test support: keys are generated at start and live only in memory.

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
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .expect("sign a client certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// The HTTPS client kube-apiserver talks to kubelets with: it presents `identity_pem`
/// (certificate and key) and, as kube-apiserver without `--kubelet-certificate-authority`,
/// does not verify the kubelet's serving certificate. Redirects are not followed
/// (kube-apiserver's `PreventRedirects`).
pub fn kubelet_client(identity_pem: &str) -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; the process default is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let identity =
        reqwest::Identity::from_pem(identity_pem.as_bytes()).expect("kubelet client identity");
    reqwest::Client::builder()
        .identity(identity)
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("build the kubelet client")
}
