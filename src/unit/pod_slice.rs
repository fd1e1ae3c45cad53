//! Pod-level cgroups as systemd slices, in the kubelet's layout (pkg/kubelet/cm,
//! `qos_container_manager_linux.go`, `pod_container_manager_linux.go` with the systemd
//! cgroup driver): `systemk.slice` stands for `kubepods.slice` and carries node
//! allocatable (`slice.rs`); Burstable and BestEffort pods sit under a QoS slice,
//! Guaranteed pods directly under the root:
//!
//! ```text
//! systemk.slice                               node allocatable
//! ├─ systemk-pod<uid>.slice                   a Guaranteed pod
//! ├─ systemk-burstable.slice                  CPUWeight= of its pods' CPU requests
//! │  └─ systemk-burstable-pod<uid>.slice      a Burstable pod
//! └─ systemk-besteffort.slice                 CPUWeight=1 (the kubelet's 2 shares)
//!    └─ systemk-besteffort-pod<uid>.slice     a BestEffort pod
//! ```
//!
//! systemd reads the hierarchy from the dashes of a slice's name (systemd.slice(5)), so the
//! UID's dashes become underscores, as the kubelet's systemd driver does; a UID is checked
//! to be UUID-shaped first, so no pod can name a slice outside its place, or another
//! pod's. A pod slice's limits are the kubelet's `ResourceConfigForPod` (`limits.rs`).
//! Pure: names and unit files only. Layer 2.

mod limits;

use std::fmt;

use super::error::Result;
use super::file::UnitFile;
use super::name::{NameError, is_dns_label, is_dns_subdomain};
use super::resources::cpu_weight;
use super::slice::SLICE;

pub use limits::{PodSliceLimits, pod_cpu_request_millis, pod_slice_limits};

/// The kubelet's three QoS tiers, each with its place in the slice tree. The pod layer
/// classifies (`pod::qos`); this layer only places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosTier {
    /// Directly under `systemk.slice`.
    Guaranteed,
    /// Under `systemk-burstable.slice`.
    Burstable,
    /// Under `systemk-besteffort.slice`.
    BestEffort,
}

impl QosTier {
    /// Every tier, in the kubelet's order.
    pub const ALL: [Self; 3] = [Self::Guaranteed, Self::Burstable, Self::BestEffort];

    /// The stem of slice names below this tier: the root's `systemk` for Guaranteed.
    fn stem(self) -> &'static str {
        match self {
            Self::Guaranteed => "systemk",
            Self::Burstable => "systemk-burstable",
            Self::BestEffort => "systemk-besteffort",
        }
    }
}

const SLICE_SUFFIX: &str = ".slice";
const POD_MARK: &str = "-pod";
/// The longest pod UID taken: a UUID has 36 characters; this leaves room for other
/// UUID-shaped UIDs and keeps every name far below systemd's 255.
const UID_MAX: usize = 64;

/// A validated name of one of systemk's slices: the root, a QoS slice or a pod slice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SliceName(String);

impl SliceName {
    /// `systemk.slice`, the root with node allocatable.
    pub fn root() -> Self {
        Self(SLICE.to_owned())
    }

    /// The slice the pods of `tier` sit under: the root for Guaranteed.
    pub fn of_tier(tier: QosTier) -> Self {
        Self(format!("{}{SLICE_SUFFIX}", tier.stem()))
    }

    /// The slice of the pod `uid` of `tier`, e.g. `systemk-burstable-pod<uid>.slice` with
    /// the UID's dashes as underscores. Refuses a UID that is not UUID-shaped.
    pub fn for_pod(tier: QosTier, uid: &str) -> Result<Self, NameError> {
        check_uid(uid)?;
        Ok(Self(format!(
            "{}{POD_MARK}{}{SLICE_SUFFIX}",
            tier.stem(),
            uid.replace('-', "_")
        )))
    }

    /// The slices the pod `uid` may have, one per tier: a static pod keeps its UID when
    /// its manifest changes its class.
    pub fn all_for_pod(uid: &str) -> Result<[Self; 3], NameError> {
        let [a, b, c] = QosTier::ALL;
        Ok([
            Self::for_pod(a, uid)?,
            Self::for_pod(b, uid)?,
            Self::for_pod(c, uid)?,
        ])
    }

    /// The pod slice a file is named after, with the pod's UID; `None` for any other
    /// name (the root, the QoS slices, anything not systemk's).
    pub fn parse_pod(file_name: &str) -> Option<(Self, String)> {
        QosTier::ALL.into_iter().find_map(|tier| {
            let stem = format!("{}{POD_MARK}", tier.stem());
            let escaped = file_name.strip_prefix(&stem)?.strip_suffix(SLICE_SUFFIX)?;
            // Only the image of a valid UID: no dash (which would be a deeper slice).
            if !escaped.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_') {
                return None;
            }
            let uid = escaped.replace('_', "-");
            let name = Self::for_pod(tier, &uid).ok()?;
            (name.0 == file_name).then_some((name, uid))
        })
    }

    /// The name as systemd knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SliceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pod UID becomes part of a unit name: only the characters of a UUID (the same rule as
/// the pod's directory name), so it holds no `.`, `/`, `\` escape, `%` specifier or line break.
fn check_uid(uid: &str) -> Result<(), NameError> {
    let why = if uid.is_empty() {
        Some("it is empty")
    } else if uid.len() > UID_MAX {
        Some("it is longer than 64 characters")
    } else if !uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Some("only hex digits and '-' are allowed")
    } else {
        None
    };
    match why {
        Some(why) => Err(NameError::InvalidUnitName {
            name: format!("pod UID {uid}"),
            why,
        }),
        None => Ok(()),
    }
}

/// The unit file of `systemk-besteffort.slice`: the kubelet's 2 shares, which is CPU
/// weight 1 on cgroup v2, the least any slice can have.
pub fn best_effort_slice_unit() -> Result<UnitFile> {
    let mut unit = qos_unit("BestEffort")?;
    unit.add("Slice", "CPUWeight", "1")?;
    Ok(unit)
}

/// The unit file of `systemk-burstable.slice` for Burstable pods requesting `cpu_millis`
/// in all: as the kubelet's QoS manager, the tier weighs what its pods request (2 shares,
/// weight 1, for none).
pub fn burstable_slice_unit(cpu_millis: u64) -> Result<UnitFile> {
    let mut unit = qos_unit("Burstable")?;
    unit.add("Slice", "CPUWeight", cpu_weight(cpu_millis).to_string())?;
    Ok(unit)
}

fn qos_unit(class: &str) -> Result<UnitFile> {
    let mut unit = UnitFile::new();
    unit.add("Unit", "Description", format!("systemk {class} pods"))?;
    unit.add("Unit", "Documentation", "man:systemk(8)")?;
    unit.add("Slice", "MemoryAccounting", "yes")?;
    Ok(unit)
}

/// The unit file of the slice of the pod `namespace/name` with `limits`. The names go
/// into `Description=`, so they are checked as the API server checks them.
pub fn pod_slice_unit(namespace: &str, name: &str, limits: &PodSliceLimits) -> Result<UnitFile> {
    if !is_dns_label(namespace) {
        return Err(NameError::InvalidKubernetesName {
            kind: "namespace",
            name: namespace.to_owned(),
            why: "it must be a DNS-1123 label",
        }
        .into());
    }
    if !is_dns_subdomain(name) {
        return Err(NameError::InvalidKubernetesName {
            kind: "pod name",
            name: name.to_owned(),
            why: "it must be a DNS-1123 subdomain",
        }
        .into());
    }
    let mut unit = UnitFile::new();
    unit.add(
        "Unit",
        "Description",
        format!("systemk pod {namespace}/{name}"),
    )?;
    unit.add("Unit", "Documentation", "man:systemk(8)")?;
    unit.add("Slice", "MemoryAccounting", "yes")?;
    for (key, value) in limits.directives() {
        unit.add("Slice", key, value)?;
    }
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0b7c7b9e-5d7a-4f55-9a43-2d2f0e0c1a11";

    #[test]
    fn names_follow_the_kubelets_tree() {
        assert_eq!(SliceName::root().as_str(), "systemk.slice");
        assert_eq!(
            SliceName::of_tier(QosTier::Burstable).as_str(),
            "systemk-burstable.slice"
        );
        assert_eq!(
            SliceName::of_tier(QosTier::BestEffort).as_str(),
            "systemk-besteffort.slice"
        );
        assert_eq!(SliceName::of_tier(QosTier::Guaranteed), SliceName::root());
        let names = SliceName::all_for_pod(UID).unwrap().map(|n| n.0);
        assert_eq!(
            names,
            [
                "systemk-pod0b7c7b9e_5d7a_4f55_9a43_2d2f0e0c1a11.slice",
                "systemk-burstable-pod0b7c7b9e_5d7a_4f55_9a43_2d2f0e0c1a11.slice",
                "systemk-besteffort-pod0b7c7b9e_5d7a_4f55_9a43_2d2f0e0c1a11.slice",
            ]
        );
    }

    #[test]
    fn pod_slice_names_parse_back_to_their_uid() {
        for name in SliceName::all_for_pod(UID).unwrap() {
            assert_eq!(
                SliceName::parse_pod(name.as_str()),
                Some((name.clone(), UID.to_owned()))
            );
        }
        for other in [
            "systemk.slice",
            "systemk-burstable.slice",
            "systemk-besteffort.slice",
            "systemk-pod.slice",
            "systemk-podabc-def.slice",
            "systemk-burstable-podabc.service",
            "user-pod1.slice",
            "systemk-podxyz.slice",
        ] {
            assert_eq!(SliceName::parse_pod(other), None, "{other}");
        }
    }

    #[test]
    fn attack_uids_cannot_leave_their_place_in_the_tree() {
        for uid in [
            "",
            "../../etc",
            "x-y",
            "burstable",
            "a.slice",
            "a\nCPUWeight=10000",
            "%n",
            "a\\x2db",
            "a/b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(
                SliceName::for_pod(QosTier::Burstable, uid).is_err(),
                "{uid:?}"
            );
            assert!(SliceName::all_for_pod(uid).is_err(), "{uid:?}");
        }
        // Dashes are the hierarchy: a UID of dashes alone stays one level deep.
        let name = SliceName::for_pod(QosTier::Guaranteed, "-a-").unwrap();
        assert_eq!(name.as_str(), "systemk-pod_a_.slice");
        assert_eq!(name.as_str().matches('-').count(), 1);
    }

    #[test]
    fn qos_slices_weigh_best_effort_least_and_burstable_by_its_requests() {
        let best = best_effort_slice_unit().unwrap();
        assert_eq!(best.get("Slice", "CPUWeight"), Some("1"));
        let burstable = burstable_slice_unit(1500).unwrap();
        // 1500m → 1536 shares → weight 59.
        assert_eq!(burstable.get("Slice", "CPUWeight"), Some("59"));
        assert_eq!(
            burstable.get("Unit", "Description"),
            Some("systemk Burstable pods")
        );
        let none = burstable_slice_unit(0).unwrap();
        assert_eq!(none.get("Slice", "CPUWeight"), Some("1"));
    }

    #[test]
    fn pod_slice_unit_carries_the_limits() {
        let limits = PodSliceLimits {
            cpu_weight: 20,
            cpu_quota_millis: Some(750),
            memory_max: Some(256 << 20),
        };
        let unit = pod_slice_unit("default", "web", &limits).unwrap();
        assert_eq!(
            unit.render(),
            "[Unit]\nDescription=systemk pod default/web\nDocumentation=man:systemk(8)\n\n\
             [Slice]\nMemoryAccounting=yes\nCPUWeight=20\nCPUQuota=75%\nMemoryMax=268435456\n"
        );
    }

    #[test]
    fn attack_names_cannot_inject_into_the_slice_unit() {
        let limits = PodSliceLimits {
            cpu_weight: 1,
            cpu_quota_millis: None,
            memory_max: None,
        };
        for (namespace, name) in [
            ("default", "web\n[Slice]\nCPUWeight=10000"),
            ("default", "%n"),
            ("de fault", "web"),
            ("default", ""),
        ] {
            assert!(
                pod_slice_unit(namespace, name, &limits).is_err(),
                "{namespace:?}/{name:?}"
            );
        }
    }
}
