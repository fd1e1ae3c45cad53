//! Which pod goes first under pressure, as the kubelet's eviction manager ranks them
//! (pkg/kubelet/eviction/helpers.go): for memory `rankMemoryPressure` — pods whose usage
//! exceeds their requests first, then lower priority, then larger usage above requests;
//! for disk `rankDiskPressureFunc` — the same with disk usage; for PIDs
//! `rankPIDPressure` — lower priority, then more processes. A pod without usage figures
//! goes first, as with the kubelet. Critical pods (static, mirror, priority ≥
//! system-critical) are ranked like the others but never picked: the kubelet refuses to
//! evict them for pressure. The eviction message is the kubelet's `evictionMessage`. Pure.
//! Layer 4.

use std::cmp::Ordering;

use super::threshold::{Signal, format_amount};

/// The kubelet's `SystemCriticalPriority` (`scheduling.SystemCriticalPriority`): pods at or
/// above it are critical. `system-cluster-critical` is exactly this, `system-node-critical`
/// 1000 more.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// One container's usage of the resource under pressure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    /// Its name.
    pub name: String,
    /// What it uses now; `None` when unknown.
    pub usage: Option<u64>,
    /// Its request of the resource (0 without one).
    pub request: u64,
}

/// One pod as the ranking sees it, for the resource under pressure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The pod's UID.
    pub uid: String,
    /// `<namespace>/<name>`, for logs.
    pub name: String,
    /// `spec.priority` (0 without one), as set by the API server's admission.
    pub priority: i32,
    /// Static or mirror pod, or priority ≥ [`SYSTEM_CRITICAL_PRIORITY`]: never evicted.
    pub critical: bool,
    /// The pod's usage of the resource; `None` when it could not be measured.
    pub usage: Option<u64>,
    /// The sum of its containers' requests of the resource.
    pub request: u64,
    /// Its app containers' usage (for the message).
    pub containers: Vec<ContainerUsage>,
}

impl Candidate {
    fn exceeds_requests(&self) -> bool {
        self.usage.is_some_and(|usage| usage > self.request)
    }

    /// Usage above requests, signed.
    fn above_requests(&self) -> i128 {
        i128::from(self.usage.unwrap_or(0)) - i128::from(self.request)
    }
}

/// Whether a pod is critical to the kubelet (`IsCriticalPod`): static, mirror, or
/// `priority` at least [`SYSTEM_CRITICAL_PRIORITY`].
pub fn is_critical(static_or_mirror: bool, priority: Option<i32>) -> bool {
    static_or_mirror || priority.is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
}

/// Sorts `pods` for `signal`, the first to evict first (a stable sort, as the kubelet's
/// `sort.Sort` is not, so ties keep their order).
pub fn rank(signal: Signal, pods: &mut [Candidate]) {
    pods.sort_by(|a, b| compare(signal, a, b));
}

/// The first pod of a ranked list that may be evicted.
pub fn pick(ranked: &[Candidate]) -> Option<&Candidate> {
    ranked.iter().find(|pod| !pod.critical)
}

fn compare(signal: Signal, a: &Candidate, b: &Candidate) -> Ordering {
    // Pods without figures first (`cmpBool(!p1Found, !p2Found)`).
    let unknown = b.usage.is_none().cmp(&a.usage.is_none());
    let priority = a.priority.cmp(&b.priority);
    match signal {
        Signal::PidAvailable => unknown
            .then(priority)
            .then(b.usage.unwrap_or(0).cmp(&a.usage.unwrap_or(0))),
        _ => unknown
            .then(b.exceeds_requests().cmp(&a.exceeds_requests()))
            .then(priority)
            .then(b.above_requests().cmp(&a.above_requests())),
    }
}

/// The kubelet's eviction message: `The node was low on resource: memory. Threshold
/// quantity: 100Mi, available: 50Mi. Container x was using 70Mi, request is 0, has
/// larger consumption of memory. ` (with its trailing space) — a sentence per container
/// using more than it requested.
pub fn eviction_message(
    signal: Signal,
    threshold_quantity: &str,
    available: u64,
    pod: &Candidate,
) -> String {
    let resource = signal.resource();
    let mut message = format!(
        "The node was low on resource: {resource}. Threshold quantity: {threshold_quantity}, available: {}. ",
        format_amount(signal, available)
    );
    for container in &pod.containers {
        let Some(usage) = container.usage else {
            continue;
        };
        if usage > container.request {
            message.push_str(&format!(
                "Container {} was using {}, request is {}, has larger consumption of {resource}. ",
                container.name,
                format_amount(signal, usage),
                format_amount(signal, container.request),
            ));
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    fn pod(name: &str, priority: i32, usage: Option<u64>, request: u64) -> Candidate {
        Candidate {
            uid: name.to_owned(),
            name: name.to_owned(),
            priority,
            critical: false,
            usage,
            request,
            containers: Vec::new(),
        }
    }

    fn order(signal: Signal, mut pods: Vec<Candidate>) -> Vec<String> {
        rank(signal, &mut pods);
        pods.into_iter().map(|p| p.name).collect()
    }

    // The kubelet's TestOrderedByExceedsRequestMemory: below-request pods go last.
    #[test]
    fn exceeding_requests_goes_first() {
        let pods = vec![
            pod("below", 0, Some(99 * MI), 100 * MI),
            pod("exceeds", 0, Some(101 * MI), 100 * MI),
        ];
        assert_eq!(order(Signal::MemoryAvailable, pods), ["exceeds", "below"]);
    }

    // TestOrderedByPriority / TestRankMemoryPressure-like: among pods exceeding requests,
    // lower priority first, then the larger usage above requests.
    #[test]
    fn then_priority_then_usage_above_requests() {
        let pods = vec![
            pod("high-big", 100, Some(900 * MI), 0),
            pod("low-small", -100, Some(10 * MI), 0),
            pod("low-big", -100, Some(500 * MI), 100 * MI),
            pod("guaranteed", -100, Some(50 * MI), 100 * MI),
        ];
        assert_eq!(
            order(Signal::MemoryAvailable, pods),
            ["low-big", "low-small", "high-big", "guaranteed"]
        );
    }

    #[test]
    fn unknown_usage_goes_first_and_pids_rank_by_priority_then_count() {
        let pods = vec![pod("known", -5, Some(1), 0), pod("unknown", 10, None, 0)];
        assert_eq!(order(Signal::NodeFsAvailable, pods), ["unknown", "known"]);
        let pods = vec![
            pod("many-high", 10, Some(500), 0),
            pod("few-low", 0, Some(5), 0),
            pod("many-low", 0, Some(50), 0),
        ];
        assert_eq!(
            order(Signal::PidAvailable, pods),
            ["many-low", "few-low", "many-high"]
        );
    }

    #[test]
    fn a_huge_request_does_not_shield_usage_but_critical_pods_are_never_picked() {
        // A request larger than usage only moves a pod behind those exceeding theirs.
        let mut pods = vec![
            pod("claims-a-lot", 0, Some(900 * MI), u64::MAX / 2),
            Candidate {
                critical: true,
                ..pod("static", -1000, Some(2000 * MI), 0)
            },
        ];
        rank(Signal::MemoryAvailable, &mut pods);
        assert_eq!(pods[0].name, "static");
        assert_eq!(pick(&pods).unwrap().name, "claims-a-lot");
        assert!(pick(&pods[..1]).is_none());
        assert!(is_critical(true, None));
        assert!(is_critical(false, Some(SYSTEM_CRITICAL_PRIORITY)));
        assert!(!is_critical(false, Some(SYSTEM_CRITICAL_PRIORITY - 1)));
    }

    #[test]
    fn message_is_the_kubelets() {
        let mut victim = pod("p", 0, Some(70 * MI), 0);
        victim.containers = vec![
            ContainerUsage {
                name: "x".to_owned(),
                usage: Some(70 * MI),
                request: 0,
            },
            ContainerUsage {
                name: "quiet".to_owned(),
                usage: Some(MI),
                request: 64 * MI,
            },
        ];
        assert_eq!(
            eviction_message(Signal::MemoryAvailable, "100Mi", 50 * MI, &victim),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container x was using 70Mi, request is 0, has larger consumption of memory. "
        );
        let disk = eviction_message(
            Signal::NodeFsAvailable,
            "1Mi",
            512 * 1024,
            &pod("d", 0, None, 0),
        );
        assert_eq!(
            disk,
            "The node was low on resource: ephemeral-storage. Threshold quantity: 1Mi, available: 512Ki. "
        );
    }
}
