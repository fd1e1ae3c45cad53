//! Node resources as the kubelet accounts them: `--system-reserved` / `--kube-reserved`
//! (`cpu=100m,memory=1Gi,ephemeral-storage=1Gi,pid=1000`) and the two allocatable
//! figures of pkg/kubelet/cm/node_container_manager_linux.go:
//!
//! - the Node's `allocatable` (`GetNodeAllocatableReservation`): capacity − system-reserved
//!   − kube-reserved − the hard eviction threshold of `memory.available` (memory) and
//!   `nodefs.available` (ephemeral-storage), never below zero;
//! - the limit of the pods' cgroup with `--enforce-node-allocatable=pods`
//!   (`getNodeAllocatableAbsolute`): capacity − system-reserved − kube-reserved, without
//!   the eviction threshold, so that the eviction manager acts before the kernel's OOM
//!   killer does.
//!
//! Pure. Layer 4.

use crate::unit::Quantity;

use super::threshold::{Signal, Thresholds};

/// Amounts of the resources the kubelet reserves (all zero: nothing reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory: u64,
    /// Ephemeral storage (the state directory's file system) in bytes.
    pub ephemeral_storage: u64,
    /// Process IDs.
    pub pids: u64,
}

impl std::str::FromStr for Resources {
    type Err = String;

    /// `name=quantity` pairs separated by commas, names `cpu`, `memory`,
    /// `ephemeral-storage` and `pid` (the kubelet's `--system-reserved` syntax); an empty
    /// text reserves nothing.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut reserved = Resources::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?}: expected <resource>=<quantity>"))?;
            let (name, value) = (name.trim(), value.trim());
            let quantity: Quantity = value.parse().map_err(|err| match err {
                crate::unit::QuantityError::Negative => {
                    format!("resource quantity for {name:?} cannot be negative: {value}")
                }
                other => format!("{name}={value}: {other}"),
            })?;
            let (slot, scale) = match name {
                "cpu" => (&mut reserved.cpu_millis, 3),
                "memory" => (&mut reserved.memory, 0),
                "ephemeral-storage" => (&mut reserved.ephemeral_storage, 0),
                "pid" => (&mut reserved.pids, 0),
                other => return Err(format!("cannot reserve {other:?} resource")),
            };
            *slot = quantity
                .ceil_scaled(scale)
                .ok_or_else(|| format!("{name}={value} is too large"))?;
        }
        Ok(reserved)
    }
}

impl Resources {
    /// `self + other`, saturating.
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory: self.memory.saturating_add(other.memory),
            ephemeral_storage: self
                .ephemeral_storage
                .saturating_add(other.ephemeral_storage),
            pids: self.pids.saturating_add(other.pids),
        }
    }

    /// `self − other`, never below zero ("negative allocatable resources don't make
    /// sense", as the kubelet says).
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory: self.memory.saturating_sub(other.memory),
            ephemeral_storage: self
                .ephemeral_storage
                .saturating_sub(other.ephemeral_storage),
            pids: self.pids.saturating_sub(other.pids),
        }
    }
}

/// What the node keeps from its pods: the two reservations and the hard thresholds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reservation {
    /// `--system-reserved`: for the operating system's daemons (sshd, journald, …).
    pub system: Resources,
    /// `--kube-reserved`: for systemk itself.
    pub kube: Resources,
    /// `--eviction-hard`.
    pub thresholds: Thresholds,
}

impl Reservation {
    /// The hard eviction thresholds as amounts of `capacity` (the kubelet's
    /// `hardEvictionReservation`: only `memory.available` and `nodefs.available` count).
    pub fn eviction(&self, capacity: Resources) -> Resources {
        let amount = |signal, capacity| {
            self.thresholds
                .get(signal)
                .map_or(0, |t| t.quantity(capacity))
        };
        Resources {
            memory: amount(Signal::MemoryAvailable, capacity.memory),
            ephemeral_storage: amount(Signal::NodeFsAvailable, capacity.ephemeral_storage),
            ..Resources::default()
        }
    }

    /// The Node's `allocatable` for `capacity`.
    pub fn allocatable(&self, capacity: Resources) -> Resources {
        capacity.minus(self.system.plus(self.kube).plus(self.eviction(capacity)))
    }

    /// What the pods together may use (the limits of `systemk.slice`): capacity minus
    /// the two reservations — allocatable plus the eviction threshold, as the kubelet's
    /// pods cgroup.
    pub fn pods_limit(&self, capacity: Resources) -> Resources {
        capacity.minus(self.system.plus(self.kube))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;
    const MI: u64 = 1 << 20;

    fn capacity() -> Resources {
        Resources {
            cpu_millis: 4000,
            memory: 8 * GI,
            ephemeral_storage: 100 * GI,
            pids: 4_194_304,
        }
    }

    #[test]
    fn reserved_parses_the_kubelet_syntax() {
        let reserved: Resources = "cpu=100m,memory=1Gi,ephemeral-storage=1Gi,pid=1000"
            .parse()
            .unwrap();
        assert_eq!(
            reserved,
            Resources {
                cpu_millis: 100,
                memory: GI,
                ephemeral_storage: GI,
                pids: 1000,
            }
        );
        assert_eq!("".parse::<Resources>().unwrap(), Resources::default());
        assert_eq!("cpu=1.5".parse::<Resources>().unwrap().cpu_millis, 1500);
        for bad in ["cpu", "gpu=1", "memory=-1Gi", "memory=lots", "cpu=1,,x=2"] {
            assert!(bad.parse::<Resources>().is_err(), "{bad}");
        }
    }

    // The kubelet's TestNodeAllocatableReservationForScheduling cases (kube-reserved,
    // system-reserved and the hard threshold adding up; a percentage of capacity).
    #[test]
    fn allocatable_is_the_kubelets() {
        let reservation = Reservation {
            system: "cpu=50m,memory=150Mi".parse().unwrap(),
            kube: "cpu=100m,memory=100Mi".parse().unwrap(),
            thresholds: "memory.available<100Mi,nodefs.available<10%"
                .parse()
                .unwrap(),
        };
        let allocatable = reservation.allocatable(capacity());
        assert_eq!(allocatable.cpu_millis, 3850);
        assert_eq!(allocatable.memory, 8 * GI - 350 * MI);
        // 10 % as the kubelet's float32 percentage: a few bytes above 10 GiB.
        let ten_percent = ((100 * GI) as f64 * f64::from(0.1_f32)) as u64;
        assert_eq!(ten_percent, 10 * GI + 160);
        assert_eq!(allocatable.ephemeral_storage, 100 * GI - ten_percent);
        assert_eq!(allocatable.pids, 4_194_304);
        let limit = reservation.pods_limit(capacity());
        assert_eq!(limit.memory, 8 * GI - 250 * MI);
        assert_eq!(limit.memory - allocatable.memory, 100 * MI);
    }

    #[test]
    fn allocatable_never_goes_negative() {
        let reservation = Reservation {
            system: "memory=16Gi,cpu=8".parse().unwrap(),
            ..Reservation::default()
        };
        let allocatable = reservation.allocatable(capacity());
        assert_eq!((allocatable.memory, allocatable.cpu_millis), (0, 0));
    }
}
