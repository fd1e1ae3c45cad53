//! Probes (liveness, readiness, startup) with the kubelet's semantics. Layer 4.
//!
//! [`plan`] turns a container's probe spec into a checked [`Plan`]; [`verdict`] is the
//! kubelet worker's pure state machine (thresholds, initial delay, startup gating, hold
//! after a kill); the handlers [`tcp`], [`http`], [`grpc`] and [`exec`] run one attempt
//! and return an [`Outcome`]; [`task`] runs one probe of one container on one timer;
//! [`effect`] says what results mean for `ready`, `started` and the events.
//!
//! Hosts: like the kubelet, an `httpGet`/`tcpSocket` probe may name any host (checked to
//! be an IP address or a DNS name, never a URL fragment). Pods run on the host network,
//! so the probe reaches nothing from the node's address that the pod's own processes
//! could not reach; what it adds is root's reach (services filtered by uid), bounded to
//! a GET whose body (10 KiB at most) shows in an event. Header names are tokens and
//! values hold no control characters, so nothing can be smuggled into the request.

pub mod effect;
pub mod exec;
pub mod grpc;
pub mod http;
pub mod outcome;
pub mod plan;
pub mod set;
pub mod task;
pub mod tcp;
pub mod verdict;

pub use effect::Probed;
pub use outcome::Outcome;
pub use plan::{Action, Invalid, Kind, Plan, Scheme, container_plans};
pub use set::{PodProbes, Sight, Wiring};
pub use verdict::{Change, Seen, Verdict};
