//! A pod slice's limits, as the kubelet's `ResourceConfigForPod` (pkg/kubelet/cm/
//! helpers_linux.go) computes the pod cgroup's:
//!
//! - Requests and limits are summed over the app containers and the sidecars (init
//!   containers with `restartPolicy: Always`); a regular init container runs with only the
//!   sidecars before it, so each resource is the larger of that sum and the largest of
//!   (init container + the sidecars started before it) (`PodRequests`/`PodLimits`). A
//!   missing request takes the limit's value, as the API server's defaulting does.
//! - `spec.overhead` is added to the requests, and to each limit that is not zero.
//! - `CPUWeight=` from the summed CPU requests (`MilliCPUToShares`, then the cgroup v2
//!   shares→weight formula); BestEffort always 1 (2 shares).
//! - `CPUQuota=` from the summed CPU limits (`MilliCPUToQuota`: 100 ms period, at least
//!   1 ms) and `MemoryMax=` from the summed memory limits: always for Guaranteed, for
//!   Burstable only when every container (init containers too) has that limit —
//!   otherwise one unlimited container makes the pod unlimited; never for BestEffort.
//!
//! Amounts are rounded up per container before summing (the kubelet sums exact
//! quantities, then rounds): at most one millicore or byte per container more.
//! Pure. Layer 2.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::QosTier;
use crate::unit::error::Result;
use crate::unit::resources::{cpu_quota, cpu_weight, parse};

/// What a pod slice limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodSliceLimits {
    /// `CPUWeight=`, 1…10000.
    pub cpu_weight: u64,
    /// `CPUQuota=` in millicores; `None`: unlimited.
    pub cpu_quota_millis: Option<u64>,
    /// `MemoryMax=` in bytes; `None`: unlimited (within the parent slices).
    pub memory_max: Option<u64>,
}

impl PodSliceLimits {
    /// The `[Slice]` directives, in a stable order.
    pub(super) fn directives(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("CPUWeight", self.cpu_weight.to_string())];
        if let Some(millis) = self.cpu_quota_millis {
            out.push(("CPUQuota", cpu_quota(millis)));
        }
        if let Some(bytes) = self.memory_max {
            out.push(("MemoryMax", bytes.to_string()));
        }
        out
    }
}

/// CPU in millicores and memory in bytes of one container or of a sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Amounts {
    cpu: u64,
    memory: u64,
}

impl Amounts {
    fn plus(self, other: Self) -> Self {
        Self {
            cpu: self.cpu.saturating_add(other.cpu),
            memory: self.memory.saturating_add(other.memory),
        }
    }

    fn max(self, other: Self) -> Self {
        Self {
            cpu: self.cpu.max(other.cpu),
            memory: self.memory.max(other.memory),
        }
    }
}

/// The limits of the slice of a pod with `spec` in `tier`.
pub fn pod_slice_limits(spec: &PodSpec, tier: QosTier) -> Result<PodSliceLimits> {
    if tier == QosTier::BestEffort {
        return Ok(PodSliceLimits {
            cpu_weight: 1,
            cpu_quota_millis: None,
            memory_max: None,
        });
    }
    let sums = sums(spec)?;
    let guaranteed = tier == QosTier::Guaranteed;
    Ok(PodSliceLimits {
        cpu_weight: cpu_weight(sums.requests.cpu),
        cpu_quota_millis: (guaranteed || sums.cpu_limited).then_some(sums.limits.cpu),
        memory_max: (guaranteed || sums.memory_limited).then_some(sums.limits.memory),
    })
}

/// The pod's CPU request in millicores, `overhead` included: what the kubelet's QoS
/// manager sums over the Burstable pods for their tier's weight.
pub fn pod_cpu_request_millis(spec: &PodSpec) -> Result<u64> {
    Ok(sums(spec)?.requests.cpu)
}

/// A pod's requests and limits, and whether every container limits CPU and memory.
struct Sums {
    requests: Amounts,
    limits: Amounts,
    cpu_limited: bool,
    memory_limited: bool,
}

fn sums(spec: &PodSpec) -> Result<Sums> {
    let (mut requests, mut limits) = (Amounts::default(), Amounts::default());
    let (mut cpu_limited, mut memory_limited) = (true, true);
    for container in &spec.containers {
        let (request, limit) = amounts(container)?;
        requests = requests.plus(request);
        limits = limits.plus(limit);
        cpu_limited &= limit.cpu > 0;
        memory_limited &= limit.memory > 0;
    }
    let (mut init_requests, mut init_limits) = (Amounts::default(), Amounts::default());
    let (mut sidecar_requests, mut sidecar_limits) = (Amounts::default(), Amounts::default());
    for container in spec.init_containers.iter().flatten() {
        let (request, limit) = amounts(container)?;
        let (while_request, while_limit) = if container.restart_policy.as_deref() == Some("Always")
        {
            requests = requests.plus(request);
            limits = limits.plus(limit);
            sidecar_requests = sidecar_requests.plus(request);
            sidecar_limits = sidecar_limits.plus(limit);
            (sidecar_requests, sidecar_limits)
        } else {
            (request.plus(sidecar_requests), limit.plus(sidecar_limits))
        };
        init_requests = init_requests.max(while_request);
        init_limits = init_limits.max(while_limit);
        cpu_limited &= limit.cpu > 0;
        memory_limited &= limit.memory > 0;
    }
    requests = requests.max(init_requests);
    limits = limits.max(init_limits);
    let overhead = overhead(spec)?;
    requests = requests.plus(overhead);
    if limits.cpu > 0 {
        limits.cpu = limits.cpu.saturating_add(overhead.cpu);
    }
    if limits.memory > 0 {
        limits.memory = limits.memory.saturating_add(overhead.memory);
    }
    Ok(Sums {
        requests,
        limits,
        cpu_limited,
        memory_limited,
    })
}

/// A container's requests (a missing one takes its limit) and limits.
fn amounts(container: &Container) -> Result<(Amounts, Amounts)> {
    let empty = BTreeMap::new();
    let resources = container.resources.as_ref();
    let limits = resources.and_then(|r| r.limits.as_ref()).unwrap_or(&empty);
    let requests = resources
        .and_then(|r| r.requests.as_ref())
        .unwrap_or(&empty);
    let limit = Amounts {
        cpu: parse(limits, "limits", "cpu", 3)?.unwrap_or(0),
        memory: parse(limits, "limits", "memory", 0)?.unwrap_or(0),
    };
    let request = Amounts {
        cpu: parse(requests, "requests", "cpu", 3)?.unwrap_or(limit.cpu),
        memory: parse(requests, "requests", "memory", 0)?.unwrap_or(limit.memory),
    };
    Ok((request, limit))
}

fn overhead(spec: &PodSpec) -> Result<Amounts> {
    let empty: BTreeMap<String, ApiQuantity> = BTreeMap::new();
    let overhead = spec.overhead.as_ref().unwrap_or(&empty);
    Ok(Amounts {
        cpu: parse(overhead, "overhead", "cpu", 3)?.unwrap_or(0),
        memory: parse(overhead, "overhead", "memory", 0)?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ResourceRequirements;

    use super::*;

    fn list(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, ApiQuantity>> {
        (!pairs.is_empty()).then(|| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ApiQuantity((*v).to_owned())))
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

    fn spec(containers: Vec<Container>, init: Vec<Container>) -> PodSpec {
        PodSpec {
            containers,
            init_containers: (!init.is_empty()).then_some(init),
            ..Default::default()
        }
    }

    const HALF: &[(&str, &str)] = &[("cpu", "500m"), ("memory", "128Mi")];

    #[test]
    fn guaranteed_sums_limits_and_requests() {
        let pod = spec(vec![container(HALF, HALF), container(&[], HALF)], vec![]);
        let limits = pod_slice_limits(&pod, QosTier::Guaranteed).unwrap();
        // 1000m → 1024 shares → weight 39; 2 × 500m quota; 2 × 128 Mi.
        assert_eq!(
            limits,
            PodSliceLimits {
                cpu_weight: 39,
                cpu_quota_millis: Some(1000),
                memory_max: Some(256 << 20),
            }
        );
        let unit = limits.directives();
        assert_eq!(unit[1], ("CPUQuota", "100%".to_owned()));
    }

    #[test]
    fn burstable_limits_only_what_every_container_limits() {
        let requests = [("cpu", "250m"), ("memory", "64Mi")];
        let memory_only = [("memory", "100Mi")];
        let pod = spec(
            vec![container(&requests, HALF), container(&[], &memory_only)],
            vec![],
        );
        let limits = pod_slice_limits(&pod, QosTier::Burstable).unwrap();
        // CPU: the second container has no limit, so none; its memory limit is its request.
        assert_eq!(
            limits,
            PodSliceLimits {
                cpu_weight: cpu_weight(250),
                cpu_quota_millis: None,
                memory_max: Some((128 + 100) << 20),
            }
        );
        let unlimited = spec(vec![container(&requests, &[])], vec![]);
        let limits = pod_slice_limits(&unlimited, QosTier::Burstable).unwrap();
        assert_eq!((limits.cpu_quota_millis, limits.memory_max), (None, None));
        assert_eq!(limits.cpu_weight, 10);
    }

    #[test]
    fn best_effort_gets_the_lowest_weight() {
        let pod = spec(vec![container(&[], &[])], vec![]);
        assert_eq!(
            pod_slice_limits(&pod, QosTier::BestEffort).unwrap(),
            PodSliceLimits {
                cpu_weight: 1,
                cpu_quota_millis: None,
                memory_max: None,
            }
        );
    }

    #[test]
    fn an_init_container_counts_when_it_is_larger_and_must_be_limited_too() {
        let big = [("cpu", "2"), ("memory", "1Gi")];
        let pod = spec(vec![container(HALF, HALF)], vec![container(&big, &big)]);
        let limits = pod_slice_limits(&pod, QosTier::Guaranteed).unwrap();
        assert_eq!(limits.cpu_quota_millis, Some(2000));
        assert_eq!(limits.memory_max, Some(1 << 30));
        assert_eq!(limits.cpu_weight, cpu_weight(2000));
        let unlimited_init = spec(
            vec![container(HALF, HALF)],
            vec![container(&[("cpu", "10m")], &[])],
        );
        let limits = pod_slice_limits(&unlimited_init, QosTier::Burstable).unwrap();
        assert_eq!((limits.cpu_quota_millis, limits.memory_max), (None, None));
        assert_eq!(limits.cpu_weight, cpu_weight(500));
    }

    #[test]
    fn sidecars_add_to_the_app_containers_and_to_the_init_containers_after_them() {
        let sidecar = |cpu: &str, memory: &str| Container {
            restart_policy: Some("Always".into()),
            ..container(&[], &[("cpu", cpu), ("memory", memory)])
        };
        let app = container(&[], &[("cpu", "200m"), ("memory", "100Mi")]);
        let big_init = container(&[], &[("cpu", "500m"), ("memory", "64Mi")]);
        let pod = spec(
            vec![app],
            vec![sidecar("100m", "50Mi"), big_init, sidecar("100m", "50Mi")],
        );
        let limits = pod_slice_limits(&pod, QosTier::Guaranteed).unwrap();
        // cpu: max(200 + 100 + 100, 500 + 100); memory: max(100 + 50 + 50, 64 + 50) Mi.
        assert_eq!(limits.cpu_quota_millis, Some(600));
        assert_eq!(limits.memory_max, Some(200 * 1024 * 1024));
    }

    #[test]
    fn overhead_adds_to_requests_and_to_limits_that_exist() {
        let mut pod = spec(vec![container(&[("cpu", "100m")], HALF)], vec![]);
        pod.overhead = list(&[("cpu", "250m"), ("memory", "10Mi")]);
        let limits = pod_slice_limits(&pod, QosTier::Burstable).unwrap();
        assert_eq!(pod_cpu_request_millis(&pod).unwrap(), 350);
        assert_eq!(limits.cpu_weight, cpu_weight(350));
        assert_eq!(limits.cpu_quota_millis, Some(750));
        assert_eq!(limits.memory_max, Some(138 << 20));
        let mut memory_only = spec(vec![container(&[], &[("memory", "1Mi")])], vec![]);
        memory_only.overhead = list(&[("cpu", "250m")]);
        let limits = pod_slice_limits(&memory_only, QosTier::Burstable).unwrap();
        assert_eq!(limits.cpu_quota_millis, None);
        assert_eq!(limits.cpu_weight, cpu_weight(250));
    }

    #[test]
    fn bad_quantities_are_errors() {
        let pod = spec(vec![container(&[("memory", "lots")], &[])], vec![]);
        assert!(pod_slice_limits(&pod, QosTier::Burstable).is_err());
        let mut overhead = spec(vec![container(HALF, HALF)], vec![]);
        overhead.overhead = list(&[("cpu", "-1")]);
        assert!(pod_slice_limits(&overhead, QosTier::Guaranteed).is_err());
    }
}
