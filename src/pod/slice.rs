//! A pod's own slice: its name from the pod's QoS class ([`super::qos`]) and UID, and its
//! unit file with the kubelet's pod cgroup limits (`unit::pod_slice`). The worker writes
//! it before the pod's first unit starts and removes it with the pod. Pure. Layer 4.

use k8s_openapi::api::core::v1::Pod;

use super::error::{Error, Result};
use super::qos::{QosClass, qos_class};
use crate::unit::{self, QosTier, SliceName, UnitFile};

/// A pod's slice, named and rendered.
#[derive(Debug, Clone)]
pub struct PodSlice {
    /// `systemk[-<tier>]-pod<uid>.slice`.
    pub name: SliceName,
    /// Its unit file.
    pub unit: UnitFile,
}

/// Where pods of `class` go in the slice tree.
pub fn tier_of(class: QosClass) -> QosTier {
    match class {
        QosClass::Guaranteed => QosTier::Guaranteed,
        QosClass::Burstable => QosTier::Burstable,
        QosClass::BestEffort => QosTier::BestEffort,
    }
}

/// The name of `pod`'s slice; refused for a pod without a spec or a UUID-shaped UID.
pub fn pod_slice_name(pod: &Pod) -> Result<SliceName> {
    Ok(named(pod)?.1)
}

/// `pod`'s slice with its limits.
pub fn pod_slice(pod: &Pod) -> Result<PodSlice> {
    let (tier, name) = named(pod)?;
    let spec = pod.spec.as_ref().ok_or_else(no_spec)?;
    let limits = unit::pod_slice_limits(spec, tier)?;
    let meta = &pod.metadata;
    let namespace = meta.namespace.as_deref().unwrap_or("default");
    let pod_name = meta.name.as_deref().unwrap_or_default();
    let unit = unit::pod_slice_unit(namespace, pod_name, &limits)?;
    Ok(PodSlice { name, unit })
}

fn named(pod: &Pod) -> Result<(QosTier, SliceName)> {
    let spec = pod.spec.as_ref().ok_or_else(no_spec)?;
    let tier = tier_of(qos_class(spec)?);
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let name = SliceName::for_pod(tier, uid).map_err(unit::Error::from)?;
    Ok((tier, name))
}

fn no_spec() -> Error {
    Error::InvalidPod {
        why: "the pod has no spec".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(uid: &str, resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": uid},
            "spec": {"containers": [{"name": "a", "image": "/bin/sleep", "resources": resources}]},
        }))
        .unwrap()
    }

    const UID: &str = "1234abcd-0000-4000-8000-00000000000f";

    #[test]
    fn each_class_has_its_place() {
        let both = json!({"cpu": "250m", "memory": "64Mi"});
        let cases = [
            (
                json!({"limits": both}),
                "systemk-pod1234abcd_0000_4000_8000_00000000000f.slice",
            ),
            (
                json!({"requests": {"cpu": "100m"}}),
                "systemk-burstable-pod1234abcd_0000_4000_8000_00000000000f.slice",
            ),
            (
                json!({}),
                "systemk-besteffort-pod1234abcd_0000_4000_8000_00000000000f.slice",
            ),
        ];
        for (resources, name) in cases {
            let pod = pod(UID, resources);
            assert_eq!(pod_slice(&pod).unwrap().name.as_str(), name);
            assert_eq!(pod_slice_name(&pod).unwrap().as_str(), name);
        }
        let guaranteed = pod_slice(&pod(UID, json!({"limits": both}))).unwrap();
        assert_eq!(guaranteed.unit.get("Slice", "MemoryMax"), Some("67108864"));
        assert_eq!(guaranteed.unit.get("Slice", "CPUQuota"), Some("25%"));
        assert_eq!(
            guaranteed.unit.get("Unit", "Description"),
            Some("systemk pod shop/web")
        );
    }

    #[test]
    fn attack_a_uid_that_is_no_uuid_names_no_slice() {
        for uid in ["", "../x", "a-b\n[Slice]", "x.slice", "%i"] {
            assert!(pod_slice(&pod(uid, json!({}))).is_err(), "{uid:?}");
        }
    }
}
