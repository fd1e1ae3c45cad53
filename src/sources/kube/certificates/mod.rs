//! The node's certificates from the cluster, as the kubelet gets them: the client
//! certificate through TLS bootstrap and rotation ([`bootstrap`], used by the node's API
//! client through [`client_identity`]), and the kubelet API's serving certificate
//! ([`serving`]). [`csr`] builds requests, [`request`] creates one and waits for its
//! certificate, [`issued`] checks what comes back, [`rotation`] decides when to renew, [`record`]
//! keeps what `systemk doctor` reports (the last bootstrap failure, a pending serving CSR).
//! Layer 5: the server (layer 6) receives the serving certificate through a
//! `tokio::sync::watch` the agent wires; nothing here knows the server.

pub mod bootstrap;
pub mod client_identity;
pub mod csr;
pub mod issued;
pub mod record;
pub mod request;
pub mod rotation;
pub mod serving;

pub use bootstrap::{CLIENT_CERT_FILE, ClientCertConfig};
pub use client_identity::ClientIdentity;
pub use csr::Template;
pub use record::Recorder;
pub use serving::{SERVING_CERT_FILE, ServingCertConfig};
