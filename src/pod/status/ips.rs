//! The pod's and host's IP lists as the API server accepts them: at most one address per
//! IP family (`validatePodIPs`/`validateHostIPs` in kube-apiserver answer 422 "may specify
//! no more than one IP for each IP family" otherwise), the primary (first, i.e. the
//! node's internal address) first, so `podIPs[0] == podIP` and `hostIPs[0] == hostIP`.
//! The node's own addresses (Node `status.addresses`) may list several of a family; only
//! pod status is narrowed here. Pure. Layer 4.

use std::net::IpAddr;

/// The first address of each IP family, in the order given (the first one stays first).
pub fn one_per_family(addresses: &[IpAddr]) -> Vec<IpAddr> {
    let mut picked: Vec<IpAddr> = Vec::with_capacity(2);
    for address in addresses {
        if !picked.iter().any(|p| p.is_ipv4() == address.is_ipv4()) {
            picked.push(*address);
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[test]
    fn internal_and_external_of_one_family_keep_the_internal_only() {
        assert_eq!(
            one_per_family(&ips(&["10.0.0.5", "203.0.113.5"])),
            ips(&["10.0.0.5"])
        );
    }

    #[test]
    fn one_of_each_family_is_kept_in_order() {
        assert_eq!(
            one_per_family(&ips(&["fd00::5", "10.0.0.5", "2001:db8::5", "203.0.113.5"])),
            ips(&["fd00::5", "10.0.0.5"])
        );
    }

    #[test]
    fn nothing_stays_nothing() {
        assert!(one_per_family(&[]).is_empty());
    }
}
