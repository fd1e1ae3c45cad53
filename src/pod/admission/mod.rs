//! Admission, as the kubelet's (pkg/kubelet/lifecycle/predicate.go): whether a pod bound to
//! this node may run here, decided once, when the reconciler first takes the pod, against
//! the pods admitted before it. The checks and their order are the kubelet's: the pod's
//! `kubernetes.io/os` label and `spec.os`, then the scheduler's `AdmissionCheck` (resources
//! — pods, cpu, memory, ephemeral storage —, required node affinity, host ports) and the
//! untolerated `NoExecute` taints (not for static pods; the kubelet never checks
//! `NoSchedule`, which is the scheduler's business). Last, a pod asking for a field
//! systemk cannot honour ([`super::fields`]) is refused (`UnsupportedPodSpec`), before
//! anything is installed: the kubelet, too, refuses at admission what its runtime cannot
//! do (sysctls, AppArmor). The first failure is the reason.
//! Pods share the host's network here, so every `containerPort` counts as a host port.
//! Pure: decisions over plain data, no I/O. Layer 4.

mod affinity;
mod ports;
mod resources;
mod taints;
mod usage;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Taint};

use super::fields;

pub use resources::Allocatable;
pub use usage::NodeUsage;

/// The reason of a pod whose `kubernetes.io/os` label names another OS.
pub const OS_SELECTOR_MISMATCH: &str = "PodOSSelectorNodeLabelDoesNotMatch";
/// The reason of a pod whose `spec.os.name` is not linux.
pub const OS_NOT_SUPPORTED: &str = "PodOSNotSupported";
/// The reason of a pod whose nodeSelector or required node affinity the node fails.
pub const NODE_AFFINITY: &str = "NodeAffinity";
/// The reason of a pod one of whose host ports another pod holds.
pub const NODE_PORTS: &str = "NodePorts";
/// The reason of a pod that does not tolerate one of the node's `NoExecute` taints.
pub const TAINT_TOLERATION: &str = "TaintToleration";

/// What admission knows of the node: its Node object's name, labels and taints (as the
/// API has them once systemk registered it) and its allocatable resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeView {
    /// The node's name (`matchFields` on `metadata.name`).
    pub name: String,
    /// The Node's labels.
    pub labels: BTreeMap<String, String>,
    /// The Node's taints.
    pub taints: Vec<Taint>,
    /// What pods may request in all.
    pub allocatable: Allocatable,
    /// Whether labels and taints are the Node object's as the API has it. Until then
    /// they are systemk's own, and pods from the API wait (an admin's labels may be what
    /// their node selector names); static pods never wait.
    pub from_api: bool,
}

/// Why a pod was not admitted: the kubelet's reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The kubelet's reason (`OutOfcpu`, `NodePorts`, …), also the event's reason.
    pub reason: &'static str,
    /// The kubelet's message, with what conflicts appended.
    pub message: String,
}

impl Rejection {
    /// A failed predicate, worded as the kubelet's `PredicateFailureError` with `detail`
    /// (what conflicts) appended.
    fn predicate(name: &'static str, description: &str, detail: &str) -> Self {
        Rejection {
            reason: name,
            message: format!("Predicate {name} failed: {description} ({detail})"),
        }
    }
}

/// Whether `pod` may run next to what `admitted` holds (the pods admitted before it that
/// have not finished) on `node`. `is_static` pods (from manifest files) skip the taint check, as
/// the kubelet's static pods do.
pub fn admit(
    pod: &Pod,
    is_static: bool,
    admitted: &NodeUsage,
    node: &NodeView,
) -> Result<(), Rejection> {
    let os_label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get("kubernetes.io/os"));
    if os_label.is_some_and(|os| os != "linux") {
        return Err(Rejection {
            reason: OS_SELECTOR_MISMATCH,
            message: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"
                .to_owned(),
        });
    }
    let spec = pod.spec.clone().unwrap_or_default();
    if spec.os.as_ref().is_some_and(|os| os.name != "linux") {
        return Err(Rejection {
            reason: OS_NOT_SUPPORTED,
            message: "Failed to admit pod as the OS field doesn't match node OS".to_owned(),
        });
    }
    resources::fits(
        &spec,
        admitted.pods(),
        admitted.requested(),
        &node.allocatable,
    )?;
    affinity::fits(pod, node)?;
    ports::fits(&spec, |port| admitted.holders(port))?;
    if !is_static {
        taints::tolerated(&spec, &node.taints)?;
    }
    if let Some(message) = fields::review(pod).refusal() {
        return Err(Rejection {
            reason: fields::UNSUPPORTED_POD_SPEC,
            message,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
