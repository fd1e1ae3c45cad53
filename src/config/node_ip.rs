//! The node's addresses when no flag names them: internal = the first private address
//! (RFC 1918, or an IPv6 unique local address), external = the first global one; when only
//! one kind exists, the other copies it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::ifaddrs::getifaddrs;

/// The node's internal and external address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIps {
    /// Reachable inside the cluster's network.
    pub internal: IpAddr,
    /// Reachable from outside.
    pub external: IpAddr,
}

/// Picks the node's addresses from the given flags and, for what they leave open, from
/// `host_addresses` (in interface order). `None` when neither flags nor host have one.
pub fn detect_node_ips(
    internal: Option<IpAddr>,
    external: Option<IpAddr>,
    host_addresses: &[IpAddr],
) -> Option<NodeIps> {
    let first_private = host_addresses.iter().copied().find(is_private);
    let first_global = host_addresses.iter().copied().find(is_global);
    let internal = internal.or(first_private);
    let external = external.or(first_global);
    match (internal, external) {
        (Some(internal), Some(external)) => Some(NodeIps { internal, external }),
        (Some(only), None) | (None, Some(only)) => Some(NodeIps {
            internal: only,
            external: only,
        }),
        (None, None) => None,
    }
}

/// The addresses of the host's interfaces that are up, in interface order.
pub fn host_addresses() -> std::io::Result<Vec<IpAddr>> {
    let addresses = getifaddrs().map_err(std::io::Error::from)?;
    Ok(addresses
        .filter(|ifa| ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP))
        .filter_map(|ifa| {
            let address = ifa.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect())
}

fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => is_unique_local(v6),
    }
}

fn is_global(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: &Ipv4Addr) -> bool {
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation())
}

fn is_global_v6(ip: &Ipv6Addr) -> bool {
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unicast_link_local()
        || is_unique_local(ip))
}

/// fc00::/7, IPv6's counterpart of RFC 1918.
fn is_unique_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xfe00 == 0xfc00
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn private_is_internal_and_global_is_external() {
        let found = detect_node_ips(
            None,
            None,
            &ips(&["127.0.0.1", "fe80::1", "192.168.1.5", "8.8.4.4"]),
        );
        assert_eq!(
            found,
            Some(NodeIps {
                internal: ips(&["192.168.1.5"])[0],
                external: ips(&["8.8.4.4"])[0]
            })
        );
    }

    #[test]
    fn one_kind_only_is_copied() {
        let only_private = detect_node_ips(None, None, &ips(&["10.0.0.2"])).unwrap();
        assert_eq!(only_private.internal, only_private.external);
        let only_global = detect_node_ips(None, None, &ips(&["2001:db9::1"])).unwrap();
        assert_eq!(only_global.internal, only_global.external);
    }

    #[test]
    fn flags_win_and_nothing_is_none() {
        let flagged = detect_node_ips(
            ips(&["10.1.1.1"]).pop(),
            None,
            &ips(&["192.168.0.1", "1.1.1.1"]),
        );
        assert_eq!(flagged.unwrap().internal, ips(&["10.1.1.1"])[0]);
        assert_eq!(
            detect_node_ips(None, None, &ips(&["127.0.0.1", "::1", "fe80::2"])),
            None
        );
    }

    #[test]
    fn unique_local_v6_is_internal() {
        let found = detect_node_ips(None, None, &ips(&["fd00::5", "2a01::7"])).unwrap();
        assert_eq!(found.internal, ips(&["fd00::5"])[0]);
        assert_eq!(found.external, ips(&["2a01::7"])[0]);
    }
}
