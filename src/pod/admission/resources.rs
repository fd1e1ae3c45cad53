//! The resource check of admission (the scheduler's `noderesources.Fits`, which the
//! kubelet runs): one more pod than `--max-pods` allows, or requests of cpu, memory or
//! ephemeral storage above what the node has left after the admitted pods' requests.
//! A pod's requests are the kubelet's `PodRequests`: the app containers' sum, the largest
//! init container (each on top of the sidecars started before it; sidecars also run next
//! to the app containers) if that is more, plus the pod's `overhead`. A container that
//! sets a limit but no request requests its limit, as API defaulting makes it. Pure.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

use super::Rejection;
use crate::unit::Quantity as Parsed;

/// What the node offers its pods in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allocatable {
    /// Pods it may run (`--max-pods`).
    pub pods: u64,
    /// Its cpus, in millicores.
    pub cpu_millis: u64,
    /// Its memory, in bytes.
    pub memory_bytes: u64,
    /// Its ephemeral storage, in bytes.
    pub ephemeral_bytes: u64,
}

/// Requests of the resources admission counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Requests {
    cpu_millis: u64,
    memory_bytes: u64,
    ephemeral_bytes: u64,
}

impl Requests {
    fn add(self, other: Requests) -> Requests {
        Requests {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            ephemeral_bytes: self.ephemeral_bytes.saturating_add(other.ephemeral_bytes),
        }
    }

    fn max(self, other: Requests) -> Requests {
        Requests {
            cpu_millis: self.cpu_millis.max(other.cpu_millis),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
            ephemeral_bytes: self.ephemeral_bytes.max(other.ephemeral_bytes),
        }
    }

    /// cpu millicores, memory bytes, ephemeral storage bytes.
    pub(super) fn amounts(self) -> [u64; 3] {
        [self.cpu_millis, self.memory_bytes, self.ephemeral_bytes]
    }

    pub(super) fn from_amounts([cpu_millis, memory_bytes, ephemeral_bytes]: [u64; 3]) -> Self {
        Requests {
            cpu_millis,
            memory_bytes,
            ephemeral_bytes,
        }
    }

    fn of_list(list: Option<&BTreeMap<String, Quantity>>) -> Requests {
        let amount = |name: &str, scale: i32| amount(list.and_then(|l| l.get(name)), scale);
        Requests {
            cpu_millis: amount("cpu", 3),
            memory_bytes: amount("memory", 0),
            ephemeral_bytes: amount("ephemeral-storage", 0),
        }
    }
}

/// A quantity in units of `10^-scale`, rounded up as the scheduler's `MilliValue` and
/// `Value`; one that cannot be read counts as nothing (the API validated it), one too
/// large for 64 bits as everything.
fn amount(quantity: Option<&Quantity>, scale: i32) -> u64 {
    quantity
        .and_then(|q| q.0.parse::<Parsed>().ok())
        .map_or(0, |q| q.ceil_scaled(scale).unwrap_or(u64::MAX))
}

/// What one container requests: each resource's request, its limit where it names no
/// request.
fn container_requests(container: &Container) -> Requests {
    let resources = container.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    let amount = |name: &str, scale: i32| {
        let request = requests.and_then(|list| list.get(name));
        amount(
            request.or_else(|| limits.and_then(|list| list.get(name))),
            scale,
        )
    };
    Requests {
        cpu_millis: amount("cpu", 3),
        memory_bytes: amount("memory", 0),
        ephemeral_bytes: amount("ephemeral-storage", 0),
    }
}

/// What a pod requests, as the kubelet's `PodRequests` counts it.
pub(crate) fn pod_requests(spec: &PodSpec) -> Requests {
    let mut sum = spec
        .containers
        .iter()
        .map(container_requests)
        .fold(Requests::default(), Requests::add);
    let mut sidecars = Requests::default();
    let mut largest_init = Requests::default();
    for init in spec.init_containers.iter().flatten() {
        let own = container_requests(init);
        let while_running = if init.restart_policy.as_deref() == Some("Always") {
            sum = sum.add(own);
            sidecars = sidecars.add(own);
            sidecars
        } else {
            own.add(sidecars)
        };
        largest_init = largest_init.max(while_running);
    }
    sum.max(largest_init)
        .add(Requests::of_list(spec.overhead.as_ref()))
}

/// Whether a pod with `spec` fits within `node` next to `used_pods` pods requesting `used`.
pub(super) fn fits(
    spec: &PodSpec,
    used_pods: u64,
    used: Requests,
    node: &Allocatable,
) -> Result<(), Rejection> {
    if used_pods.saturating_add(1) > node.pods {
        return Err(insufficient("OutOfpods", "pods", 1, used_pods, node.pods));
    }
    let wanted = pod_requests(spec);
    if wanted == Requests::default() {
        return Ok(());
    }
    let checks = [
        (
            "OutOfcpu",
            "cpu",
            wanted.cpu_millis,
            used.cpu_millis,
            node.cpu_millis,
        ),
        (
            "OutOfmemory",
            "memory",
            wanted.memory_bytes,
            used.memory_bytes,
            node.memory_bytes,
        ),
        (
            "OutOfephemeral-storage",
            "ephemeral-storage",
            wanted.ephemeral_bytes,
            used.ephemeral_bytes,
            node.ephemeral_bytes,
        ),
    ];
    for (reason, resource, requested, used, capacity) in checks {
        if requested > 0 && requested > capacity.saturating_sub(used) {
            return Err(insufficient(reason, resource, requested, used, capacity));
        }
    }
    Ok(())
}

/// The kubelet's `InsufficientResourceError`.
fn insufficient(
    reason: &'static str,
    resource: &str,
    requested: u64,
    used: u64,
    capacity: u64,
) -> Rejection {
    Rejection {
        reason,
        message: format!(
            "Node didn't have enough resource: {resource}, requested: {requested}, used: {used}, capacity: {capacity}"
        ),
    }
}
