//! Node resources and eviction, as the kubelet's eviction manager and node allocatable:
//! [`threshold`] parses `--eviction-hard` and decides which thresholds are crossed,
//! [`reserved`] parses `--system-reserved`/`--kube-reserved` and computes allocatable and
//! the pods' slice limits, [`monitor`] evicts a pod when a threshold is crossed
//! ([`marker`] marks it for the reconciler), [`observe`] reads the signals off the machine, [`rank`] orders pods for eviction and words the `Evicted`
//! message. The decisions are pure and unit-tested with the kubelet's own cases. Layer 4.

pub mod marker;
pub mod monitor;
pub mod observe;
pub mod rank;
pub mod reserved;
pub mod threshold;

pub use observe::{Observations, observe};
pub use rank::{
    Candidate, ContainerUsage, SYSTEM_CRITICAL_PRIORITY, eviction_message, is_critical, pick, rank,
};
pub use reserved::{Reservation, Resources};
pub use threshold::{
    DEFAULT_EVICTION_HARD, Observation, Pressure, Signal, Threshold, ThresholdValue, Thresholds,
    format_amount, format_binary,
};
