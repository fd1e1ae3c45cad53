//! Pod readiness gates (`spec.readinessGates`), as the kubelet's `GeneratePodReadyCondition`
//! (pkg/kubelet/status/generate.go) applies them: a pod whose containers are all ready is
//! `Ready` only when every gate's condition type is present in the pod's conditions with
//! status `True`; otherwise `Ready` is False with reason `ReadinessGatesNotReady` and one
//! message per unmet gate. The gate conditions are written by other API clients, so the
//! conditions are the API pod's (a static pod has none). Pure. Layer 4.

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The kubelet's reason for a pod held back by its readiness gates.
const READINESS_GATES_NOT_READY: &str = "ReadinessGatesNotReady";

/// A pod's readiness gates and the conditions they are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadinessGates {
    /// The condition types of `spec.readinessGates`, in spec order.
    pub gates: Vec<String>,
    /// The pod's conditions as the API holds them: (type, status).
    pub conditions: Vec<(String, String)>,
}

impl ReadinessGates {
    /// The gates of `pod`'s spec, checked against `pod`'s own status conditions.
    pub fn of(pod: &Pod) -> Self {
        let gates = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.readiness_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|gate| gate.condition_type.clone())
            .collect();
        let conditions = pod
            .status
            .as_ref()
            .and_then(|status| status.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        Self { gates, conditions }
    }

    /// The gates of `pod`'s spec, checked against the API's `conditions`.
    pub fn with_conditions(pod: &Pod, conditions: &[PodCondition]) -> Self {
        Self {
            conditions: conditions
                .iter()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect(),
            ..Self::of(pod)
        }
    }

    /// The messages of the gates not met, in spec order, worded as the kubelet's.
    fn unmet(&self) -> Vec<String> {
        self.gates
            .iter()
            .filter_map(
                |gate| match self.conditions.iter().find(|(type_, _)| type_ == gate) {
                    None => Some(format!(
                        "corresponding condition of pod readiness gate {gate:?} does not exist."
                    )),
                    Some((_, status)) if status != "True" => Some(format!(
                        "the status of pod readiness gate {gate:?} is not \"True\", but {status}"
                    )),
                    Some(_) => None,
                },
            )
            .collect()
    }
}

/// `status` with its `Ready` condition held to `gates`: when `ContainersReady` is True,
/// `Ready` is True only if every gate is met, else False with `ReadinessGatesNotReady`.
/// When `ContainersReady` is not True, `Ready` already says why and stays. The transition
/// time moves to `now` only when `Ready`'s status differs from `previous_ready`'s.
pub fn gate_ready(
    status: &PodStatus,
    gates: &ReadinessGates,
    previous_ready: Option<&PodCondition>,
    now: Timestamp,
) -> PodStatus {
    let mut status = status.clone();
    let Some(conditions) = status.conditions.as_mut() else {
        return status;
    };
    let containers_ready = conditions
        .iter()
        .any(|c| c.type_ == "ContainersReady" && c.status == "True");
    if gates.gates.is_empty() || !containers_ready {
        return status;
    }
    let unmet = gates.unmet();
    let (state, reason, message) = if unmet.is_empty() {
        ("True", None, None)
    } else {
        (
            "False",
            Some(READINESS_GATES_NOT_READY.to_owned()),
            Some(unmet.join(", ")),
        )
    };
    let transition = previous_ready
        .filter(|old| old.status == state)
        .and_then(|old| old.last_transition_time.clone())
        .unwrap_or(Time(now));
    let ready = PodCondition {
        type_: "Ready".to_owned(),
        status: state.to_owned(),
        reason,
        message,
        last_transition_time: Some(transition),
        ..PodCondition::default()
    };
    match conditions.iter_mut().find(|c| c.type_ == "Ready") {
        Some(slot) => *slot = ready,
        None => conditions.push(ready),
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: &str) -> PodCondition {
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
            ..PodCondition::default()
        }
    }

    fn computed(containers_ready: &str) -> PodStatus {
        PodStatus {
            conditions: Some(vec![
                condition("Ready", containers_ready),
                condition("ContainersReady", containers_ready),
            ]),
            ..PodStatus::default()
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_000).unwrap()
    }

    fn ready(status: &PodStatus) -> &PodCondition {
        let conditions = status.conditions.as_ref().unwrap();
        conditions.iter().find(|c| c.type_ == "Ready").unwrap()
    }

    fn gates(conditions: Vec<PodCondition>) -> ReadinessGates {
        ReadinessGates {
            gates: vec!["example.com/lb".into()],
            conditions: conditions
                .into_iter()
                .map(|c| (c.type_, c.status))
                .collect(),
        }
    }

    #[test]
    fn a_missing_gate_condition_holds_ready_back() {
        let status = gate_ready(&computed("True"), &gates(vec![]), None, now());
        let ready = ready(&status);
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
            )
        );
        assert_eq!(ready.last_transition_time, Some(Time(now())));
    }

    #[test]
    fn a_false_gate_condition_is_named_with_its_status() {
        let gates = gates(vec![condition("example.com/lb", "False")]);
        let status = gate_ready(&computed("True"), &gates, None, now());
        assert_eq!(
            ready(&status).message.as_deref(),
            Some("the status of pod readiness gate \"example.com/lb\" is not \"True\", but False")
        );
    }

    #[test]
    fn a_true_gate_condition_makes_the_pod_ready_keeping_the_transition_time() {
        let gates = gates(vec![condition("example.com/lb", "True")]);
        let previous = condition("Ready", "True");
        let status = gate_ready(&computed("True"), &gates, Some(&previous), now());
        assert_eq!(ready(&status).status, "True");
        assert_eq!(ready(&status).reason, None);
        assert_eq!(
            ready(&status).last_transition_time,
            previous.last_transition_time
        );
    }

    #[test]
    fn unready_containers_keep_their_own_ready_condition() {
        let gates = gates(vec![condition("example.com/lb", "True")]);
        let status = gate_ready(&computed("False"), &gates, None, now());
        assert_eq!(status, computed("False"));
    }

    #[test]
    fn no_gates_change_nothing() {
        let status = gate_ready(&computed("True"), &ReadinessGates::default(), None, now());
        assert_eq!(status, computed("True"));
    }
}
