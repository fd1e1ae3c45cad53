//! The node's conditions: Ready from the reconciler's health ([`Readiness`]),
//! MemoryPressure, DiskPressure and PIDPressure from the hard eviction thresholds
//! (`--eviction-hard`) crossed by the machine's observed signals, with the kubelet's
//! reasons and messages. Pure: observations, readiness, the conditions posted before and
//! the time come in, so thresholds and transition times are unit-tested. Layer 5.

use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::readiness::Readiness;
use crate::pod::eviction::{Observations, Pressure, Thresholds};

/// Whether each pressure holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pressures {
    /// Too little memory available.
    pub memory: bool,
    /// Too little disk available.
    pub disk: bool,
    /// Too few process IDs left.
    pub pids: bool,
}

/// The pressures `observations` put the node under: a condition holds while any hard
/// threshold of its signals (`--eviction-hard`) is crossed, as the kubelet's
/// `nodeConditions(thresholdsMet)`.
pub fn pressures(thresholds: &Thresholds, observations: &Observations) -> Pressures {
    let met = thresholds.met(|signal| observations.get(&signal).copied());
    let holds = |pressure| met.iter().any(|t| t.signal.condition() == pressure);
    Pressures {
        memory: holds(Pressure::Memory),
        disk: holds(Pressure::Disk),
        pids: holds(Pressure::Pid),
    }
}

/// The four conditions for `readiness` and `pressures` at `now`. A condition whose status
/// is the same as in `previous` keeps its transition time; heartbeats are always `now`.
pub fn node_conditions(
    readiness: &Readiness,
    pressures: Pressures,
    previous: &[NodeCondition],
    now: Timestamp,
) -> Vec<NodeCondition> {
    let pressure = |type_: &str, on: bool, reason_on: &str, reason_off: &str, what: &str| {
        let (reason, message) = if on {
            (reason_on, format!("systemk has {what} pressure"))
        } else {
            (
                reason_off,
                format!("systemk has sufficient {what} available"),
            )
        };
        condition(type_, on, reason, &message, previous, now)
    };
    let ready = match readiness {
        Readiness::Ready => condition(
            "Ready",
            true,
            "KubeletReady",
            "systemk is posting ready status",
            previous,
            now,
        ),
        Readiness::NotReady(problems) => condition(
            "Ready",
            false,
            "KubeletNotReady",
            &problems.join(", "),
            previous,
            now,
        ),
    };
    vec![
        ready,
        pressure(
            "MemoryPressure",
            pressures.memory,
            "KubeletHasInsufficientMemory",
            "KubeletHasSufficientMemory",
            "memory",
        ),
        pressure(
            "DiskPressure",
            pressures.disk,
            "KubeletHasDiskPressure",
            "KubeletHasNoDiskPressure",
            "disk",
        ),
        pressure(
            "PIDPressure",
            pressures.pids,
            "KubeletHasInsufficientPID",
            "KubeletHasSufficientPID",
            "PID",
        ),
    ]
}

fn condition(
    type_: &str,
    on: bool,
    reason: &str,
    message: &str,
    previous: &[NodeCondition],
    now: Timestamp,
) -> NodeCondition {
    let status = if on { "True" } else { "False" };
    let transition = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    NodeCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(transition),
    }
}

/// The conditions without their heartbeat times: what "the status changed" compares.
pub fn without_heartbeats(conditions: &[NodeCondition]) -> Vec<NodeCondition> {
    conditions
        .iter()
        .map(|c| NodeCondition {
            last_heartbeat_time: None,
            ..c.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::eviction::{DEFAULT_EVICTION_HARD, Observation, Signal};

    const GIB: u64 = 1024 * 1024 * 1024;

    fn healthy() -> Observations {
        let observed = |available, capacity| Observation {
            available,
            capacity,
        };
        Observations::from([
            (Signal::MemoryAvailable, observed(2 * GIB, 4 * GIB)),
            (Signal::NodeFsAvailable, observed(50 * GIB, 100 * GIB)),
            (Signal::NodeFsInodesFree, observed(1_000_000, 2_000_000)),
            (Signal::ImageFsAvailable, observed(50 * GIB, 100 * GIB)),
            (Signal::PidAvailable, observed(4_194_000, 4_194_304)),
        ])
    }

    fn with(signal: Signal, available: u64) -> Observations {
        let mut observations = healthy();
        observations.get_mut(&signal).unwrap().available = available;
        observations
    }

    fn defaults() -> Thresholds {
        DEFAULT_EVICTION_HARD.parse().unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn healthy_host_has_no_pressure() {
        let none = Pressures {
            memory: false,
            disk: false,
            pids: false,
        };
        assert_eq!(pressures(&defaults(), &healthy()), none);
    }

    #[test]
    fn memory_below_100_mib_is_pressure() {
        let limit = 100 * 1024 * 1024;
        let low = with(Signal::MemoryAvailable, limit - 1);
        assert!(pressures(&defaults(), &low).memory);
        let enough = with(Signal::MemoryAvailable, limit);
        assert!(!pressures(&defaults(), &enough).memory);
    }

    #[test]
    fn disk_follows_the_configured_thresholds() {
        let low = with(Signal::NodeFsAvailable, 9 * GIB);
        assert!(pressures(&defaults(), &low).disk);
        // 10 % is the kubelet's float32 percentage: 160 bytes above 10 GiB of 100 GiB.
        assert!(pressures(&defaults(), &with(Signal::NodeFsAvailable, 10 * GIB)).disk);
        assert!(!pressures(&defaults(), &with(Signal::NodeFsAvailable, 10 * GIB + 160)).disk);
        assert!(pressures(&defaults(), &with(Signal::NodeFsInodesFree, 10)).disk);
        // imagefs.available<15% of the defaults.
        assert!(pressures(&defaults(), &with(Signal::ImageFsAvailable, 14 * GIB)).disk);
        let relaxed: Thresholds = "nodefs.available<5%".parse().unwrap();
        assert!(!pressures(&relaxed, &low).disk);
        assert!(pressures(&Thresholds::none(), &low) == pressures(&Thresholds::none(), &healthy()));
    }

    #[test]
    fn pids_only_with_a_pid_threshold() {
        let low = with(Signal::PidAvailable, 100);
        // The kubelet has no default pid.available threshold.
        assert!(!pressures(&defaults(), &low).pids);
        let pid: Thresholds = "pid.available<10%".parse().unwrap();
        assert!(pressures(&pid, &low).pids);
    }

    #[test]
    fn unobserved_signals_are_no_pressure() {
        assert!(!pressures(&defaults(), &Observations::new()).disk);
    }

    #[test]
    fn transition_time_kept_while_status_holds() {
        let calm = pressures(&defaults(), &healthy());
        let first = node_conditions(&Readiness::Ready, calm, &[], at(100));
        let second = node_conditions(&Readiness::Ready, calm, &first, at(200));
        assert_eq!(second[0].last_transition_time, Some(Time(at(100))));
        assert_eq!(second[0].last_heartbeat_time, Some(Time(at(200))));
        assert_eq!(without_heartbeats(&first), without_heartbeats(&second));
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let calm = pressures(&defaults(), &healthy());
        let first = node_conditions(&Readiness::Ready, calm, &[], at(100));
        let low = pressures(&defaults(), &with(Signal::MemoryAvailable, 1));
        let second = node_conditions(&Readiness::Ready, low, &first, at(200));
        let memory = second.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(memory.status, "True");
        assert_eq!(memory.last_transition_time, Some(Time(at(200))));
        assert_ne!(without_heartbeats(&first), without_heartbeats(&second));
    }
}

#[cfg(test)]
mod ready_tests {
    use super::*;

    #[test]
    fn not_ready_lists_the_problems_and_moves_the_transition() {
        let none = Pressures {
            memory: false,
            disk: false,
            pids: false,
        };
        let t = |s| Timestamp::from_second(s).unwrap();
        let ready = node_conditions(&Readiness::Ready, none, &[], t(100));
        let problems = Readiness::NotReady(vec!["a".to_owned(), "b".to_owned()]);
        let not_ready = node_conditions(&problems, none, &ready, t(200));
        assert_eq!(not_ready[0].status, "False");
        assert_eq!(not_ready[0].reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(not_ready[0].message.as_deref(), Some("a, b"));
        assert_eq!(not_ready[0].last_transition_time, Some(Time(t(200))));
        let again = node_conditions(&Readiness::Ready, none, &not_ready, t(300));
        assert_eq!(again[0].status, "True");
        assert_eq!(again[0].last_transition_time, Some(Time(t(300))));
    }
}
