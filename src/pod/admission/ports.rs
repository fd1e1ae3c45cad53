//! The host-port check of admission (the scheduler's `nodeports.Fits`, which the kubelet
//! runs): a port the pod wants that an admitted pod already holds, by protocol, port and
//! host IP, where `0.0.0.0` (or `::`, or none) holds the port on every address. Pods run
//! in the host's network namespace here, so a container's `containerPort` is its host port
//! (`hostPort` when it sets one), for app containers and sidecars alike. Pure.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ContainerPort, PodSpec};

use super::{NODE_PORTS, Rejection};

/// The scheduler's description of this failure.
const DESCRIPTION: &str = "node(s) didn't have free ports for the requested pod ports";

/// One port a pod holds on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostPort {
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

    /// A TCP port on every address.
    #[cfg(test)]
    pub(super) fn of_number(port: i32) -> HostPort {
        HostPort {
            protocol: "TCP".to_owned(),
            port,
            ip: None,
        }
    }

    /// What ports that may conflict share: protocol and number.
    pub(super) fn key(&self) -> (String, i32) {
        (self.protocol.clone(), self.port)
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
pub(super) fn host_ports(spec: &PodSpec) -> Vec<HostPort> {
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

/// A pod holding a port, for the conflict check and its message.
#[derive(Debug, Clone)]
pub(super) struct PortHolder {
    pub(super) port: HostPort,
    pub(super) uid: String,
    /// `namespace/name`, as the rejection names it.
    pub(super) pod: String,
}

/// Whether every host port `spec` wants is free of the ports held, as `holders` tells
/// who holds a port's protocol and number.
pub(super) fn fits<'a>(
    spec: &PodSpec,
    holders: impl Fn(&HostPort) -> &'a [PortHolder],
) -> Result<(), Rejection> {
    for want in host_ports(spec) {
        let holders = holders(&want);
        if let Some(holder) = holders.iter().find(|h| want.conflicts(&h.port)) {
            let detail = format!(
                "{} is held by pod {}: {}",
                want.describe(),
                holder.pod,
                holder.port.describe(),
            );
            return Err(Rejection::predicate(NODE_PORTS, DESCRIPTION, &detail));
        }
    }
    Ok(())
}
