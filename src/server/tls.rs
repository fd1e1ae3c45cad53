//! TLS of the kubelet API: the serving certificate (given as files, or self-signed once
//! and kept in `<state dir>/pki/kubelet.crt|.key` like the kubelet's `--cert-dir`) and the
//! rustls configuration that verifies client certificates against the client CA. Never
//! accepts a client certificate it has not verified: without a client CA nobody
//! authenticates (every request is then 401). Layer 6.

use std::fs::{self, DirBuilder};
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::sync::{Arc, RwLock};

use k8s_openapi::jiff::{Timestamp, tz::TimeZone};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use super::error::{Error, Result};
use crate::atomic_file::{self, Durability};

/// The self-signed certificate's file names in `<state dir>/pki`, the kubelet's names.
const SELF_SIGNED_CERT: &str = "kubelet.crt";
const SELF_SIGNED_KEY: &str = "kubelet.key";

/// How long a self-signed serving certificate is valid: the kubelet's one year. An
/// expired one is replaced at the next start.
const SELF_SIGNED_YEARS: i16 = 1;

/// The serving certificate chain and its key, in PEM.
#[derive(Clone)]
pub struct ServingCert {
    /// The certificate chain, leaf first.
    pub chain_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

/// Reads `--tls-cert-file` and `--tls-private-key-file`.
pub fn read_serving_cert(cert: &Path, key: &Path) -> Result<ServingCert> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| Error::CertificateFile {
            path: path.to_owned(),
            source,
        })
    };
    Ok(ServingCert {
        chain_pem: read(cert)?,
        key_pem: read(key)?,
    })
}

/// The self-signed serving certificate in `<state_dir>/pki`, made for the host `names`
/// (the first is its CN) and `ips` when there is none yet or the one there expired.
pub fn self_signed_cert(state_dir: &Path, names: &[String], ips: &[IpAddr]) -> Result<ServingCert> {
    let dir = state_dir.join("pki");
    let (cert_path, key_path) = (dir.join(SELF_SIGNED_CERT), dir.join(SELF_SIGNED_KEY));
    if let (Ok(chain_pem), Ok(key_pem)) = (fs::read(&cert_path), fs::read(&key_path)) {
        if is_current(&chain_pem) {
            return Ok(ServingCert { chain_pem, key_pem });
        }
        tracing::info!(cert = %cert_path.display(), "the self-signed serving certificate expired or is unreadable; making a new one");
    }
    let cert = generate_self_signed(names, ips, crate::clock::now())?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| Error::CertificateFile {
            path: dir.clone(),
            source,
        })?;
    // The key first: a certificate without its key would be kept and fail at every start.
    write_private(&key_path, &cert.key_pem, 0o600)?;
    write_private(&cert_path, &cert.chain_pem, 0o644)?;
    tracing::info!(cert = %cert_path.display(), ?names, ?ips, "made a self-signed serving certificate");
    Ok(cert)
}

/// A certificate for `names` and `ips`, valid from now on for a year, CN
/// `<first name>@<unix time>` as the kubelet names its own.
fn generate_self_signed(names: &[String], ips: &[IpAddr], now: Timestamp) -> Result<ServingCert> {
    let hostname = names.first().map_or("localhost", String::as_str);
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{hostname}@{}", now.as_second()),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let today = now.to_zoned(TimeZone::UTC).date();
    params.not_before = rcgen::date_time_ymd(
        i32::from(today.year()),
        today.month().unsigned_abs(),
        today.day().unsigned_abs(),
    );
    params.not_after = rcgen::date_time_ymd(
        i32::from(today.year() + SELF_SIGNED_YEARS),
        today.month().unsigned_abs(),
        // 28 exists in every month, so 29 February never makes an invalid date.
        today.day().unsigned_abs().min(28),
    );
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(ServingCert {
        chain_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
    })
}

/// Whether the first certificate of `pem` parses and is valid now.
fn is_current(pem: &[u8]) -> bool {
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(pem).next() else {
        return false;
    };
    x509_parser::parse_x509_certificate(&der)
        .map(|(_, cert)| cert.validity().is_valid())
        .unwrap_or(false)
}

/// Writes `bytes` to `path` through a temporary file created with `mode`, so the key is
/// never readable by others, not even for a moment.
fn write_private(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    atomic_file::write(path, bytes, mode, Durability::Synced).map_err(|source| {
        Error::CertificateFile {
            path: path.to_owned(),
            source,
        }
    })
}

/// The certificates of a PEM bundle (`what` names it in errors); at least one.
pub fn parse_ca_bundle(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let invalid = |message: String| Error::InvalidCertificate {
        what: what.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(err.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

/// The serving certificate every handshake gets, swappable while serving: a renewed
/// certificate from the cluster is used by new connections at once, while open ones keep
/// the one they shook hands with (nothing is dropped).
#[derive(Debug)]
pub struct ServingResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServingResolver {
    /// A resolver serving `serving` until [`ServingResolver::replace`]d.
    pub fn new(serving: &ServingCert) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            current: RwLock::new(certified_key(serving)?),
        }))
    }

    /// Serves `key` from the next handshake on.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        // A poisoned lock still holds a whole `Arc`: writers only swap it.
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = key;
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ServingResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The chain and key of `serving`, checked to belong together.
fn certified_key(serving: &ServingCert) -> Result<Arc<CertifiedKey>> {
    let provider = rustls::crypto::ring::default_provider();
    let chain = CertificateDer::pem_slice_iter(&serving.chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::InvalidCertificate {
            what: "serving certificate".to_owned(),
            message: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(Error::InvalidCertificate {
            what: "serving certificate".to_owned(),
            message: "no PEM certificate in it".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&serving.key_pem).map_err(|err| {
        Error::InvalidCertificate {
            what: "serving certificate's private key".to_owned(),
            message: err.to_string(),
        }
    })?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider)?))
}

/// The rustls configuration: serve what `serving` holds, verify client certificates
/// against `client_ca` when there is one. Clients without a certificate still connect
/// (and get 401, as the kubelet answers anonymous requests); a certificate that does not
/// verify ends the handshake.
pub fn server_config(
    serving: Arc<ServingResolver>,
    client_ca: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match client_ca {
        Some(cas) => builder
            .with_client_cert_verifier(client_verifier(cas, provider)?)
            .with_cert_resolver(serving),
        None => builder.with_no_client_auth().with_cert_resolver(serving),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn client_verifier(
    cas: &[CertificateDer<'static>],
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone())?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|err| Error::InvalidCertificate {
            what: "client CA".to_owned(),
            message: err.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_cert_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let ips = ["10.0.0.7".parse().unwrap()];
        let first = self_signed_cert(dir.path(), &["node-a".to_owned()], &ips).unwrap();
        let again = self_signed_cert(dir.path(), &["node-a".to_owned()], &ips).unwrap();
        assert_eq!(first.chain_pem, again.chain_pem);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.path().join("pki/kubelet.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(is_current(&first.chain_pem));
        server_config(ServingResolver::new(&first).unwrap(), None).unwrap();
    }

    #[test]
    fn an_expired_self_signed_cert_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let old = generate_self_signed(
            &["node-a".to_owned()],
            &[],
            "2020-01-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
        assert!(!is_current(&old.chain_pem));
        fs::create_dir(dir.path().join("pki")).unwrap();
        fs::write(dir.path().join("pki/kubelet.crt"), &old.chain_pem).unwrap();
        fs::write(dir.path().join("pki/kubelet.key"), &old.key_pem).unwrap();
        let new = self_signed_cert(dir.path(), &["node-a".to_owned()], &[]).unwrap();
        assert_ne!(new.chain_pem, old.chain_pem);
    }

    #[test]
    fn ca_bundle_must_hold_a_certificate() {
        assert!(parse_ca_bundle(b"not pem", "test CA").is_err());
        let cert = generate_self_signed(&["ca".to_owned()], &[], crate::clock::now()).unwrap();
        assert_eq!(
            parse_ca_bundle(&cert.chain_pem, "test CA").unwrap().len(),
            1
        );
    }
}
