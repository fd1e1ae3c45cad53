//! Probes (liveness, readiness, startup) with the kubelet's semantics. Layer 4.
//!
//! [`plan`] turns a container's probe spec into a checked [`Plan`]; [`verdict`] is the
//! kubelet worker's pure state machine (thresholds, initial delay, startup gating, hold
//! after a kill); the handlers [`tcp`], [`http`], [`grpc`] and [`exec`] run one attempt
//! and return an [`Outcome`].

pub mod effect;
pub mod exec;
pub mod grpc;
pub mod http;
pub mod outcome;
pub mod plan;
pub mod task;
pub mod tcp;
pub mod verdict;

pub use outcome::Outcome;
pub use plan::{Action, Invalid, Kind, Plan, Scheme};
pub use verdict::{Change, Seen, Verdict};
