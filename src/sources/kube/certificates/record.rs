//! What the agent records about its certificates for `systemk doctor`, which cannot see
//! its log: the last failed bootstrap (when, why, and whether the API server refused the
//! token with 401) and the serving CSR that waits for approval. One small JSON file,
//! `<cert dir>/certificate-status.json` (0600, written atomically), rewritten under one
//! lock by the client and serving certificate tasks. A record that cannot be written is
//! logged and otherwise ignored: it only informs. Layer 5.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::atomic_file::{self, Durability};
use crate::sources::Error;

/// The record's file name in the certificate directory.
pub const RECORD_FILE: &str = "certificate-status.json";

/// A bootstrap that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapFailure {
    /// When it failed.
    pub at: Timestamp,
    /// The error chain, on one line.
    pub reason: String,
    /// The API server answered 401: it does not accept the bootstrap token.
    pub unauthorized: bool,
}

/// A serving CSR created and not yet issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCsr {
    /// The CSR's name.
    pub name: String,
    /// When it was created.
    pub since: Timestamp,
}

/// The file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// The last bootstrap that failed, until one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_failure: Option<BootstrapFailure>,
    /// The serving CSR waiting for approval, until a certificate is issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_serving_csr: Option<PendingCsr>,
}

impl CertificateStatus {
    /// Reads the record in `cert_dir`: `None` when there is none; an unreadable one is an
    /// error (doctor reports it).
    pub fn read(cert_dir: &Path) -> std::io::Result<Option<Self>> {
        let path = cert_dir.join(RECORD_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
    }
}

/// What a failed bootstrap records from its error.
pub fn bootstrap_failure(err: &Error, at: Timestamp) -> BootstrapFailure {
    BootstrapFailure {
        at,
        reason: crate::error_chain::Chain(err).to_string(),
        unauthorized: err.api_status() == Some(401),
    }
}

/// The writer the agent's certificate tasks share.
#[derive(Debug, Clone)]
pub struct Recorder {
    dir: PathBuf,
    /// Both tasks read, change and write the one file.
    lock: Arc<Mutex<()>>,
}

impl Recorder {
    /// A recorder for the certificate directory `cert_dir`.
    pub fn new(cert_dir: &Path) -> Self {
        Self {
            dir: cert_dir.to_owned(),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Records `failure` as the last bootstrap failure.
    pub fn bootstrap_failed(&self, failure: BootstrapFailure) {
        self.update(|status| status.bootstrap_failure = Some(failure));
    }

    /// Forgets the last bootstrap failure: a bootstrap succeeded.
    pub fn bootstrapped(&self) {
        self.update(|status| status.bootstrap_failure = None);
    }

    /// Records `csr` as the serving CSR that waits for approval (`None`: none waits).
    pub fn serving_pending(&self, csr: Option<PendingCsr>) {
        self.update(|status| status.pending_serving_csr = csr);
    }

    fn update(&self, change: impl FnOnce(&mut CertificateStatus)) {
        // No await inside: a sync lock; a poisoned one still guards a whole file.
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // An unreadable record is replaced: it only informs.
        let (mut status, unreadable) = match CertificateStatus::read(&self.dir) {
            Ok(status) => (status.unwrap_or_default(), false),
            Err(_) => (CertificateStatus::default(), true),
        };
        let before = status.clone();
        change(&mut status);
        if status == before && !unreadable {
            return;
        }
        let written = serde_json::to_vec_pretty(&status)
            .map_err(std::io::Error::other)
            .and_then(|text| {
                fs::create_dir_all(&self.dir)?;
                atomic_file::write(
                    &self.dir.join(RECORD_FILE),
                    &text,
                    0o600,
                    Durability::Synced,
                )
            });
        if let Err(err) = written {
            tracing::warn!(error = %err, dir = %self.dir.display(),
                "cannot record the certificates' status for systemk doctor");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn records_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(CertificateStatus::read(dir.path()).unwrap(), None);
        let recorder = Recorder::new(dir.path());
        let at: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let failure = BootstrapFailure {
            at,
            reason: "Unauthorized".into(),
            unauthorized: true,
        };
        recorder.bootstrap_failed(failure.clone());
        recorder.serving_pending(Some(PendingCsr {
            name: "csr-abc".into(),
            since: at,
        }));
        let status = CertificateStatus::read(dir.path()).unwrap().unwrap();
        assert_eq!(status.bootstrap_failure, Some(failure));
        assert_eq!(status.pending_serving_csr.unwrap().name, "csr-abc");
        let mode = fs::metadata(dir.path().join(RECORD_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        recorder.bootstrapped();
        recorder.serving_pending(None);
        assert_eq!(
            CertificateStatus::read(dir.path()).unwrap(),
            Some(CertificateStatus::default())
        );
    }

    #[test]
    fn a_garbled_record_is_an_error_to_read_and_replaced_on_write() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(RECORD_FILE), "{not json").unwrap();
        assert!(CertificateStatus::read(dir.path()).is_err());
        Recorder::new(dir.path()).bootstrapped();
        assert!(CertificateStatus::read(dir.path()).is_ok());
    }
}
