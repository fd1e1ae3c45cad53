//! Layer 4: the reconciler: desired pods versus systemd units, restarts and status.
//!
//! [`restart`] decides when a container runs again, [`init_order`] which init container
//! is next, [`qos`] gives the QoS class of a spec and [`status`] turns observations into
//! the `PodStatus` the kubelet would post. All four are pure: the reconciler feeds them
//! observations and the current time. [`PodDirs`] owns the pods' directories on disk.
//! [`plan_container`] is the one path from a container to its unit (the reconciler and
//! `systemk render` share it), [`status::build`] the one path to a pod's status, and
//! [`PodState`] what a pod keeps between passes, changed only through its methods.

pub mod admission;
mod blocking;
mod container_unit;
mod context;
pub mod deadline;
pub mod desired;
mod dirs;
pub mod env;
mod error;
pub mod eviction;
pub mod failure;
pub mod fields;
pub mod health;
pub mod hook;
mod host_paths;
pub mod init_order;
pub mod installing;
mod live;
pub mod metrics;
mod mounts;
pub mod objects;
pub mod observe;
mod plan;
pub mod probe;
mod progress;
mod progress_channel;
pub mod qos;
mod reconciler;
mod records;
pub mod restart;
pub mod service_link;
pub mod slice;
pub mod start_failure;
mod state;
pub mod status;
mod subpath;
mod termination_file;
pub mod termination_message;
pub mod volumes;
mod worker;

pub use container_unit::{ContainerRef, containers, read_vendor_unit, unit_name};
pub use context::Context;
pub use desired::{
    Applied, CONFIG_HASH_ANNOTATION, CONFIG_SOURCE_ANNOTATION, DesiredPods, RejectReason, Rejected,
    SourceChange, SourceId, SourceUpdate,
};
pub use dirs::{PodDirs, check_uid};
pub use env::{EnvFacts, resolve_container};
pub use error::{Error, Result};
pub use health::ReconcilerHealth;
pub use live::{live_pods, pod_from_units, refreshed_status};
pub use metrics::PodMetrics;
pub use objects::{ObjectLookup, ReferencedObjects, fetch_referenced};
pub use plan::{ContainerInputs, PlanFacts, PlannedUnit, plan_container, stdin_sockets};
pub use progress::{EventKind, Progress};
pub use progress_channel::{
    EVENT_CAPACITY, ProgressReceiver, ProgressSender, Sent, progress_channel,
};
pub use reconciler::{MAX_CONCURRENT_PASSES, run};
pub use records::previous_run;
pub use worker::{Pass, PodState, cleanup, reconcile, terminate};
