//! A pod's quality-of-service class (`status.qosClass`), computed from its spec exactly as
//! the kubelet's `ComputePodQOS` (pkg/apis/core/v1/helper/qos) does: only cpu and memory
//! count, init and app containers alike. Pure. Layer 4.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::error::{Error, Result};

/// The QoS classes of the Kubernetes API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// Every container limits cpu and memory, and requests equal limits.
    Guaranteed,
    /// Some requests or limits, but not Guaranteed.
    Burstable,
    /// No cpu or memory requests or limits at all.
    BestEffort,
}

impl QosClass {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guaranteed => "Guaranteed",
            Self::Burstable => "Burstable",
            Self::BestEffort => "BestEffort",
        }
    }
}

const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

/// The QoS class of `spec`, or which quantity could not be read.
///
/// A limit without a request counts as a request of the same amount: the API server
/// defaults requests that way, but static pods from manifest files never pass through it.
pub fn qos_class(spec: &PodSpec) -> Result<QosClass> {
    let mut requests: BTreeMap<&str, u64> = BTreeMap::new();
    let mut limits: BTreeMap<&str, u64> = BTreeMap::new();
    let mut guaranteed = true;
    let init = spec.init_containers.iter().flatten();
    for container in spec.containers.iter().chain(init) {
        let resources = container.resources.as_ref();
        let limit_list = resources.and_then(|r| r.limits.as_ref());
        let request_list = resources.and_then(|r| r.requests.as_ref());
        let mut limited = BTreeSet::new();
        for resource in QOS_RESOURCES {
            let limit = limit_list.and_then(|l| l.get(resource));
            let request = request_list.and_then(|r| r.get(resource)).or(limit);
            if let Some(nanos) = positive(container, resource, request)? {
                let sum = requests.entry(resource).or_default();
                *sum = sum.saturating_add(nanos);
            }
            if let Some(nanos) = positive(container, resource, limit)? {
                let sum = limits.entry(resource).or_default();
                *sum = sum.saturating_add(nanos);
                limited.insert(resource);
            }
        }
        guaranteed &= limited.len() == QOS_RESOURCES.len();
    }
    if requests.is_empty() && limits.is_empty() {
        return Ok(QosClass::BestEffort);
    }
    if guaranteed && requests == limits {
        return Ok(QosClass::Guaranteed);
    }
    Ok(QosClass::Burstable)
}

/// The QoS class shown in a pod's status. A spec whose quantities cannot be read is
/// refused before any unit exists; its status falls back to BestEffort.
pub fn pod_qos_class(pod: &k8s_openapi::api::core::v1::Pod) -> QosClass {
    pod.spec
        .as_ref()
        .and_then(|spec| qos_class(spec).ok())
        .unwrap_or(QosClass::BestEffort)
}

/// The quantity in thousandths of its unit (millicores, millibytes) when it is above
/// zero: exact for every cpu and memory amount the API accepts that matters for QoS.
fn positive(container: &Container, resource: &str, q: Option<&Quantity>) -> Result<Option<u64>> {
    let Some(Quantity(text)) = q else {
        return Ok(None);
    };
    let milli = text
        .parse::<crate::unit::Quantity>()
        .ok()
        .and_then(|quantity| quantity.ceil_scaled(3))
        .ok_or_else(|| Error::InvalidQuantity {
            container: container.name.clone(),
            resource: resource.to_owned(),
            value: text.clone(),
        })?;
    Ok((milli > 0).then_some(milli))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn list(entries: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        (!entries.is_empty()).then(|| {
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect()
        })
    }

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: list(requests),
                limits: list(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> PodSpec {
        PodSpec {
            containers,
            init_containers: (!init.is_empty()).then_some(init),
            ..Default::default()
        }
    }

    fn class(containers: Vec<Container>) -> QosClass {
        qos_class(&pod(containers, vec![])).unwrap()
    }

    const BOTH: &[(&str, &str)] = &[("cpu", "500m"), ("memory", "128Mi")];

    #[test]
    fn no_resources_is_best_effort() {
        assert_eq!(class(vec![container(&[], &[])]), QosClass::BestEffort);
    }

    #[test]
    fn zero_quantities_are_best_effort() {
        let zero = [("cpu", "0"), ("memory", "0Mi")];
        assert_eq!(class(vec![container(&zero, &zero)]), QosClass::BestEffort);
    }

    #[test]
    fn other_resources_do_not_count() {
        let storage = [("ephemeral-storage", "1Gi")];
        assert_eq!(class(vec![container(&storage, &[])]), QosClass::BestEffort);
    }

    #[test]
    fn equal_requests_and_limits_are_guaranteed() {
        assert_eq!(class(vec![container(BOTH, BOTH)]), QosClass::Guaranteed);
    }

    #[test]
    fn limits_alone_default_requests_and_are_guaranteed() {
        assert_eq!(class(vec![container(&[], BOTH)]), QosClass::Guaranteed);
    }

    #[test]
    fn equal_amounts_in_other_units_are_guaranteed() {
        let limits = [("cpu", "0.5"), ("memory", "134217728")];
        assert_eq!(class(vec![container(BOTH, &limits)]), QosClass::Guaranteed);
    }

    #[test]
    fn requests_below_limits_are_burstable() {
        let requests = [("cpu", "100m"), ("memory", "64Mi")];
        assert_eq!(class(vec![container(&requests, BOTH)]), QosClass::Burstable);
    }

    #[test]
    fn memory_limit_only_is_burstable() {
        let limits = [("memory", "64Mi")];
        assert_eq!(class(vec![container(&[], &limits)]), QosClass::Burstable);
    }

    #[test]
    fn one_unlimited_container_makes_burstable() {
        let containers = vec![container(BOTH, BOTH), container(&[], &[])];
        assert_eq!(class(containers), QosClass::Burstable);
    }

    #[test]
    fn init_containers_count() {
        let spec = pod(vec![container(BOTH, BOTH)], vec![container(&[], &[])]);
        assert_eq!(qos_class(&spec).unwrap(), QosClass::Burstable);
    }

    #[test]
    fn invalid_quantity_is_an_error() {
        let bad = [("memory", "lots")];
        let err = qos_class(&pod(vec![container(&bad, &[])], vec![])).unwrap_err();
        assert_eq!(err.reason(), "InvalidQuantity");
    }
}
