//! The capability bounding set of a pod's unit, as a container runtime computes it:
//!
//! 1. The base set is the vendor unit's own `CapabilityBoundingSet=` when it declares
//!    one (the package is as trusted as the node's image policy lets it be), read with
//!    systemd 252's merge rules (`config_parse_capability_set`: lines are ORed, a `~`
//!    line removes, an empty line or a `~` line on an untouched set replaces it); else
//!    the default set of containerd and CRI-O ([`RUNTIME_DEFAULT`]).
//! 2. `capabilities.add` and `drop` are applied in containerd's order
//!    (`pkg/cri/.../container_create_linux.go`): `add: [ALL]` first, then `drop: [ALL]`,
//!    then the single adds, then the single drops. So `drop: [ALL]` with
//!    `add: [NET_BIND_SERVICE]` leaves exactly that one. Names are case-insensitive and
//!    may carry the `CAP_` prefix; an unknown name is refused, never skipped.
//!
//! Ambient capabilities: the runtimes give a non-root container none (its capabilities
//! vanish at `execve`), so systemk adds none either; a vendor `AmbientCapabilities=` (a
//! packaged daemon running as its own user, e.g. a web server binding port 80) is kept
//! as far as the bounding set still holds it, since systemd refuses to start a unit
//! whose ambient set exceeds its bounding set.
//!
//! Layer 2: pure.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Capabilities;

use super::error::{Error, Result};

/// Every capability systemd 252 knows, by number (`linux/capability.h`, up to 6.x).
const ALL: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// containerd's and CRI-O's default set (containerd `oci.defaultUnixCaps`).
pub const RUNTIME_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Capabilities that make a process sharing the host's namespaces the host's root:
/// mounting over what the confinement hides (`SYS_ADMIN`), other processes' memory and
/// roots (`SYS_PTRACE`), kernel modules, raw I/O and `/dev/mem`, file handles past any
/// path (`DAC_READ_SEARCH`, the "shocker" escape), rebooting the host, the LSM policy,
/// BPF and perf. A pod may `add` them only when privileged.
pub const HOST_ROOT: [&str; 10] = [
    "SYS_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "DAC_READ_SEARCH",
    "SYS_BOOT",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "BPF",
    "PERFMON",
];

/// A set of capabilities, by name without the `CAP_` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapabilitySet(BTreeSet<&'static str>);

impl CapabilitySet {
    /// The runtimes' default set.
    pub fn runtime_default() -> Self {
        Self(RUNTIME_DEFAULT.into_iter().collect())
    }

    fn all() -> Self {
        Self(ALL.into_iter().collect())
    }

    /// Whether `name` (without `CAP_`) is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// The value of a `CapabilityBoundingSet=` or `AmbientCapabilities=` line; empty
    /// means the empty set (systemd 252 reads an empty assignment so).
    pub fn directive(&self) -> String {
        self.0
            .iter()
            .map(|name| format!("CAP_{name}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The bounding set vendor `CapabilityBoundingSet=` lines describe, `None` when
    /// there are none.
    pub fn from_vendor_lines(lines: &[&str]) -> Result<Option<Self>> {
        merge_lines("CapabilityBoundingSet", lines, &Self::all())
    }

    /// `self` with a container's `capabilities` applied, in containerd's order.
    pub fn apply(self, container: &str, asked: Option<&Capabilities>) -> Result<Self> {
        let Some(asked) = asked else {
            return Ok(self);
        };
        let add = names(container, "add", asked.add.as_deref())?;
        let drop = names(container, "drop", asked.drop.as_deref())?;
        let mut set = self;
        if add.all {
            set = Self::all();
        }
        if drop.all {
            set = Self::default();
        }
        Ok(set.with(&add.single).without(&drop.single))
    }

    /// The members of `self` that are also in `other`.
    pub fn intersect(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0).copied().collect())
    }

    fn with(mut self, other: &Self) -> Self {
        self.0.extend(other.0.iter().copied());
        self
    }

    fn without(mut self, other: &Self) -> Self {
        self.0.retain(|name| !other.contains(name));
        self
    }
}

/// The capabilities vendor `AmbientCapabilities=` lines name, `None` without lines.
pub fn vendor_ambient(lines: &[&str]) -> Result<Option<CapabilitySet>> {
    merge_lines("AmbientCapabilities", lines, &CapabilitySet::default())
}

/// systemd 252's `config_parse_capability_set` over several lines: a line replaces the
/// set when it is empty, or when the set still holds its initial value; otherwise it is
/// ORed in, or removed with `~`.
fn merge_lines(
    key: &str,
    lines: &[&str],
    initial: &CapabilitySet,
) -> Result<Option<CapabilitySet>> {
    let mut set: Option<CapabilitySet> = None;
    for line in lines {
        let (invert, names) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, *line),
        };
        let sum = CapabilitySet(
            names
                .split_whitespace()
                .map(|word| {
                    known(word).ok_or_else(|| Error::InvalidVendorUnit {
                        line: format!("{key}={line}"),
                        why: "it names a capability systemd 252 does not know",
                    })
                })
                .collect::<Result<_>>()?,
        );
        let current = set.take().unwrap_or_else(|| initial.clone());
        set = Some(match (sum.0.is_empty() || current == *initial, invert) {
            (true, false) => sum,
            (true, true) => CapabilitySet::all().without(&sum),
            (false, false) => current.with(&sum),
            (false, true) => current.without(&sum),
        });
    }
    Ok(set)
}

struct Names {
    all: bool,
    single: CapabilitySet,
}

fn names(container: &str, field: &str, list: Option<&[String]>) -> Result<Names> {
    let mut out = Names {
        all: false,
        single: CapabilitySet::default(),
    };
    for name in list.unwrap_or_default() {
        if name.eq_ignore_ascii_case("ALL") {
            out.all = true;
            continue;
        }
        let cap = known(name).ok_or_else(|| Error::Unsupported {
            what: format!(
                "capabilities.{field} {name:?} in container {container}: not a Linux capability"
            ),
        })?;
        out.single.0.insert(cap);
    }
    Ok(out)
}

/// The canonical name of a capability given as `NET_ADMIN`, `CAP_NET_ADMIN` or
/// lower case.
fn known(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    ALL.into_iter().find(|cap| *cap == bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(add: &[&str], drop: &[&str]) -> Capabilities {
        let list = |l: &[&str]| Some(l.iter().map(|s| (*s).to_owned()).collect());
        Capabilities {
            add: list(add),
            drop: list(drop),
        }
    }

    fn names_of(set: &CapabilitySet) -> Vec<&'static str> {
        set.0.iter().copied().collect()
    }

    #[test]
    fn default_set_is_the_runtimes() {
        let set = CapabilitySet::runtime_default();
        assert_eq!(set.0.len(), 14);
        assert!(set.contains("NET_BIND_SERVICE"));
        assert!(!set.contains("SYS_ADMIN"));
        assert!(!set.contains("SYS_PTRACE"));
        assert!(!set.contains("DAC_READ_SEARCH"));
    }

    #[test]
    fn add_and_drop_in_containerd_order() {
        let base = CapabilitySet::runtime_default;
        let none = base().apply("c", Some(&caps(&[], &["ALL"]))).unwrap();
        assert_eq!(none.directive(), "");
        let one = base()
            .apply("c", Some(&caps(&["net_bind_service"], &["ALL"])))
            .unwrap();
        assert_eq!(one.directive(), "CAP_NET_BIND_SERVICE");
        let all_but = base()
            .apply("c", Some(&caps(&["ALL"], &["CAP_SYS_ADMIN"])))
            .unwrap();
        assert_eq!(all_but.0.len(), 40);
        assert!(!all_but.contains("SYS_ADMIN"));
        let plus = base()
            .apply("c", Some(&caps(&["NET_ADMIN"], &["KILL"])))
            .unwrap();
        assert!(plus.contains("NET_ADMIN") && !plus.contains("KILL"));
        assert_eq!(base().apply("c", None).unwrap(), base());
    }

    #[test]
    fn unknown_capabilities_are_refused() {
        for bad in ["NET_ADMINX", "", "CAP_", "ALL_THE_THINGS"] {
            let err = CapabilitySet::runtime_default().apply("c", Some(&caps(&[bad], &[])));
            assert!(matches!(err, Err(Error::Unsupported { .. })), "{bad:?}");
            let err = CapabilitySet::runtime_default().apply("c", Some(&caps(&[], &[bad])));
            assert!(matches!(err, Err(Error::Unsupported { .. })), "{bad:?}");
        }
    }

    #[test]
    fn vendor_lines_merge_as_systemd_does() {
        let read = |lines: &[&str]| CapabilitySet::from_vendor_lines(lines).unwrap();
        assert_eq!(read(&[]), None);
        assert_eq!(
            names_of(&read(&["CAP_NET_BIND_SERVICE", "CAP_SETUID CAP_SETGID"]).unwrap()),
            ["NET_BIND_SERVICE", "SETGID", "SETUID"]
        );
        let inverted = read(&["~CAP_SYS_ADMIN CAP_SYS_PTRACE"]).unwrap();
        assert_eq!(inverted.0.len(), 39);
        let narrowed = read(&["CAP_CHOWN CAP_KILL", "~CAP_KILL"]).unwrap();
        assert_eq!(names_of(&narrowed), ["CHOWN"]);
        assert_eq!(read(&["CAP_CHOWN", ""]).unwrap().directive(), "");
        assert!(CapabilitySet::from_vendor_lines(&["CAP_NOPE"]).is_err());
    }

    #[test]
    fn vendor_ambient_lines() {
        let read = |lines: &[&str]| vendor_ambient(lines).unwrap();
        assert_eq!(read(&[]), None);
        let set = read(&["CAP_NET_BIND_SERVICE"]).unwrap();
        let bounded = set.intersect(&CapabilitySet::runtime_default());
        assert_eq!(bounded.directive(), "CAP_NET_BIND_SERVICE");
        let dropped = set.intersect(&CapabilitySet::default());
        assert_eq!(dropped.directive(), "");
    }
}
