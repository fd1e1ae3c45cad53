//! What the admitted pods that have not finished hold of the node: their number, the sum
//! of their requests and their host ports. Kept pod by pod as pods are admitted, change
//! and finish, so that admitting one more pod costs the same next to ten pods or a
//! thousand: nothing here walks every pod. Pure.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec};

use super::ports::{HostPort, PortHolder, host_ports};
use super::resources::{Requests, pod_requests};

/// The active admitted pods' hold on the node, by pod UID.
#[derive(Debug, Default)]
pub struct NodeUsage {
    /// What each pod holds.
    shares: HashMap<String, Share>,
    /// The sum of every share's requests; wide enough that removing a pod takes back
    /// exactly what adding it added, even for requests at `u64::MAX`.
    requested: [u128; 3],
    /// Who holds each protocol/port, with the address each holds it on.
    ports: HashMap<(String, i32), Vec<PortHolder>>,
}

/// What one pod holds.
#[derive(Debug)]
struct Share {
    requests: Requests,
    ports: Vec<HostPort>,
}

impl NodeUsage {
    /// The usage of `pods`, each counted as active (tests and one-off checks).
    pub fn of<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Self {
        let mut usage = NodeUsage::default();
        for (index, pod) in pods.into_iter().enumerate() {
            let uid = pod
                .metadata
                .uid
                .clone()
                .unwrap_or_else(|| format!("#{index}"));
            usage.set(&uid, pod);
        }
        usage
    }

    /// Counts `pod` (UID `uid`) as active, replacing what it held before.
    pub fn set(&mut self, uid: &str, pod: &Pod) {
        self.remove(uid);
        let no_spec = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&no_spec);
        let share = Share {
            requests: pod_requests(spec),
            ports: host_ports(spec),
        };
        for (sum, amount) in self.requested.iter_mut().zip(share.requests.amounts()) {
            *sum += u128::from(amount);
        }
        let name = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default()
        );
        for port in &share.ports {
            self.ports.entry(port.key()).or_default().push(PortHolder {
                port: port.clone(),
                uid: uid.to_owned(),
                pod: name.clone(),
            });
        }
        self.shares.insert(uid.to_owned(), share);
    }

    /// Stops counting the pod `uid` (finished, gone or no longer admitted).
    pub fn remove(&mut self, uid: &str) {
        let Some(share) = self.shares.remove(uid) else {
            return;
        };
        for (sum, amount) in self.requested.iter_mut().zip(share.requests.amounts()) {
            *sum -= u128::from(amount);
        }
        for port in &share.ports {
            let key = port.key();
            if let Some(holders) = self.ports.get_mut(&key) {
                holders.retain(|holder| holder.uid != uid);
                if holders.is_empty() {
                    self.ports.remove(&key);
                }
            }
        }
    }

    /// Whether the pod `uid` is counted.
    pub fn contains(&self, uid: &str) -> bool {
        self.shares.contains_key(uid)
    }

    /// How many pods are counted.
    pub fn pods(&self) -> u64 {
        u64::try_from(self.shares.len()).unwrap_or(u64::MAX)
    }

    /// What the counted pods request in all, each amount capped at `u64::MAX`.
    pub(super) fn requested(&self) -> Requests {
        let capped = self
            .requested
            .map(|sum| u64::try_from(sum).unwrap_or(u64::MAX));
        Requests::from_amounts(capped)
    }

    /// The pods holding `port`'s protocol and number, on any address.
    pub(super) fn holders(&self, port: &HostPort) -> &[PortHolder] {
        self.ports.get(&port.key()).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, cpu: &str, port: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"containers": [{"name": "c", "image": "/bin/sleep",
                "resources": {"requests": {"cpu": cpu}},
                "ports": [{"containerPort": port}]}]},
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_set_then_removed_leaves_nothing_behind() {
        let mut usage = NodeUsage::default();
        usage.set("a", &pod("a", "250m", 80));
        usage.set("b", &pod("b", "500m", 80));
        assert_eq!(usage.pods(), 2);
        assert_eq!(usage.requested().amounts()[0], 750);
        let web = HostPort::of_number(80);
        assert_eq!(usage.holders(&web).len(), 2);
        usage.remove("a");
        assert_eq!(usage.requested().amounts()[0], 500);
        assert_eq!(usage.holders(&web)[0].pod, "default/b");
        usage.remove("b");
        usage.remove("b");
        assert_eq!(usage.pods(), 0);
        assert_eq!(usage.requested(), Requests::default());
        assert!(usage.ports.is_empty());
    }

    #[test]
    fn setting_a_pod_again_replaces_what_it_held() {
        let mut usage = NodeUsage::default();
        usage.set("a", &pod("a", "250m", 80));
        usage.set("a", &pod("a", "1", 81));
        assert_eq!(usage.pods(), 1);
        assert_eq!(usage.requested().amounts()[0], 1000);
        assert!(usage.holders(&HostPort::of_number(80)).is_empty());
        assert_eq!(usage.holders(&HostPort::of_number(81)).len(), 1);
    }

    #[test]
    fn requests_at_the_limit_are_taken_back_exactly() {
        let mut usage = NodeUsage::default();
        usage.set("huge", &pod("huge", "100000000000000000000", 1));
        usage.set("huge-too", &pod("huge-too", "100000000000000000000", 2));
        assert_eq!(usage.requested().amounts()[0], u64::MAX);
        usage.remove("huge");
        assert_eq!(usage.requested().amounts()[0], u64::MAX);
        usage.set("small", &pod("small", "1", 3));
        usage.remove("huge-too");
        assert_eq!(usage.requested().amounts()[0], 1000);
    }
}
