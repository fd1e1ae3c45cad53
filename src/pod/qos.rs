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
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
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

/// The quantity in nano-units when it is above zero.
fn positive(container: &Container, resource: &str, q: Option<&Quantity>) -> Result<Option<i128>> {
    let Some(Quantity(text)) = q else {
        return Ok(None);
    };
    let nanos = quantity_nanos(text).ok_or_else(|| Error::InvalidQuantity {
        container: container.name.clone(),
        resource: resource.to_owned(),
        value: text.clone(),
    })?;
    Ok((nanos > 0).then_some(nanos))
}

/// A Kubernetes quantity (`128Mi`, `0.5`, `250m`, `1e3`) in billionths of its unit,
/// exact for everything the API accepts down to `1n`; `None` if it is not a quantity or
/// too large to hold.
fn quantity_nanos(text: &str) -> Option<i128> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    if digits.len() > 30 {
        return None;
    }
    let mantissa: i128 = digits.parse().ok()?;
    let (binary, exponent) = suffix_scale(suffix)?;
    let exponent = exponent + 9 - i32::try_from(fraction.len()).ok()?;
    let scaled = mantissa.checked_mul(binary)?;
    let magnitude = if exponent >= 0 {
        scaled.checked_mul(10i128.checked_pow(exponent.unsigned_abs())?)?
    } else {
        scaled / 10i128.checked_pow(exponent.unsigned_abs())?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A suffix as (binary multiplier, power of ten).
fn suffix_scale(suffix: &str) -> Option<(i128, i32)> {
    let binary = |power: u32| Some((1024i128.pow(power), 0));
    match suffix {
        "" => Some((1, 0)),
        "n" => Some((1, -9)),
        "u" => Some((1, -6)),
        "m" => Some((1, -3)),
        "k" => Some((1, 3)),
        "M" => Some((1, 6)),
        "G" => Some((1, 9)),
        "T" => Some((1, 12)),
        "P" => Some((1, 15)),
        "E" => Some((1, 18)),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            if exponent.trim_start_matches(['+', '-']).is_empty() {
                return None;
            }
            let exponent: i32 = exponent.parse().ok()?;
            (exponent.abs() <= 27).then_some((1, exponent))
        }
    }
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

    #[test]
    fn quantities_parse_to_nanos() {
        assert_eq!(quantity_nanos("1"), Some(1_000_000_000));
        assert_eq!(quantity_nanos("250m"), Some(250_000_000));
        assert_eq!(quantity_nanos("0.25"), Some(250_000_000));
        assert_eq!(quantity_nanos(".5"), Some(500_000_000));
        assert_eq!(quantity_nanos("1Ki"), Some(1_024_000_000_000));
        assert_eq!(quantity_nanos("1k"), Some(1_000_000_000_000));
        assert_eq!(quantity_nanos("1e3"), quantity_nanos("1k"));
        assert_eq!(quantity_nanos("1E"), Some(10i128.pow(27)));
        assert_eq!(quantity_nanos("5n"), Some(5));
        assert_eq!(quantity_nanos("-1"), Some(-1_000_000_000));
    }

    #[test]
    fn non_quantities_are_rejected() {
        for text in ["", "Mi", "1.2.3", "1x", "1e", "1 Gi", "."] {
            assert_eq!(quantity_nanos(text), None, "{text:?}");
        }
    }
}
