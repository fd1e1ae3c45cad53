//! The kubelet-owned pod conditions (Initialized, Ready, ContainersReady, PodScheduled),
//! following pkg/kubelet/status/generate.go, and their `lastTransitionTime`, which only
//! moves when a condition's status changes (as the kubelet's status manager does).

use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::{ContainerObservation, ContainerState, PodObservation, PodPhase};

const POD_COMPLETED: &str = "PodCompleted";
const POD_FAILED: &str = "PodFailed";

/// A condition before its transition time is known.
#[derive(Clone)]
struct Condition {
    type_: &'static str,
    status: bool,
    reason: Option<&'static str>,
    message: Option<String>,
}

impl Condition {
    fn met(type_: &'static str) -> Self {
        Self {
            type_,
            status: true,
            reason: None,
            message: None,
        }
    }

    fn unmet(type_: &'static str, reason: &'static str, message: Option<String>) -> Self {
        Self {
            type_,
            status: false,
            reason: Some(reason),
            message,
        }
    }
}

/// The conditions in the kubelet's order, with transition times carried over from
/// `previous` where the status did not change.
pub(super) fn pod_conditions(
    pod: &PodObservation,
    phase: PodPhase,
    previous: Option<&PodStatus>,
    now: Timestamp,
) -> Vec<PodCondition> {
    let containers_ready = containers_ready(pod, phase);
    let ready = Condition {
        type_: "Ready",
        ..containers_ready.clone()
    };
    [
        initialized(pod, phase),
        ready,
        containers_ready,
        Condition::met("PodScheduled"),
    ]
    .into_iter()
    .map(|c| with_transition_time(c, previous, now))
    .collect()
}

/// Initialized: every init container exited with 0 and every sidecar started, or an app
/// container already ran (so a sidecar restarting later does not undo it).
fn initialized(pod: &PodObservation, phase: PodPhase) -> Condition {
    const TYPE: &str = "Initialized";
    if phase == PodPhase::Succeeded {
        return Condition {
            reason: Some(POD_COMPLETED),
            ..Condition::met(TYPE)
        };
    }
    if pod.containers.iter().any(ContainerObservation::has_started) {
        return Condition::met(TYPE);
    }
    let incomplete = names(&pod.init_containers, |c| {
        if c.sidecar {
            !(c.started && matches!(c.state, ContainerState::Running { .. }))
        } else {
            !init_succeeded(c)
        }
    });
    if incomplete.is_empty() {
        return Condition::met(TYPE);
    }
    Condition::unmet(
        TYPE,
        "ContainersNotInitialized",
        Some(format!("containers with incomplete status: {incomplete}")),
    )
}

/// ContainersReady (and Ready, with no readiness gates): every sidecar and every app
/// container is ready.
fn containers_ready(pod: &PodObservation, phase: PodPhase) -> Condition {
    const TYPE: &str = "ContainersReady";
    match phase {
        PodPhase::Succeeded => return Condition::unmet(TYPE, POD_COMPLETED, None),
        PodPhase::Failed => return Condition::unmet(TYPE, POD_FAILED, None),
        PodPhase::Pending | PodPhase::Running => {}
    }
    let sidecars = pod.init_containers.iter().filter(|c| c.sidecar);
    let serving: Vec<ContainerObservation> = sidecars.chain(&pod.containers).cloned().collect();
    let unready = names(&serving, |c| !app_ready(c));
    if unready.is_empty() {
        return Condition::met(TYPE);
    }
    Condition::unmet(
        TYPE,
        "ContainersNotReady",
        Some(format!("containers with unready status: {unready}")),
    )
}

/// An init container is ready once it exited with 0 (kubelet prober manager).
pub(super) fn init_succeeded(c: &ContainerObservation) -> bool {
    matches!(&c.state, ContainerState::Terminated(t) if t.exit.succeeded())
}

/// An app container is ready while it runs and reports ready.
pub(super) fn app_ready(c: &ContainerObservation) -> bool {
    c.ready && matches!(c.state, ContainerState::Running { .. })
}

/// Names of the matching containers as Go prints a string slice: `[a b]`, or "" if none.
fn names(
    containers: &[ContainerObservation],
    pick: impl Fn(&ContainerObservation) -> bool,
) -> String {
    let picked: Vec<&str> = containers
        .iter()
        .filter(|c| pick(c))
        .map(|c| c.name.as_str())
        .collect();
    if picked.is_empty() {
        String::new()
    } else {
        format!("[{}]", picked.join(" "))
    }
}

fn with_transition_time(
    c: Condition,
    previous: Option<&PodStatus>,
    now: Timestamp,
) -> PodCondition {
    let status = if c.status { "True" } else { "False" };
    let unchanged = previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|list| list.iter().find(|old| old.type_ == c.type_))
        .filter(|old| old.status == status)
        .and_then(|old| old.last_transition_time.clone());
    PodCondition {
        type_: c.type_.to_owned(),
        status: status.to_owned(),
        reason: c.reason.map(str::to_owned),
        message: c.message,
        last_transition_time: Some(unchanged.unwrap_or(Time(now))),
        ..PodCondition::default()
    }
}
