//! The host-port check of admission (the scheduler's `nodeports.Fits`, which the kubelet
//! runs): a port the pod wants that an admitted pod already holds, by protocol, port and
//! host IP, where `0.0.0.0` (or `::`, or none) holds the port on every address. Pods run
//! in the host's network namespace here, so a container's `containerPort` is its host port
//! (`hostPort` when it sets one), for app containers and sidecars alike. Pure.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ContainerPort, Pod, PodSpec};

use super::{NODE_PORTS, Rejection};

/// The scheduler's description of this failure.
const DESCRIPTION: &str = "node(s) didn't have free ports for the requested pod ports";

/// One port a pod holds on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    protocol: String,
    port: i32,
    /// `None`: every address.
    ip: Option<IpAddr>,
}

impl HostPort {
    fn of(port: &ContainerPort) -> Option<HostPort> {
        let number = port
            .host_port
            .filter(|p| *p > 0)
            .unwrap_or(port.container_port);
        if number <= 0 {
            return None;
        }
        let ip = port
            .host_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .filter(|ip| !ip.is_unspecified());
        Some(HostPort {
            protocol: port.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
            port: number,
            ip,
        })
    }

    fn conflicts(&self, other: &HostPort) -> bool {
        self.protocol == other.protocol
            && self.port == other.port
            && (self.ip.is_none() || other.ip.is_none() || self.ip == other.ip)
    }

    fn describe(&self) -> String {
        let ip = self
            .ip
            .map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string());
        format!("{} port {} on {ip}", self.protocol, self.port)
    }
}

/// The host ports of a pod: those of its app containers and sidecars.
fn host_ports(spec: &PodSpec) -> Vec<HostPort> {
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(HostPort::of)
        .collect()
}

/// Whether every host port `spec` wants is free of the `admitted` pods' ports.
pub(super) fn fits(spec: &PodSpec, admitted: &[&Pod]) -> Result<(), Rejection> {
    let wanted = host_ports(spec);
    for pod in admitted {
        let held = pod.spec.as_ref().map(host_ports).unwrap_or_default();
        for want in &wanted {
            if let Some(holder) = held.iter().find(|h| want.conflicts(h)) {
                let detail = format!(
                    "{} is held by pod {}/{}: {}",
                    want.describe(),
                    pod.metadata.namespace.as_deref().unwrap_or("default"),
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    holder.describe(),
                );
                return Err(Rejection::predicate(NODE_PORTS, DESCRIPTION, &detail));
            }
        }
    }
    Ok(())
}
