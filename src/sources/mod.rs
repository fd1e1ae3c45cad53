//! Layer 5: sources of desired pods — static manifests ([`manifests`]) and the Kubernetes API
//! ([`kube`]) — and the one interface through which every source feeds the reconciler.
//!
//! Every source keeps the contract of [`crate::pod::desired`]: it runs as its own task and
//! sends [`SourceUpdate`]s: the **complete** desired set of pods it knows, first as soon as
//! it knows its initial set, then what changed. The vocabulary ([`SourceId`], [`SourceUpdate`],
//! [`DesiredPods`]) lives in `pod`, the layer below, which merges the sets; it is
//! re-exported here for the sources' convenience.
//!
//! Sources describe what is wanted, never what runs: `manifests` uses only the desired-pods
//! vocabulary of `pod`, never its reconciler, and never `systemd`. Only `kube` reads the reconciler's `pod::Progress` (a lower layer), to report
//! status back to the API; it never touches units.

mod error;
pub mod kube;
pub mod manifests;

pub use crate::pod::desired::{
    Applied, CONFIG_HASH_ANNOTATION, CONFIG_SOURCE_ANNOTATION, DesiredPods, RejectReason, Rejected,
    SourceChange, SourceId, SourceUpdate,
};
pub use error::{Error, Result};
