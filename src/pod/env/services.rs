//! Service environment variables, as the kubelet's `getServiceEnvVarMap`
//! (`kubelet_pods.go`) and `envvars.FromServices` (`pkg/kubelet/envvars/envvars.go`) make
//! them: for every Service of the pod's namespace with a cluster IP (when
//! `enableServiceLinks`, default true) and, always, the `kubernetes` Service of `default`:
//! `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT` (the first port),
//! `<NAME>_SERVICE_PORT_<PORTNAME>` (named ports), and Docker's link variables
//! `<NAME>_PORT`, `<NAME>_PORT_<port>_<PROTO>` with `_PROTO`, `_PORT` and `_ADDR`. Names
//! are upper-cased with `-` as `_`. The API server validates what these are built from
//! (DNS labels, IANA port names, IPs); what reaches the environment file is checked again
//! here, and a Service that fails is left out, so no API object can write a line break,
//! `=` or `$` into a variable's name. Layer 4: pure.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::pod::service_link::{MASTER_SERVICE, ServiceLink};

/// The service variables of a pod in `namespace` from `services`.
pub(crate) fn service_variables(
    services: &[ServiceLink],
    namespace: &str,
    enable_links: bool,
) -> BTreeMap<String, String> {
    // By name: the namespace's own Service of the master's name yields to the master's.
    let mut chosen: BTreeMap<&str, &ServiceLink> = BTreeMap::new();
    for service in services
        .iter()
        .filter(|s| s.is_for(namespace, enable_links))
    {
        let is_master = (service.namespace.as_str(), service.name.as_str()) == MASTER_SERVICE;
        if is_master || !chosen.contains_key(service.name.as_str()) {
            chosen.insert(&service.name, service);
        }
    }
    let mut env = BTreeMap::new();
    for service in chosen.values() {
        if let Err(why) = add_service(&mut env, service) {
            tracing::warn!(namespace = %service.namespace, service = %service.name, why, "service left out of the environment");
        }
    }
    env
}

/// Adds the variables of `service`, or none when it has no cluster IP or something it is
/// made of is not what the API server allows.
fn add_service(env: &mut BTreeMap<String, String>, service: &ServiceLink) -> Result<(), String> {
    if service.cluster_ip.is_empty() || service.cluster_ip == "None" {
        return Ok(());
    }
    let ip: IpAddr = service
        .cluster_ip
        .parse()
        .map_err(|_| format!("clusterIP {:?} is not an IP address", service.cluster_ip))?;
    if !is_label(&service.name, 63) {
        return Err(format!("name {:?} is not a DNS label", service.name));
    }
    let Some(first) = service.ports.first() else {
        return Err("it has no ports".to_owned());
    };
    let mut vars = Vec::new();
    let prefix = variable_name(&service.name);
    vars.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
    vars.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
    for (index, port) in service.ports.iter().enumerate() {
        if !(1..=65535).contains(&port.port) {
            return Err(format!("port {} is out of range", port.port));
        }
        if !port.name.is_empty() {
            if !is_label(&port.name, 15) {
                return Err(format!(
                    "port name {:?} is not an IANA service name",
                    port.name
                ));
            }
            let name = variable_name(&port.name);
            vars.push((
                format!("{prefix}_SERVICE_PORT_{name}"),
                port.port.to_string(),
            ));
        }
        let protocol = match port.protocol.as_str() {
            "" => "TCP",
            known @ ("TCP" | "UDP" | "SCTP") => known,
            other => return Err(format!("protocol {other:?} is unknown")),
        };
        let lower = protocol.to_ascii_lowercase();
        let url = format!("{lower}://{}", SocketAddr::new(ip, port.port as u16));
        if index == 0 {
            vars.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!("{prefix}_PORT_{}_{protocol}", port.port);
        vars.push((format!("{port_prefix}_PROTO"), lower));
        vars.push((format!("{port_prefix}_PORT"), port.port.to_string()));
        vars.push((format!("{port_prefix}_ADDR"), ip.to_string()));
        vars.push((port_prefix, url));
    }
    env.extend(vars);
    Ok(())
}

/// The kubelet's `makeEnvVariableName`: upper case, `-` as `_`.
fn variable_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// A lower-case DNS label of at most `max` bytes (Service names; port names, which are
/// IANA service names, are of the same characters).
fn is_label(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::service_link::ServiceLinkPort;

    fn service(namespace: &str, name: &str, ip: &str, ports: &[(&str, i32, &str)]) -> ServiceLink {
        ServiceLink {
            namespace: namespace.into(),
            name: name.into(),
            cluster_ip: ip.into(),
            ports: ports
                .iter()
                .map(|(name, port, protocol)| ServiceLinkPort {
                    name: (*name).into(),
                    port: *port,
                    protocol: (*protocol).into(),
                })
                .collect(),
        }
    }

    fn pairs(env: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn variables_are_the_kubelets() {
        let services = [service(
            "shop",
            "redis-primary",
            "10.43.0.7",
            &[("", 6379, ""), ("metrics", 9121, "TCP"), ("dns", 53, "UDP")],
        )];
        let env = service_variables(&services, "shop", true);
        assert_eq!(
            pairs(&env),
            [
                ("REDIS_PRIMARY_PORT", "tcp://10.43.0.7:6379"),
                ("REDIS_PRIMARY_PORT_53_UDP", "udp://10.43.0.7:53"),
                ("REDIS_PRIMARY_PORT_53_UDP_ADDR", "10.43.0.7"),
                ("REDIS_PRIMARY_PORT_53_UDP_PORT", "53"),
                ("REDIS_PRIMARY_PORT_53_UDP_PROTO", "udp"),
                ("REDIS_PRIMARY_PORT_6379_TCP", "tcp://10.43.0.7:6379"),
                ("REDIS_PRIMARY_PORT_6379_TCP_ADDR", "10.43.0.7"),
                ("REDIS_PRIMARY_PORT_6379_TCP_PORT", "6379"),
                ("REDIS_PRIMARY_PORT_6379_TCP_PROTO", "tcp"),
                ("REDIS_PRIMARY_PORT_9121_TCP", "tcp://10.43.0.7:9121"),
                ("REDIS_PRIMARY_PORT_9121_TCP_ADDR", "10.43.0.7"),
                ("REDIS_PRIMARY_PORT_9121_TCP_PORT", "9121"),
                ("REDIS_PRIMARY_PORT_9121_TCP_PROTO", "tcp"),
                ("REDIS_PRIMARY_SERVICE_HOST", "10.43.0.7"),
                ("REDIS_PRIMARY_SERVICE_PORT", "6379"),
                ("REDIS_PRIMARY_SERVICE_PORT_DNS", "53"),
                ("REDIS_PRIMARY_SERVICE_PORT_METRICS", "9121"),
            ]
        );
    }

    #[test]
    fn ipv6_addresses_are_bracketed_in_urls() {
        let services = [service("shop", "web", "fd00::10", &[("http", 80, "TCP")])];
        let env = service_variables(&services, "shop", true);
        assert_eq!(env["WEB_PORT"], "tcp://[fd00::10]:80");
        assert_eq!(env["WEB_SERVICE_HOST"], "fd00::10");
    }

    #[test]
    fn only_the_namespace_and_the_master_service_without_links_only_the_master() {
        let services = [
            service(
                "default",
                "kubernetes",
                "10.43.0.1",
                &[("https", 443, "TCP")],
            ),
            service("shop", "web", "10.43.0.2", &[("http", 80, "TCP")]),
            service("other", "db", "10.43.0.3", &[("", 5432, "TCP")]),
            service("shop", "headless", "None", &[("http", 80, "TCP")]),
            service("shop", "pending", "", &[("http", 80, "TCP")]),
        ];
        let with_links = service_variables(&services, "shop", true);
        assert_eq!(with_links["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
        assert_eq!(with_links["WEB_SERVICE_HOST"], "10.43.0.2");
        assert!(!with_links.contains_key("DB_SERVICE_HOST"));
        assert!(
            !with_links
                .keys()
                .any(|k| k.starts_with("HEADLESS") || k.starts_with("PENDING"))
        );
        let without = service_variables(&services, "shop", false);
        assert!(
            without.keys().all(|k| k.starts_with("KUBERNETES_")),
            "{without:?}"
        );
        assert_eq!(without["KUBERNETES_PORT_443_TCP_PROTO"], "tcp");
    }

    #[test]
    fn the_master_service_wins_over_a_namespaces_service_of_its_name() {
        let services = [
            service("shop", "kubernetes", "10.43.9.9", &[("https", 443, "TCP")]),
            service(
                "default",
                "kubernetes",
                "10.43.0.1",
                &[("https", 443, "TCP")],
            ),
        ];
        let env = service_variables(&services, "shop", true);
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
    }

    /// Names and values come from API objects: whatever the test API server (or a
    /// compromised one) stores must not put a line break, `=` or `$` into a name, nor
    /// anything but an IP and numbers into a value.
    #[test]
    fn injection_through_a_service_is_left_out() {
        let services = [
            service(
                "shop",
                "evil\nLD_PRELOAD=/tmp/x",
                "10.43.0.2",
                &[("", 80, "")],
            ),
            service("shop", "a$b", "10.43.0.3", &[("", 80, "")]),
            service("shop", "Upper", "10.43.0.4", &[("", 80, "")]),
            service("shop", "port", "10.43.0.5", &[("x\ny=1", 80, "")]),
            service("shop", "proto", "10.43.0.6", &[("", 80, "TCP\nX=1")]),
            service("shop", "ip", "10.0.0.1\nX=1", &[("", 80, "")]),
            service("shop", "range", "10.43.0.7", &[("", 70000, "")]),
            service("shop", "noports", "10.43.0.8", &[]),
            service("shop", "good", "10.43.0.9", &[("", 80, "")]),
        ];
        let env = service_variables(&services, "shop", true);
        assert!(env.keys().all(|k| k.starts_with("GOOD_")), "{env:?}");
        assert_eq!(env["GOOD_SERVICE_HOST"], "10.43.0.9");
    }
}
