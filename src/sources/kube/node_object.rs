//! The Node object systemk registers and the status it posts, built from the settings and
//! the host's facts. Pure: no client, no clock; unit-tested. Layer 5.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::host::HostFacts;
use crate::pod::admission::{Allocatable, NodeView};
use crate::pod::eviction::{Reservation, Resources};

/// The taint that keeps pods (and DaemonSets) off the node unless they tolerate it: the
/// original systemk's (virtual-kubelet convention).
pub const TAINT_KEY: &str = "virtual-kubelet.io/provider";
/// Value of [`TAINT_KEY`].
pub const TAINT_VALUE: &str = "systemk";
/// Effect of the taint.
pub const TAINT_EFFECT: &str = "NoSchedule";
/// `node.kubernetes.io/instance-type` of every systemk node.
pub const INSTANCE_TYPE: &str = "systemk";
/// The Kubernetes version systemk's API types target (the `k8s-openapi` feature in
/// Cargo.toml), reported as `kubeletVersion` as virtual kubelets do: version-skew tools
/// read that field as a Kubernetes version. A unit test keeps the two in step.
pub const KUBERNETES_VERSION: &str = "v1.33.0";
/// The Node annotation carrying systemk's own version.
pub const VERSION_ANNOTATION: &str = "systemk.io/version";
/// The kubelet API's default port (`--kubelet-port`; the kubelet's default), published in
/// `daemonEndpoints`.
pub const KUBELET_PORT: u16 = 10250;

/// What the node says about itself beyond the host's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// The node's name (`--nodename`).
    pub name: String,
    /// The host's name, for the Hostname address and the hostname label.
    pub hostname: String,
    /// InternalIP.
    pub internal_ip: IpAddr,
    /// ExternalIP.
    pub external_ip: IpAddr,
    /// Whether the node carries the systemk taint (off with `--disable-taint`).
    pub taint: bool,
    /// Pods the node can run (`--max-pods`).
    pub max_pods: u32,
    /// `systemd://<version>` of the service manager.
    pub runtime_version: String,
    /// systemk's own version, in the [`VERSION_ANNOTATION`] annotation.
    pub version: String,
    /// Port published as the kubelet endpoint.
    pub kubelet_port: u16,
    /// `--system-reserved`, `--kube-reserved` and `--eviction-hard`: subtracted from
    /// capacity to give `allocatable`.
    pub reservation: Reservation,
}

/// The Node to create when none exists: labels, annotations, taint, and no status
/// (posted separately, through `/status`).
pub fn new_node(config: &NodeConfig, facts: &HostFacts) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(labels(config, facts)),
            annotations: Some(annotations(config)),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(taints(&[], config.taint)),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// The labels systemk owns on its Node.
pub fn labels(config: &NodeConfig, facts: &HostFacts) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), config.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), facts.architecture.clone()),
        (
            "node.kubernetes.io/instance-type".to_owned(),
            INSTANCE_TYPE.to_owned(),
        ),
    ])
}

/// The annotations systemk owns on its Node: its own version.
pub fn annotations(config: &NodeConfig) -> BTreeMap<String, String> {
    BTreeMap::from([(VERSION_ANNOTATION.to_owned(), config.version.clone())])
}

/// `existing` taints with systemk's own added or removed; others are kept as they are.
pub fn taints(existing: &[Taint], wanted: bool) -> Vec<Taint> {
    let mut kept: Vec<Taint> = existing
        .iter()
        .filter(|taint| taint.key != TAINT_KEY)
        .cloned()
        .collect();
    if wanted {
        kept.push(Taint {
            key: TAINT_KEY.to_owned(),
            value: Some(TAINT_VALUE.to_owned()),
            effect: TAINT_EFFECT.to_owned(),
            time_added: None,
        });
    }
    kept
}

/// The node as admission sees it: `node`'s labels and taints when the API returned it
/// (an admin's labels and taints count), else systemk's own; the allocatable resources
/// systemk advertises (the Node's `allocatable`).
pub fn admission_view(config: &NodeConfig, facts: &HostFacts, node: Option<&Node>) -> NodeView {
    let (labels, taints) = match node {
        Some(node) => (
            node.metadata.labels.clone().unwrap_or_default(),
            node.spec
                .as_ref()
                .and_then(|spec| spec.taints.clone())
                .unwrap_or_default(),
        ),
        None => (labels(config, facts), taints(&[], config.taint)),
    };
    NodeView {
        name: config.name.clone(),
        labels,
        taints,
        allocatable: {
            let allocatable = config.reservation.allocatable(capacity(facts));
            Allocatable {
                pods: u64::from(config.max_pods),
                cpu_millis: allocatable.cpu_millis,
                memory_bytes: allocatable.memory,
                ephemeral_bytes: allocatable.ephemeral_storage,
            }
        },
        from_api: node.is_some(),
    }
}

/// The node's status: capacity, allocatable (capacity − system-reserved − kube-reserved −
/// the hard eviction thresholds, the kubelet's formula), addresses, system info,
/// endpoints and `conditions`.
pub fn node_status(
    config: &NodeConfig,
    facts: &HostFacts,
    conditions: Vec<NodeCondition>,
) -> NodeStatus {
    let capacity = capacity(facts);
    let allocatable = config.reservation.allocatable(capacity);
    let list = |resources: Resources| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu(resources.cpu_millis))),
            ("memory".to_owned(), Quantity(resources.memory.to_string())),
            ("pods".to_owned(), Quantity(config.max_pods.to_string())),
            (
                "ephemeral-storage".to_owned(),
                Quantity(resources.ephemeral_storage.to_string()),
            ),
        ])
    };
    // Both IPs are listed even when equal: clients look for the type they need.
    let addresses = vec![
        address("InternalIP", config.internal_ip.to_string()),
        address("ExternalIP", config.external_ip.to_string()),
        address("Hostname", config.hostname.clone()),
    ];
    NodeStatus {
        capacity: Some(list(capacity)),
        allocatable: Some(list(allocatable)),
        addresses: Some(addresses),
        conditions: Some(conditions),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: facts.architecture.clone(),
            boot_id: facts.boot_id.clone(),
            container_runtime_version: config.runtime_version.clone(),
            kernel_version: facts.kernel.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBERNETES_VERSION.to_owned(),
            machine_id: facts.machine_id.clone(),
            operating_system: "linux".to_owned(),
            os_image: facts.os_image.clone(),
            system_uuid: String::new(),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// The host's resources as the Node's `capacity` lists them.
fn capacity(facts: &HostFacts) -> Resources {
    Resources {
        cpu_millis: facts.cpus.saturating_mul(1000),
        memory: facts.memory_bytes,
        ephemeral_storage: facts.storage_bytes,
        pids: 0,
    }
}

/// Millicores as a quantity: whole cores without a suffix (`2`), else `1900m`.
fn cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

fn address(type_: &str, address: String) -> NodeAddress {
    NodeAddress {
        type_: type_.to_owned(),
        address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(taint: bool) -> NodeConfig {
        NodeConfig {
            name: "node-1".to_owned(),
            hostname: "host-1".to_owned(),
            internal_ip: "10.0.0.5".parse().unwrap(),
            external_ip: "203.0.113.9".parse().unwrap(),
            taint,
            max_pods: 110,
            runtime_version: "systemd://252".to_owned(),
            version: "0.1.0".to_owned(),
            kubelet_port: KUBELET_PORT,
            reservation: Reservation::default(),
        }
    }

    fn facts() -> HostFacts {
        HostFacts {
            cpus: 2,
            memory_bytes: 4_000_000_000,
            storage_bytes: 50_000_000_000,
            kernel: "6.1.0-18-amd64".to_owned(),
            os_image: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            machine_id: "m".to_owned(),
            boot_id: "b".to_owned(),
            architecture: "amd64".to_owned(),
        }
    }

    #[test]
    fn new_node_has_labels_and_taint() {
        let node = new_node(&config(true), &facts());
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "node-1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "systemk");
        assert_eq!(
            node.metadata.annotations.unwrap()[VERSION_ANNOTATION],
            "0.1.0"
        );
        let taints = node.spec.unwrap().taints.unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(
            (taints[0].key.as_str(), taints[0].effect.as_str()),
            (TAINT_KEY, "NoSchedule")
        );
    }

    #[test]
    fn disabled_taint_is_removed_and_others_kept() {
        let other = Taint {
            key: "dedicated".to_owned(),
            value: None,
            effect: "NoExecute".to_owned(),
            time_added: None,
        };
        let existing = taints(std::slice::from_ref(&other), true);
        assert_eq!(existing.len(), 2);
        assert_eq!(taints(&existing, false), vec![other.clone()]);
        assert_eq!(taints(&existing, true).len(), 2);
    }

    #[test]
    fn status_reports_capacity_addresses_and_info() {
        let status = node_status(&config(true), &facts(), vec![]);
        let capacity = status.capacity.unwrap();
        assert_eq!(capacity["cpu"].0, "2");
        assert_eq!(capacity["memory"].0, "4000000000");
        assert_eq!(capacity["pods"].0, "110");
        assert_eq!(capacity["ephemeral-storage"].0, "50000000000");
        let addresses: Vec<(String, String)> = status
            .addresses
            .unwrap()
            .into_iter()
            .map(|a| (a.type_, a.address))
            .collect();
        assert_eq!(
            addresses,
            [
                ("InternalIP".to_owned(), "10.0.0.5".to_owned()),
                ("ExternalIP".to_owned(), "203.0.113.9".to_owned()),
                ("Hostname".to_owned(), "host-1".to_owned()),
            ]
        );
        let info = status.node_info.unwrap();
        assert_eq!(info.kubelet_version, KUBERNETES_VERSION);
        assert_eq!(info.container_runtime_version, "systemd://252");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(
            status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port,
            10250
        );
    }

    #[test]
    fn allocatable_subtracts_reservations_and_hard_thresholds() {
        let mut config = config(true);
        assert_eq!(
            node_status(&config, &facts(), vec![]).allocatable,
            node_status(&config, &facts(), vec![]).capacity
        );
        config.reservation = Reservation {
            system: "cpu=100m,memory=100Mi".parse().unwrap(),
            kube: "memory=50Mi,ephemeral-storage=1Gi".parse().unwrap(),
            thresholds: "memory.available<100Mi,nodefs.available<10%"
                .parse()
                .unwrap(),
        };
        let status = node_status(&config, &facts(), vec![]);
        let allocatable = status.allocatable.unwrap();
        assert_eq!(allocatable["cpu"].0, "1900m");
        assert_eq!(
            allocatable["memory"].0,
            (4_000_000_000_u64 - 250 * 1024 * 1024).to_string()
        );
        let ten_percent = (50_000_000_000_f64 * f64::from(0.1_f32)) as u64;
        assert_eq!(
            allocatable["ephemeral-storage"].0,
            (50_000_000_000_u64 - (1 << 30) - ten_percent).to_string()
        );
        assert_eq!(allocatable["pods"].0, "110");
        assert_eq!(status.capacity.unwrap()["cpu"].0, "2");
    }

    #[test]
    fn kubelet_version_is_the_k8s_openapi_feature_of_cargo_toml() {
        let manifest = include_str!("../../../Cargo.toml");
        let line = manifest
            .lines()
            .find(|line| line.starts_with("k8s-openapi"))
            .expect("Cargo.toml names k8s-openapi");
        // "v1.33.0" is the feature "v1_33".
        let feature = KUBERNETES_VERSION
            .strip_suffix(".0")
            .expect("a .0 patch version")
            .replace('.', "_");
        assert!(
            line.contains(&format!("\"{feature}\"")),
            "{line} vs {KUBERNETES_VERSION}"
        );
    }
}
