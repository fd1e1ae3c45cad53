//! The events the kubelet records on its Node, from the changes of its conditions:
//! `NodeReady`/`NodeNotReady`, `NodeHasSufficientMemory`/`NodeHasInsufficientMemory`,
//! `NodeHasNoDiskPressure`/`NodeHasDiskPressure`, `NodeHasSufficientPID`/
//! `NodeHasInsufficientPID`, each "Node <name> status is now: <reason>", all of type
//! Normal as the kubelet's; and `Starting` once at start. A condition seen for the first
//! time (systemk just started) is announced too, as the kubelet announces its pressure
//! conditions at every start. Pure. Layer 5.

use k8s_openapi::api::core::v1::NodeCondition;

/// The reason of the event systemk records when it starts.
pub const STARTING: &str = "Starting";
/// Its message, the kubelet's.
pub const STARTING_MESSAGE: &str = "Starting kubelet.";

/// A Node event: its reason and message (all are Normal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// CamelCase, e.g. `NodeReady`.
    pub reason: String,
    /// What `kubectl describe node` shows.
    pub message: String,
}

/// The event of a condition type: its reason when True and when False.
const REASONS: [(&str, &str, &str); 4] = [
    ("Ready", "NodeReady", "NodeNotReady"),
    (
        "MemoryPressure",
        "NodeHasInsufficientMemory",
        "NodeHasSufficientMemory",
    ),
    (
        "DiskPressure",
        "NodeHasDiskPressure",
        "NodeHasNoDiskPressure",
    ),
    (
        "PIDPressure",
        "NodeHasInsufficientPID",
        "NodeHasSufficientPID",
    ),
];

/// The events for going from `previous` to `current` conditions on node `node`: one for
/// each condition whose status changed or is new.
pub fn transitions(
    node: &str,
    previous: &[NodeCondition],
    current: &[NodeCondition],
) -> Vec<NodeEvent> {
    let status = |conditions: &[NodeCondition], type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status.clone())
    };
    REASONS
        .iter()
        .filter_map(|(type_, when_true, when_false)| {
            let now = status(current, type_)?;
            if status(previous, type_).as_ref() == Some(&now) {
                return None;
            }
            let reason = if now == "True" { when_true } else { when_false };
            Some(NodeEvent {
                reason: (*reason).to_owned(),
                message: format!("Node {node} status is now: {reason}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(pairs: &[(&str, &str)]) -> Vec<NodeCondition> {
        pairs
            .iter()
            .map(|(type_, status)| NodeCondition {
                type_: (*type_).to_owned(),
                status: (*status).to_owned(),
                ..NodeCondition::default()
            })
            .collect()
    }

    fn reasons(events: &[NodeEvent]) -> Vec<&str> {
        events.iter().map(|e| e.reason.as_str()).collect()
    }

    const HEALTHY: [(&str, &str); 4] = [
        ("Ready", "True"),
        ("MemoryPressure", "False"),
        ("DiskPressure", "False"),
        ("PIDPressure", "False"),
    ];

    #[test]
    fn at_start_every_condition_is_announced() {
        let events = transitions("n1", &[], &conditions(&HEALTHY));
        assert_eq!(
            reasons(&events),
            [
                "NodeReady",
                "NodeHasSufficientMemory",
                "NodeHasNoDiskPressure",
                "NodeHasSufficientPID"
            ]
        );
        assert_eq!(
            events[1].message,
            "Node n1 status is now: NodeHasSufficientMemory"
        );
    }

    #[test]
    fn unchanged_conditions_make_no_events() {
        let healthy = conditions(&HEALTHY);
        assert!(transitions("n1", &healthy, &healthy).is_empty());
    }

    #[test]
    fn each_change_makes_its_event() {
        let healthy = conditions(&HEALTHY);
        let sick = conditions(&[
            ("Ready", "False"),
            ("MemoryPressure", "True"),
            ("DiskPressure", "True"),
            ("PIDPressure", "True"),
        ]);
        assert_eq!(
            reasons(&transitions("n1", &healthy, &sick)),
            [
                "NodeNotReady",
                "NodeHasInsufficientMemory",
                "NodeHasDiskPressure",
                "NodeHasInsufficientPID"
            ]
        );
        let events = transitions("n1", &sick, &healthy);
        assert_eq!(reasons(&events)[0], "NodeReady");
        assert_eq!(events[0].message, "Node n1 status is now: NodeReady");
    }

    #[test]
    fn only_the_changed_condition_makes_an_event() {
        let healthy = conditions(&HEALTHY);
        let mut disk = healthy.clone();
        disk[2].status = "True".to_owned();
        assert_eq!(
            reasons(&transitions("n1", &healthy, &disk)),
            ["NodeHasDiskPressure"]
        );
    }
}
