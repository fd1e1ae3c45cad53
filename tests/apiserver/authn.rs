//! Request authentication in HTTPS mode, as kube-apiserver's authenticator chain does it:
//! a client certificate verified against the cluster CA (chain, validity, clientAuth; CN is
//! the user, every O a group), else a bearer token — a bootstrap token
//! (`bootstrap`), or a service account token this server issued (`token_review`). Every
//! authenticated user also gets `system:authenticated`. A credential that fails, or none at
//! all, is 401 Unauthorized, never a silently anonymous user. The TLS layer asks for a
//! client certificate but accepts any (`AnyClientCert`), as Go's `RequestClientCert` does,
//! so token users can connect and a bad certificate is refused per request.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::status::{ApiError, ApiResult};
use super::{Api, bootstrap, token::ISSUER, token_review};

/// The group every authenticated request is in.
pub const AUTHENTICATED: &str = "system:authenticated";

/// Who made a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// `user.Info.GetName()`.
    pub name: String,
    /// `user.Info.GetUID()` ("" for certificate users).
    pub uid: String,
    /// Groups, `system:authenticated` last.
    pub groups: Vec<String>,
    /// Extra attributes (service account tokens' credential id, pod).
    pub extra: Value,
}

impl User {
    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The user of a request in HTTPS mode: certificate first, then bearer token; 401 otherwise.
pub fn authenticate(api: &Api, peer_certs: &[Vec<u8>], headers: &HeaderMap) -> ApiResult<User> {
    if let Some(der) = peer_certs.first() {
        let intermediates: Vec<CertificateDer<'_>> = peer_certs[1..]
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        let verified = api.client_verifier.verify_client_cert(
            &CertificateDer::from(der.as_slice()),
            &intermediates,
            UnixTime::now(),
        );
        // A certificate that does not verify is an error of the x509 authenticator: the
        // request fails unless a token authenticates it.
        if verified.is_ok()
            && let Some(user) = certificate_user(der)
        {
            return Ok(user);
        }
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Err(ApiError::unauthorized());
    };
    if let Some(found) = bootstrap::authenticate(api, token) {
        return found.ok_or_else(ApiError::unauthorized);
    }
    let audiences = [ISSUER.to_owned()];
    match token_review::authenticate(api, token, &audiences) {
        Ok((user, _)) => Ok(User {
            name: user["username"].as_str().unwrap_or("").to_owned(),
            uid: user["uid"].as_str().unwrap_or("").to_owned(),
            groups: user["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            extra: user["extra"].clone(),
        }),
        Err(_) => Err(ApiError::unauthorized()),
    }
}

/// The user a verified client certificate names: CN, one group per O.
fn certificate_user(der: &[u8]) -> Option<User> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    groups.push(AUTHENTICATED.to_owned());
    Some(User {
        name,
        uid: String::new(),
        groups,
        extra: json!({}),
    })
}

/// The TLS-layer verifier: asks for a certificate from the cluster CA, accepts any (or none)
/// and leaves the chain to `authenticate`; the handshake signature is still checked, so a
/// client proves it holds the key of the certificate it shows.
#[derive(Debug)]
pub struct AnyClientCert(pub Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
