//! `resourceFieldRef` values, as the kubelet's `ExtractContainerResourceValue`: cpu in
//! millicores and memory in bytes, divided by the divisor (default 1) and rounded up. A
//! container without a limit gets the node's allocatable amount (the kubelet's
//! `defaultPodLimitsForDownwardAPI`); without a request, the limit it set (API
//! defaulting), else 0. Layer 4: pure.

use k8s_openapi::api::core::v1::{Container, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::unit::Quantity as Parsed;

/// The node's resources, for containers without limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeAllocatable {
    /// CPUs of the node, in millicores.
    pub cpu_millis: u64,
    /// Memory of the node, in bytes.
    pub memory_bytes: u64,
}

/// The value of `field` for `container`.
pub(crate) fn resource_value(
    container: &Container,
    field: &ResourceFieldSelector,
    node: &NodeAllocatable,
) -> Result<String, String> {
    let (kind, resource) = field
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {}", field.resource))?;
    let (scale, node_amount) = match resource {
        "cpu" => (3, node.cpu_millis),
        "memory" => (0, node.memory_bytes),
        _ => {
            return Err(format!(
                "unsupported container resource: {}",
                field.resource
            ));
        }
    };
    let resources = container.resources.as_ref();
    let limit = resources
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get(resource));
    let request = resources
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get(resource));
    let amount = match kind {
        "limits" => limit
            .map(|q| scaled(q, scale))
            .transpose()?
            .unwrap_or(node_amount),
        "requests" => request
            .or(limit)
            .map(|q| scaled(q, scale))
            .transpose()?
            .unwrap_or(0),
        _ => {
            return Err(format!(
                "unsupported container resource: {}",
                field.resource
            ));
        }
    };
    // An unset or zero divisor means 1 (one core, one byte).
    let one = 10u64.pow(scale.unsigned_abs());
    let divisor = match &field.divisor {
        Some(divisor) => scaled(divisor, scale)?,
        None => one,
    };
    let divisor = if divisor == 0 { one } else { divisor };
    Ok(amount.div_ceil(divisor).to_string())
}

fn scaled(quantity: &Quantity, scale: i32) -> Result<u64, String> {
    quantity
        .0
        .parse::<Parsed>()
        .ok()
        .and_then(|q| q.ceil_scaled(scale))
        .ok_or_else(|| format!("invalid quantity {:?}", quantity.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use std::collections::BTreeMap;

    const NODE: NodeAllocatable = NodeAllocatable {
        cpu_millis: 2000,
        memory_bytes: 8 << 30,
    };

    fn container(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect::<BTreeMap<_, _>>()
            })
        };
        Container {
            resources: Some(ResourceRequirements {
                limits: map(limits),
                requests: map(requests),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn value(c: &Container, resource: &str, divisor: Option<&str>) -> Result<String, String> {
        let field = ResourceFieldSelector {
            resource: resource.to_owned(),
            divisor: divisor.map(|d| Quantity(d.to_owned())),
            ..Default::default()
        };
        resource_value(c, &field, &NODE)
    }

    #[test]
    fn cpu_is_rounded_up_to_the_divisor() {
        let c = container(&[("cpu", "500m")], &[("cpu", "250m")]);
        assert_eq!(value(&c, "limits.cpu", None).unwrap(), "1");
        assert_eq!(value(&c, "limits.cpu", Some("1m")).unwrap(), "500");
        assert_eq!(value(&c, "requests.cpu", Some("1m")).unwrap(), "250");
        assert_eq!(value(&c, "requests.cpu", Some("100m")).unwrap(), "3");
    }

    #[test]
    fn memory_is_divided_in_bytes() {
        let c = container(&[("memory", "128Mi")], &[("memory", "64Mi")]);
        assert_eq!(value(&c, "limits.memory", None).unwrap(), "134217728");
        assert_eq!(value(&c, "limits.memory", Some("1Mi")).unwrap(), "128");
        assert_eq!(value(&c, "requests.memory", Some("1Gi")).unwrap(), "1");
    }

    #[test]
    fn missing_limits_are_the_nodes_and_missing_requests_the_limit_or_zero() {
        let none = container(&[], &[]);
        assert_eq!(value(&none, "limits.cpu", Some("1m")).unwrap(), "2000");
        assert_eq!(value(&none, "limits.memory", Some("1Gi")).unwrap(), "8");
        assert_eq!(value(&none, "requests.memory", None).unwrap(), "0");
        let limited = container(&[("cpu", "2")], &[]);
        assert_eq!(value(&limited, "requests.cpu", None).unwrap(), "2");
    }

    #[test]
    fn zero_divisor_means_one_and_unknown_resources_are_errors() {
        let c = container(&[("cpu", "3")], &[]);
        assert_eq!(value(&c, "limits.cpu", Some("0")).unwrap(), "3");
        assert!(value(&c, "limits.ephemeral-storage", None).is_err());
        assert!(value(&c, "cpu", None).is_err());
        assert!(value(&c, "limits.cpu", Some("x")).is_err());
    }
}
