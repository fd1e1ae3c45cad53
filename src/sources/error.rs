//! Errors of the sources layer: reading, parsing and watching pod manifests, and talking
//! to the Kubernetes API server. Layer 5; every variant names the file, directory or API
//! call it concerns.

use std::path::PathBuf;

/// `Result` with this layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while reading desired pods from a source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest directory could not be listed.
    #[error("cannot list manifest directory {dir}")]
    ReadDir {
        /// The manifest directory.
        dir: PathBuf,
        /// Why listing failed.
        #[source]
        source: std::io::Error,
    },
    /// A manifest file could not be read (permissions, not UTF-8, vanished while reading).
    #[error("cannot read manifest {path}")]
    ReadFile {
        /// The manifest file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A manifest file is larger than any sane pod manifest.
    #[error("manifest {path} is {size} bytes, more than the limit of {limit} bytes")]
    FileTooLarge {
        /// The manifest file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A manifest file is not valid YAML (JSON is read as YAML).
    #[error("manifest {path} is not valid YAML or JSON")]
    Syntax {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line of the error in the file, when the parser knows it.
        line: Option<usize>,
        /// The parser's error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A document of a manifest is not a valid Pod.
    #[error("manifest {path}, document {document}: invalid pod: {problem}")]
    InvalidPod {
        /// The manifest file.
        path: PathBuf,
        /// 1-based index of the YAML document in the file.
        document: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A pod's namespace/name is already defined by an earlier manifest (or earlier in the
    /// same one); the later file is ignored as a whole.
    #[error("manifest {path}: pod {namespace}/{name} is already defined in {first}")]
    DuplicatePod {
        /// The manifest file that was ignored.
        path: PathBuf,
        /// The pod's namespace.
        namespace: String,
        /// The pod's name (with the node suffix).
        name: String,
        /// The manifest that defined it first.
        first: PathBuf,
    },
    /// The manifest directory could not be watched with inotify.
    #[error("cannot watch manifest directory {dir}")]
    Watch {
        /// The manifest directory.
        dir: PathBuf,
        /// Why watching failed.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be read or has no usable cluster and user.
    #[error("cannot load kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// What kube's loader said.
        message: String,
    },
    /// A request to the Kubernetes API server failed.
    #[error("cannot {action} {object}")]
    Api {
        /// The verb and kind, e.g. `patch status of pod`.
        action: &'static str,
        /// `namespace/name` or `name` of the object.
        object: String,
        /// What the client or the server said.
        #[source]
        source: Box<kube::Error>,
    },
    /// A request to the Kubernetes API server got no answer in time.
    #[error("cannot {action} {object}: no answer from the API server within {timeout:?}")]
    ApiTimeout {
        /// The verb and kind.
        action: &'static str,
        /// `namespace/name` or `name` of the object.
        object: String,
        /// How long systemk waited.
        timeout: std::time::Duration,
    },
    /// A certificate (or its key) systemk made, received or read is unusable: the
    /// server's answer does not match what was asked, it expired, it does not parse.
    #[error("{what}: {problem}")]
    Certificate {
        /// Which certificate: `client certificate`, `serving certificate`, a file.
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A certificate or key file could not be read or written.
    #[error("cannot {action} {path}")]
    CertificateFile {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A CertificateSigningRequest was denied or failed in the cluster.
    #[error("certificate signing request {name} was {outcome}: {reason}")]
    CsrRefused {
        /// The CSR's name.
        name: String,
        /// `denied` or `failed`.
        outcome: &'static str,
        /// The condition's reason and message.
        reason: String,
    },
    /// A CertificateSigningRequest got no certificate within the wait.
    #[error(
        "certificate signing request {name} was not approved and signed within {waited:?}{hint}"
    )]
    CsrNotIssued {
        /// The CSR's name.
        name: String,
        /// How long systemk waited.
        waited: std::time::Duration,
        /// What an operator can do (empty when nothing).
        hint: &'static str,
    },
    /// A static pod cannot be mirrored before the Node exists (its owner).
    #[error("cannot mirror static pod {pod}: the node is not registered yet")]
    NodeNotRegistered {
        /// The static pod's name.
        pod: String,
    },
    /// A fact about the host (memory, disk, identity) could not be read.
    #[error("cannot read {what} from {path}")]
    HostFact {
        /// What was being read.
        what: &'static str,
        /// The file it lives in.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A CamelCase reason for pod status, events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadDir { .. } | Error::ReadFile { .. } => "ManifestUnreadable",
            Error::FileTooLarge { .. } => "ManifestTooLarge",
            Error::Syntax { .. } => "ManifestSyntaxError",
            Error::InvalidPod { .. } => "InvalidPod",
            Error::DuplicatePod { .. } => "DuplicatePod",
            Error::Watch { .. } => "ManifestWatchFailed",
            Error::Kubeconfig { .. } => "KubeconfigInvalid",
            Error::Api { .. } => "ApiRequestFailed",
            Error::HostFact { .. } => "HostFactUnreadable",
            Error::NodeNotRegistered { .. } => "NodeNotRegistered",
            Error::ApiTimeout { .. } => "ApiTimeout",
            Error::Certificate { .. } => "CertificateInvalid",
            Error::CertificateFile { .. } => "CertificateFileError",
            Error::CsrRefused { .. } => "CertificateSigningRequestRefused",
            Error::CsrNotIssued { .. } => "CertificateSigningRequestPending",
        }
    }

    /// Whether trying again later may succeed without anyone editing a manifest.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::ReadDir { .. }
            | Error::ReadFile { .. }
            | Error::Watch { .. }
            | Error::HostFact { .. }
            | Error::NodeNotRegistered { .. }
            | Error::ApiTimeout { .. }
            | Error::CsrNotIssued { .. } => true,
            Error::Api { source, .. } => match source.as_ref() {
                // Conflicts and throttling pass; other client errors need someone to act.
                kube::Error::Api(status) => matches!(status.code, 409 | 429) || status.code >= 500,
                _ => true,
            },
            _ => false,
        }
    }

    /// A failed API call, for `map_err`.
    pub(crate) fn api(
        action: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> Error {
        let object = object.into();
        move |source| Error::Api {
            action,
            object,
            source: Box::new(source),
        }
    }

    /// The HTTP status the API server answered with, when it answered.
    pub fn api_status(&self) -> Option<u16> {
        match self {
            Error::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain::{chain, repeats_its_source};

    #[test]
    fn no_message_repeats_its_source() {
        let io = || std::io::Error::other("permission denied");
        let yaml = serde_yaml_ng::from_str::<Vec<u8>>("[").unwrap_err();
        let yaml_text = yaml.to_string();
        let errors = [
            Error::ReadDir {
                dir: "/etc/kubernetes/manifests".into(),
                source: io(),
            },
            Error::ReadFile {
                path: "/m/a.yaml".into(),
                source: io(),
            },
            Error::Syntax {
                path: "/m/a.yaml".into(),
                line: Some(1),
                source: yaml,
            },
            Error::Watch {
                dir: "/m".into(),
                source: io(),
            },
            Error::HostFact {
                what: "memory",
                path: "/proc/meminfo".into(),
                source: io(),
            },
        ];
        for err in &errors {
            assert!(!repeats_its_source(err), "{err:?} prints {err}");
        }
        assert_eq!(
            chain(&errors[2]),
            format!("manifest /m/a.yaml is not valid YAML or JSON: {yaml_text}")
        );
    }
}
