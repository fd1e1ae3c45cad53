//! Container `resources` → systemd cgroup directives:
//!
//! | Kubernetes        | systemd        | conversion                                              |
//! |-------------------|----------------|---------------------------------------------------------|
//! | `limits.memory`   | `MemoryMax=`   | bytes, rounded up                                       |
//! | `requests.memory` | `MemoryLow=`   | bytes, rounded up                                       |
//! | `limits.cpu`      | `CPUQuota=`    | millicores / 10 as a percentage of one CPU (`500m` → `50%`), at least `1%` (the kubelet's 1 ms-per-100 ms floor) |
//! | `requests.cpu`    | `CPUWeight=`   | the kubelet's cgroup v2 formula: shares = m × 1024 / 1000 clamped to 2…262144, weight = 1 + (shares − 2) × 9999 / 262142 |
//!
//! As the API server's defaulting does, a missing request takes the limit's value. No
//! request and no limit leaves systemd's defaults. Other resources (ephemeral-storage,
//! hugepages, extended resources) are refused so a pod never silently runs unlimited.
//!
//! Layer 2: pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::error::{Error, Result};
use super::quantity::Quantity;

/// The kubelet's cgroup shares bounds (pkg/kubelet/cm, `MinShares`/`MaxShares`).
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// Smallest CPU limit in millicores: the kubelet's `MinQuotaPeriod` (1 ms) of a 100 ms period.
const MIN_QUOTA_MILLIS: u64 = 10;

/// The `(directive, value)` pairs for a container's resources, in a stable order.
pub fn resource_directives(container: &Container) -> Result<Vec<(&'static str, String)>> {
    let empty = BTreeMap::new();
    let resources = container.resources.as_ref();
    let limits = resources.and_then(|r| r.limits.as_ref()).unwrap_or(&empty);
    let requests = resources
        .and_then(|r| r.requests.as_ref())
        .unwrap_or(&empty);
    for (field, map) in [("limits", limits), ("requests", requests)] {
        if let Some(name) = map.keys().find(|k| !matches!(k.as_str(), "cpu" | "memory")) {
            return Err(Error::Unsupported {
                what: format!("resources.{field}.{name}"),
            });
        }
    }
    let mut out = Vec::new();
    if let Some(bytes) = parse(limits, "limits", "memory", 0)? {
        if bytes == 0 {
            return Err(invalid(
                "limits",
                "memory",
                limits,
                "a memory limit must be positive",
            ));
        }
        out.push(("MemoryMax", bytes.to_string()));
    }
    let memory_request = match parse(requests, "requests", "memory", 0)? {
        Some(bytes) => Some(bytes),
        None => parse(limits, "limits", "memory", 0)?,
    };
    if let Some(bytes) = memory_request.filter(|&b| b > 0) {
        out.push(("MemoryLow", bytes.to_string()));
    }
    if let Some(millis) = parse(limits, "limits", "cpu", 3)? {
        if millis == 0 {
            return Err(invalid(
                "limits",
                "cpu",
                limits,
                "a CPU limit must be positive",
            ));
        }
        out.push(("CPUQuota", cpu_quota(millis)));
    }
    let cpu_request = match parse(requests, "requests", "cpu", 3)? {
        Some(millis) => Some(millis),
        None => parse(limits, "limits", "cpu", 3)?,
    };
    if let Some(millis) = cpu_request {
        out.push(("CPUWeight", cpu_weight(millis).to_string()));
    }
    Ok(out)
}

/// `CPUQuota=` for a limit in millicores: a percentage with up to one decimal
/// (systemd 252 reads permyriads, checked with `systemd-analyze verify`).
pub(super) fn cpu_quota(millis: u64) -> String {
    let millis = millis.max(MIN_QUOTA_MILLIS);
    match millis % 10 {
        0 => format!("{}%", millis / 10),
        tenth => format!("{}.{tenth}%", millis / 10),
    }
}

/// The kubelet's `MilliCPUToShares` followed by its `CpuSharesToCpuWeight`.
pub(super) fn cpu_weight(millis: u64) -> u64 {
    let shares = millis
        .saturating_mul(1024)
        .div_euclid(1000)
        .clamp(MIN_SHARES, MAX_SHARES);
    1 + (shares - MIN_SHARES) * 9999 / (MAX_SHARES - MIN_SHARES)
}

pub(super) fn parse(
    map: &BTreeMap<String, ApiQuantity>,
    field: &'static str,
    resource: &str,
    scale: i32,
) -> Result<Option<u64>> {
    let Some(ApiQuantity(text)) = map.get(resource) else {
        return Ok(None);
    };
    let quantity: Quantity = text.parse().map_err(|e: super::quantity::QuantityError| {
        invalid(field, resource, map, &e.to_string())
    })?;
    quantity
        .ceil_scaled(scale)
        .map(Some)
        .ok_or_else(|| invalid(field, resource, map, "too large"))
}

fn invalid(
    field: &'static str,
    resource: &str,
    map: &BTreeMap<String, ApiQuantity>,
    why: &str,
) -> Error {
    Error::InvalidResource {
        field,
        resource: resource.to_owned(),
        value: map.get(resource).map(|q| q.0.clone()).unwrap_or_default(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ResourceRequirements;

    use super::*;

    fn container(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ApiQuantity((*v).to_owned())))
                    .collect(),
            )
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

    fn directives(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Vec<String> {
        resource_directives(&container(limits, requests))
            .unwrap()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    #[test]
    fn full_mapping() {
        assert_eq!(
            directives(
                &[("memory", "512Mi"), ("cpu", "500m")],
                &[("memory", "128Mi"), ("cpu", "250m")]
            ),
            [
                "MemoryMax=536870912",
                "MemoryLow=134217728",
                "CPUQuota=50%",
                "CPUWeight=10"
            ]
        );
    }

    #[test]
    fn requests_default_to_limits() {
        assert_eq!(
            directives(&[("memory", "1G"), ("cpu", "2")], &[]),
            [
                "MemoryMax=1000000000",
                "MemoryLow=1000000000",
                "CPUQuota=200%",
                "CPUWeight=79"
            ]
        );
        assert!(directives(&[], &[]).is_empty());
    }

    #[test]
    fn cpu_edges() {
        assert_eq!(cpu_quota(1), "1%");
        assert_eq!(cpu_quota(15), "1.5%");
        assert_eq!(cpu_quota(1000), "100%");
        assert_eq!(cpu_weight(1), 1);
        assert_eq!(cpu_weight(1000), 39);
        assert_eq!(cpu_weight(u64::MAX), 10_000);
        assert_eq!(directives(&[], &[("cpu", "100m")]), ["CPUWeight=4"]);
    }

    #[test]
    fn bad_resources_are_errors() {
        for (limits, requests) in [
            (&[("memory", "0")][..], &[][..]),
            (&[("cpu", "0")], &[]),
            (&[("memory", "lots")], &[]),
            (&[("memory", "-1Gi")], &[]),
            (&[], &[("ephemeral-storage", "1Gi")]),
            (&[("nvidia.com/gpu", "1")], &[]),
            (&[("memory", "100Ei")], &[]),
        ] {
            assert!(
                resource_directives(&container(limits, requests)).is_err(),
                "{limits:?} {requests:?}"
            );
        }
    }
}
