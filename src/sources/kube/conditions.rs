//! The node's conditions: Ready from the reconciler's health ([`Readiness`]),
//! MemoryPressure, DiskPressure and PIDPressure from the machine's usage, with the
//! kubelet's reasons and messages. Pure: usage, readiness, the conditions posted before
//! and the time come in, so thresholds and transition times are unit-tested. Layer 5.

use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::host::HostUsage;
use super::readiness::Readiness;

/// Memory pressure below this much available memory: the kubelet's default hard eviction
/// threshold `memory.available<100Mi`.
pub const MEMORY_AVAILABLE_MIN: u64 = 100 * 1024 * 1024;

/// Disk pressure below this percentage of the state file system free: the kubelet's
/// default `nodefs.available<10%`.
pub const STORAGE_AVAILABLE_MIN_PERCENT: u64 = 10;

/// PID pressure below this percentage of `pid_max` free. The kubelet has no default
/// `pid.available` threshold; 10 % mirrors the disk one.
pub const PIDS_AVAILABLE_MIN_PERCENT: u64 = 10;

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

/// The pressures `usage` puts the node under.
pub fn pressures(usage: &HostUsage) -> Pressures {
    Pressures {
        memory: usage.memory_available < MEMORY_AVAILABLE_MIN,
        disk: below_percent(
            usage.storage_available,
            usage.storage_total,
            STORAGE_AVAILABLE_MIN_PERCENT,
        ),
        pids: below_percent(
            usage.pid_max.saturating_sub(usage.processes),
            usage.pid_max,
            PIDS_AVAILABLE_MIN_PERCENT,
        ),
    }
}

/// `part` is less than `percent` % of `total` (never for an unknown, zero total).
fn below_percent(part: u64, total: u64, percent: u64) -> bool {
    total > 0 && u128::from(part) * 100 < u128::from(total) * u128::from(percent)
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

    const GIB: u64 = 1024 * 1024 * 1024;

    fn healthy() -> HostUsage {
        HostUsage {
            memory_available: 2 * GIB,
            storage_available: 50 * GIB,
            storage_total: 100 * GIB,
            processes: 300,
            pid_max: 4_194_304,
        }
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
        assert_eq!(pressures(&healthy()), none);
    }

    #[test]
    fn memory_below_100_mib_is_pressure() {
        let usage = HostUsage {
            memory_available: MEMORY_AVAILABLE_MIN - 1,
            ..healthy()
        };
        assert!(pressures(&usage).memory);
        let usage = HostUsage {
            memory_available: MEMORY_AVAILABLE_MIN,
            ..healthy()
        };
        assert!(!pressures(&usage).memory);
    }

    #[test]
    fn disk_below_ten_percent_is_pressure() {
        let usage = HostUsage {
            storage_available: 9 * GIB,
            ..healthy()
        };
        assert!(pressures(&usage).disk);
        let usage = HostUsage {
            storage_available: 10 * GIB,
            ..healthy()
        };
        assert!(!pressures(&usage).disk);
    }

    #[test]
    fn pids_near_the_limit_is_pressure() {
        let usage = HostUsage {
            processes: 950,
            pid_max: 1000,
            ..healthy()
        };
        assert!(pressures(&usage).pids);
    }

    #[test]
    fn unknown_totals_are_no_pressure() {
        let usage = HostUsage {
            storage_total: 0,
            storage_available: 0,
            pid_max: 0,
            ..healthy()
        };
        assert!(!pressures(&usage).disk && !pressures(&usage).pids);
    }

    #[test]
    fn transition_time_kept_while_status_holds() {
        let first = node_conditions(&Readiness::Ready, pressures(&healthy()), &[], at(100));
        let second = node_conditions(&Readiness::Ready, pressures(&healthy()), &first, at(200));
        assert_eq!(second[0].last_transition_time, Some(Time(at(100))));
        assert_eq!(second[0].last_heartbeat_time, Some(Time(at(200))));
        assert_eq!(without_heartbeats(&first), without_heartbeats(&second));
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let first = node_conditions(&Readiness::Ready, pressures(&healthy()), &[], at(100));
        let low = HostUsage {
            memory_available: 1,
            ..healthy()
        };
        let second = node_conditions(&Readiness::Ready, pressures(&low), &first, at(200));
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
