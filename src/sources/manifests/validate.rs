//! Checks a static pod must pass before it is handed to the reconciler: the names that end
//! up in unit names, paths and the API follow Kubernetes' DNS rules. Layer 5, pure.
//!
//! This is not the API server's full pod validation; the unit layer still validates and
//! escapes everything it renders.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use crate::unit::{DNS_LABEL_MAX, DNS_SUBDOMAIN_MAX, is_dns_label, is_dns_subdomain};

/// Checks a defaulted static pod; the error says what is wrong, for the file's report.
pub(super) fn validate(pod: &Pod) -> Result<(), String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if !is_dns_label(namespace) {
        return Err(format!(
            "namespace {namespace:?} is not a DNS label (at most {DNS_LABEL_MAX} of a-z, 0-9 and '-')"
        ));
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if !is_dns_subdomain(name) {
        return Err(format!(
            "pod name {name:?} (with the node name appended) is not a DNS subdomain \
             (at most {DNS_SUBDOMAIN_MAX} of a-z, 0-9, '-' and '.')"
        ));
    }
    let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
    if spec.containers.is_empty() {
        return Err("spec.containers is empty".to_owned());
    }
    let mut seen = BTreeSet::new();
    let init = spec.init_containers.iter().flatten();
    for container in init.chain(&spec.containers) {
        let container_name = container.name.as_str();
        if !is_dns_label(container_name) {
            return Err(format!(
                "container name {container_name:?} is not a DNS label"
            ));
        }
        if !seen.insert(container_name) {
            return Err(format!("container name {container_name:?} is used twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("web-1"));
        assert!(is_dns_label("a"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label("-web"));
        assert!(!is_dns_label("web-"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label("a_b"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }

    #[test]
    fn dns_subdomains() {
        assert!(is_dns_subdomain("web.example-1"));
        assert!(!is_dns_subdomain("web..example"));
        assert!(!is_dns_subdomain("web/../etc"));
        assert!(!is_dns_subdomain(&"a.".repeat(127)));
        assert!(!is_dns_subdomain(&"a".repeat(254)));
    }

    #[test]
    fn subdomain_parts_may_exceed_a_label() {
        // Kubernetes' IsDNS1123Subdomain has no per-part limit: a Deployment named with
        // 60 characters gets pods whose names have no dot and run past 63.
        let long_pod = format!("{}-7d4b9c8f6d-x2x9z", "a".repeat(60));
        assert!(is_dns_subdomain(&long_pod));
        assert!(is_dns_subdomain(&"b".repeat(253)));
        assert!(!is_dns_subdomain(&format!("{long_pod}-")));
    }
}
