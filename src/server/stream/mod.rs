//! The streaming protocols of exec, attach and port-forward, below the handlers: SPDY/3.1,
//! which API servers up to at least 1.35 speak to the kubelet for all three ([`spdy`]); the
//! Kubernetes channel protocols inside WebSocket messages, for API servers and clients that
//! speak WebSocket to the kubelet ([`channel`]); what each stream is for ([`kind`]); how
//! port-forward's streams pair up ([`pairs`]); and the exit status exec reports ([`status`]). Pure code over bytes and headers, unit-tested and
//! fuzzed; it opens no socket and starts no task. Layer: server.

pub mod channel;
pub mod error;
pub mod kind;
pub mod pairs;
pub mod spdy;
pub mod status;

pub use error::ProtocolError;
