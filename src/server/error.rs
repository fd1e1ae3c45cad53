//! The server layer's errors: what failed while starting the kubelet API (certificates,
//! the client CA, the listener) and what a request ends in (bad request, not found, the
//! API server unreachable). Each maps to an HTTP status; none panics. Layer 6.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;

/// Errors of the kubelet API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A certificate or key file could not be read or written.
    #[error("cannot use {}", path.display())]
    CertificateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// PEM or DER that does not hold what it should.
    #[error("invalid {what}: {message}")]
    InvalidCertificate {
        /// Which certificate, e.g. "client CA bundle /etc/x.pem".
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// The self-signed serving certificate could not be made.
    #[error("cannot generate the serving certificate")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificates or the client CA.
    #[error("cannot set up TLS")]
    Tls(#[from] rustls::Error),
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address and port.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--authentication-token-webhook` without a cluster to send TokenReviews to.
    #[error("--authentication-token-webhook needs a cluster (a kubeconfig) to review tokens")]
    TokenWebhookWithoutCluster,
    /// The server stopped with an I/O error.
    #[error("the kubelet API server failed")]
    Serve(#[source] std::io::Error),
    /// A request the kubelet API cannot serve as asked.
    #[error("{0}")]
    BadRequest(String),
    /// A bound of [`super::Limits`] is reached for now (e.g. followed logs): try later.
    #[error("{0}")]
    TooManyRequests(String),
    /// A pod or container this node does not run.
    #[error("{0}")]
    NotFound(String),
    /// An API server call failed or took too long.
    #[error("cannot {action}: {message}")]
    Api {
        /// What was being done, e.g. "review access".
        action: &'static str,
        /// What the API server or the client said.
        message: String,
    },
    /// Reading the pods or their logs on this machine failed.
    #[error("cannot {action}: {message}")]
    Local {
        /// What was being done, e.g. "read the journal".
        action: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Results of the server layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A CamelCase name of the failure, used as the `reason` of error responses.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::CertificateFile { .. } => "CertificateFileFailed",
            Error::InvalidCertificate { .. } => "InvalidCertificate",
            Error::Generate(_) => "CertificateGenerationFailed",
            Error::Tls(_) => "TlsSetupFailed",
            Error::Bind { .. } => "BindFailed",
            Error::TokenWebhookWithoutCluster => "TokenWebhookWithoutCluster",
            Error::Serve(_) => "ServeFailed",
            Error::BadRequest(_) => "BadRequest",
            Error::NotFound(_) => "NotFound",
            Error::TooManyRequests(_) => "TooManyRequests",
            Error::Api { .. } => "ServiceUnavailable",
            Error::Local { .. } => "InternalError",
        }
    }

    /// Whether trying again later may succeed (the API server or systemd being busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Api { .. } | Error::Local { .. } | Error::Serve(_) | Error::TooManyRequests(_)
        )
    }

    /// The HTTP status a request that failed this way gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Api { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain::{chain, repeats_its_source};

    fn io() -> std::io::Error {
        std::io::Error::other("address in use")
    }

    #[test]
    fn no_message_repeats_its_source() {
        let errors = [
            Error::CertificateFile {
                path: "/etc/x.pem".into(),
                source: io(),
            },
            Error::Generate(rcgen::Error::CouldNotParseCertificate),
            Error::Tls(rustls::Error::General("bad".into())),
            Error::Bind {
                address: "127.0.0.1:10250".parse().unwrap(),
                source: io(),
            },
            Error::Serve(io()),
        ];
        for err in &errors {
            assert!(!repeats_its_source(err), "{err:?} prints {err}");
        }
        assert_eq!(
            chain(&errors[3]),
            "cannot listen on 127.0.0.1:10250: address in use"
        );
    }
}
