//! Hard eviction thresholds (`--eviction-hard`) in the kubelet's syntax
//! (`memory.available<100Mi,nodefs.available<10%`), parsed with the kubelet's rules
//! (pkg/kubelet/eviction/helpers.go `parseThresholdStatement`): only `<`; a quantity must be
//! positive; a percentage lies in 0–100 %, and `0%` or `100%` switch the signal off.
//! [`Threshold::met`] is the kubelet's `thresholdsMet`: the threshold's quantity (a
//! percentage of the observed capacity) is more than what is available. Pure. Layer 4.

use std::fmt;

use crate::unit::Quantity;

/// The kubelet's default hard thresholds on Linux (pkg/kubelet/apis/config/v1beta1/
/// defaults_linux.go, current releases). The kubelet has **no** default for
/// `pid.available`: none is set here either.
pub const DEFAULT_EVICTION_HARD: &str =
    "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%";

/// What a threshold watches, by its kubelet name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// `memory.available`: capacity minus the machine's working set.
    MemoryAvailable,
    /// `nodefs.available`: bytes free on the file system of the state directory.
    NodeFsAvailable,
    /// `nodefs.inodesFree`: inodes free there.
    NodeFsInodesFree,
    /// `imagefs.available`: bytes free where images (packages) go.
    ImageFsAvailable,
    /// `imagefs.inodesFree`: inodes free there.
    ImageFsInodesFree,
    /// `pid.available`: process IDs left below `kernel.pid_max`.
    PidAvailable,
}

impl Signal {
    /// Every signal, in the kubelet's order of reclaim (memory first).
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    /// The kubelet's name of the signal.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    /// The resource the kubelet reclaims for it, as named in eviction messages
    /// (`signalToResource`).
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// The node condition it drives (`signalToNodeCondition`).
    pub fn condition(self) -> Pressure {
        match self {
            Signal::MemoryAvailable => Pressure::Memory,
            Signal::PidAvailable => Pressure::Pid,
            _ => Pressure::Disk,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|signal| signal.as_str() == name)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The node conditions thresholds drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pressure {
    /// `MemoryPressure`.
    Memory,
    /// `DiskPressure`.
    Disk,
    /// `PIDPressure`.
    Pid,
}

/// A threshold's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdValue {
    /// An absolute amount, with the text it was given as (shown in eviction messages).
    Quantity {
        /// The amount (bytes, inodes or PIDs).
        value: u64,
        /// As written, e.g. `100Mi`.
        text: String,
    },
    /// A fraction of the observed capacity, 0 < p < 1 (a `f32`, as the kubelet's).
    Percentage(f32),
}

/// One hard threshold: evict when `signal`'s available amount falls below `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What it watches.
    pub signal: Signal,
    /// Below what.
    pub value: ThresholdValue,
}

/// What was observed of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// What is left.
    pub available: u64,
    /// The total it is a part of.
    pub capacity: u64,
}

impl Threshold {
    /// The threshold as an amount of `capacity` (the kubelet's `GetThresholdQuantity`).
    pub fn quantity(&self, capacity: u64) -> u64 {
        match &self.value {
            ThresholdValue::Quantity { value, .. } => *value,
            // As the kubelet: float64(capacity) * float64(percentage), truncated.
            ThresholdValue::Percentage(p) => (capacity as f64 * f64::from(*p)) as u64,
        }
    }

    /// Whether `observed` crosses it: less available than the threshold's quantity.
    pub fn met(&self, observed: Observation) -> bool {
        self.quantity(observed.capacity) > observed.available
    }

    /// The threshold's quantity as the kubelet prints it in messages: as given for an
    /// absolute value, else in the resource's canonical form.
    pub fn display_quantity(&self, capacity: u64) -> String {
        match &self.value {
            ThresholdValue::Quantity { text, .. } => text.clone(),
            ThresholdValue::Percentage(_) => format_amount(self.signal, self.quantity(capacity)),
        }
    }
}

/// An amount of `signal`'s resource as Kubernetes prints it: bytes in binary SI
/// (`50Mi`), counts as plain numbers.
pub fn format_amount(signal: Signal, amount: u64) -> String {
    match signal.resource() {
        "memory" | "ephemeral-storage" => format_binary(amount),
        _ => amount.to_string(),
    }
}

/// `amount` with the largest binary suffix that divides it exactly, as apimachinery's
/// `Quantity.String()` for a `BinarySI` value (`52428800` → `50Mi`, `1536` → `1536`).
pub fn format_binary(amount: u64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut value = amount;
    let mut suffix = "";
    for next in SUFFIXES {
        if value == 0 || !value.is_multiple_of(1024) {
            break;
        }
        value /= 1024;
        suffix = next;
    }
    format!("{value}{suffix}")
}

/// The configured hard thresholds, at most one per signal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds(Vec<Threshold>);

impl Thresholds {
    /// No thresholds: nothing is ever evicted.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// The threshold of `signal`, if one is set.
    pub fn get(&self, signal: Signal) -> Option<&Threshold> {
        self.0.iter().find(|t| t.signal == signal)
    }

    /// Every threshold, in the kubelet's order of reclaim (memory first).
    pub fn iter(&self) -> impl Iterator<Item = &Threshold> {
        Signal::ALL
            .into_iter()
            .filter_map(|signal| self.get(signal))
    }

    /// The thresholds `observe` shows crossed; a signal without observation is skipped.
    pub fn met(&self, observe: impl Fn(Signal) -> Option<Observation>) -> Vec<&Threshold> {
        self.iter()
            .filter(|t| observe(t.signal).is_some_and(|o| t.met(o)))
            .collect()
    }
}

impl std::str::FromStr for Thresholds {
    type Err = String;

    /// `signal<value` statements separated by commas; an empty text sets none.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut thresholds: Vec<Threshold> = Vec::new();
        for statement in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, value)) = statement.split_once('<') else {
                return Err(format!(
                    "{statement:?}: expected <signal><<quantity or percentage> (only \"<\" is supported)"
                ));
            };
            let (name, value) = (name.trim(), value.trim());
            let signal =
                Signal::parse(name).ok_or_else(|| format!("unsupported eviction signal {name}"))?;
            if thresholds.iter().any(|t| t.signal == signal) {
                return Err(format!("eviction signal {signal} is given twice"));
            }
            if let Some(threshold) = parse_statement(signal, value)? {
                thresholds.push(threshold);
            }
        }
        Ok(Self(thresholds))
    }
}

/// One threshold; `None` for `0%` and `100%`, which the kubelet ignores.
fn parse_statement(signal: Signal, value: &str) -> Result<Option<Threshold>, String> {
    if let Some(number) = value.strip_suffix('%') {
        if value == "0%" || value == "100%" {
            return Ok(None);
        }
        let percent: f64 = number
            .parse()
            .map_err(|_| format!("eviction threshold {signal}: {value:?} is not a percentage"))?;
        let fraction = (percent / 100.0) as f32;
        if !fraction.is_finite() || fraction < 0.0 {
            return Err(format!(
                "eviction percentage threshold {signal} must be >= 0%: {value}"
            ));
        }
        if fraction > 1.0 {
            return Err(format!(
                "eviction percentage threshold {signal} must be <= 100%: {value}"
            ));
        }
        return Ok(Some(Threshold {
            signal,
            value: ThresholdValue::Percentage(fraction),
        }));
    }
    let quantity: Quantity = value
        .parse()
        .map_err(|err| format!("eviction threshold {signal}: {value:?}: {err}"))?;
    let amount = quantity
        .ceil_scaled(0)
        .ok_or_else(|| format!("eviction threshold {signal}: {value:?} is too large"))?;
    if amount == 0 {
        return Err(format!(
            "eviction threshold {signal} must be positive: {value}"
        ));
    }
    Ok(Some(Threshold {
        signal,
        value: ThresholdValue::Quantity {
            value: amount,
            text: value.to_owned(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Thresholds, String> {
        text.parse()
    }

    #[test]
    fn defaults_are_the_kubelets() {
        let defaults = parse(DEFAULT_EVICTION_HARD).unwrap();
        let memory = defaults.get(Signal::MemoryAvailable).unwrap();
        assert_eq!(memory.quantity(0), 100 * 1024 * 1024);
        assert_eq!(
            defaults.get(Signal::NodeFsAvailable).unwrap().value,
            ThresholdValue::Percentage(0.1)
        );
        assert!(defaults.get(Signal::NodeFsInodesFree).is_some());
        assert!(defaults.get(Signal::ImageFsAvailable).is_some());
        assert!(defaults.get(Signal::PidAvailable).is_none());
    }

    // The cases of the kubelet's TestParseThresholdConfig that apply to hard thresholds.
    #[test]
    fn kubelet_parse_cases() {
        assert_eq!(parse("").unwrap(), Thresholds::none());
        assert!(parse("memory.available<150Mi,nodefs.available<10%").is_ok());
        // "invalid-signal"
        assert!(parse("mem.available<150Mi").is_err());
        // "hard-signal-negative"
        assert!(parse("memory.available<-150Mi").is_err());
        // "hard-signal-negative-percentage"
        assert!(parse("memory.available<-15%").is_err());
        // "hard-signal-percentage-greater-than-100%"
        assert!(parse("memory.available<150%").is_err());
        // "disable via 0%" and "disable via 100%"
        assert_eq!(parse("memory.available<0%").unwrap(), Thresholds::none());
        assert_eq!(parse("memory.available<100%").unwrap(), Thresholds::none());
        // A zero quantity is not positive.
        assert!(parse("memory.available<0").is_err());
        assert!(parse("memory.available>1Gi").is_err());
        assert!(parse("memory.available<1Gi,memory.available<2Gi").is_err());
        let inodes = parse("nodefs.inodesFree<5%,pid.available<1000").unwrap();
        assert_eq!(inodes.get(Signal::PidAvailable).unwrap().quantity(0), 1000);
    }

    #[test]
    fn met_is_less_available_than_the_threshold() {
        let thresholds = parse("memory.available<100Mi,nodefs.available<10%").unwrap();
        let memory = thresholds.get(Signal::MemoryAvailable).unwrap();
        let mib = 1024 * 1024;
        assert!(memory.met(Observation {
            available: 100 * mib - 1,
            capacity: 0
        }));
        assert!(!memory.met(Observation {
            available: 100 * mib,
            capacity: 0
        }));
        let disk = thresholds.get(Signal::NodeFsAvailable).unwrap();
        assert!(disk.met(Observation {
            available: 9,
            capacity: 100
        }));
        assert!(!disk.met(Observation {
            available: 10,
            capacity: 100
        }));
        let met = thresholds.met(|signal| {
            (signal == Signal::NodeFsAvailable).then_some(Observation {
                available: 1,
                capacity: 100,
            })
        });
        assert_eq!(met.len(), 1);
        assert_eq!(met[0].signal.condition(), Pressure::Disk);
    }

    #[test]
    fn amounts_print_like_kubernetes() {
        assert_eq!(format_binary(52_428_800), "50Mi");
        assert_eq!(format_binary(1536), "1536");
        assert_eq!(format_binary(0), "0");
        assert_eq!(format_binary(3 << 30), "3Gi");
        let disk = parse("nodefs.available<10%").unwrap();
        let disk = disk.get(Signal::NodeFsAvailable).unwrap();
        assert_eq!(disk.display_quantity(10 << 20), "1Mi");
        assert_eq!(format_amount(Signal::PidAvailable, 2048), "2048");
    }
}
