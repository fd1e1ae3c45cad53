//! Cases of the status patch: what another writer owns stays, what changed goes out.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, PodCondition,
    PodIP, PodStatus,
};
use serde_json::{Value, json};

use super::*;

fn condition(type_: &str, status: &str) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        ..PodCondition::default()
    }
}

fn waiting(reason: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: None,
        }),
        ..ContainerState::default()
    }
}

fn container(state: ContainerState) -> ContainerStatus {
    ContainerStatus {
        name: "app".into(),
        image: "/bin/sleep".into(),
        state: Some(state),
        ..ContainerStatus::default()
    }
}

/// What systemk computes: its own four conditions, one container.
fn computed(ready: &str, state: ContainerState) -> PodStatus {
    PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![
            condition("Initialized", "True"),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", "True"),
        ]),
        pod_ip: Some("10.0.0.5".into()),
        pod_ips: Some(vec![PodIP {
            ip: "10.0.0.5".into(),
        }]),
        container_statuses: Some(vec![container(state)]),
        ..PodStatus::default()
    }
}

fn with_condition(mut status: PodStatus, extra: PodCondition) -> PodStatus {
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .insert(0, extra);
    status
}

fn patch(api: &PodStatus, new: &PodStatus) -> Value {
    status_patch("u-1", Some(api), new).expect("a patch")
}

fn condition_types(patch: &Value) -> Vec<&str> {
    patch["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect()
}

#[test]
fn nothing_changed_is_no_patch() {
    let status = computed("True", waiting("ContainerCreating"));
    assert_eq!(status_patch("u-1", Some(&status), &status), None);
}

#[test]
fn the_uid_is_a_precondition() {
    let api = computed("False", waiting("ContainerCreating"));
    let new = computed("True", waiting("ContainerCreating"));
    assert_eq!(patch(&api, &new)["metadata"], json!({"uid": "u-1"}));
}

#[test]
fn issue_14_a_disruption_target_condition_is_kept() {
    let disruption = PodCondition {
        reason: Some("DeletionByTaintManager".into()),
        ..condition("DisruptionTarget", "True")
    };
    let api = with_condition(computed("False", waiting("ContainerCreating")), disruption);
    let new = computed("True", waiting("ContainerCreating"));
    let patch = patch(&api, &new);
    // Only what changed, merged by type; the other writer's condition is neither sent
    // nor deleted, and stays first in the order.
    assert_eq!(condition_types(&patch), ["Ready", "ContainersReady"]);
    assert!(!patch.to_string().contains("$patch"), "{patch}");
    assert_eq!(
        patch["status"]["$setElementOrder/conditions"],
        json!([{"type": "DisruptionTarget"}, {"type": "Initialized"}, {"type": "Ready"},
               {"type": "ContainersReady"}, {"type": "PodScheduled"}])
    );
    assert_eq!(
        patch["status"]["conditions"][0],
        json!({"type": "Ready", "status": "True"})
    );
}

#[test]
fn issue_14_a_readiness_gate_condition_is_kept() {
    let gate = condition("example.com/lb-ready", "True");
    let api = with_condition(computed("True", waiting("ContainerCreating")), gate);
    let mut new = computed("True", waiting("ContainerCreating"));
    new.phase = Some("Pending".into());
    let patch = patch(&api, &new);
    assert_eq!(patch["status"], json!({"phase": "Pending"}));
    assert_eq!(
        merged_status(Some(&api), &new).conditions.unwrap()[0].type_,
        "example.com/lb-ready"
    );
}

#[test]
fn a_changed_container_status_goes_out_whole() {
    let api = computed("False", waiting("ContainerCreating"));
    let running = ContainerState {
        running: Some(ContainerStateRunning::default()),
        ..ContainerState::default()
    };
    let new = computed("False", running);
    let patch = patch(&api, &new);
    // containerStatuses is atomic in the API types: the whole list replaces the old one.
    assert_eq!(
        patch["status"]["containerStatuses"],
        serde_json::to_value(new.container_statuses.as_ref().unwrap()).unwrap()
    );
    assert_eq!(patch["status"].as_object().unwrap().len(), 1, "{patch}");
}

#[test]
fn reason_and_message_that_went_away_are_cleared_with_null() {
    let mut api = computed("False", waiting("ContainerCreating"));
    api.reason = Some("Evicted".into());
    api.message = Some("low on memory".into());
    api.conditions.as_mut().unwrap()[1].reason = Some("ContainersNotReady".into());
    let new = computed("False", waiting("ContainerCreating"));
    let patch = patch(&api, &new);
    assert_eq!(patch["status"]["reason"], Value::Null);
    assert_eq!(patch["status"]["message"], Value::Null);
    assert!(patch["status"].as_object().unwrap().contains_key("reason"));
    assert_eq!(
        patch["status"]["conditions"],
        json!([{"type": "Ready", "reason": null}])
    );
}

#[test]
fn fields_other_writers_set_are_never_cleared() {
    let mut api = computed("True", waiting("ContainerCreating"));
    api.nominated_node_name = Some("n2".into());
    let new = computed("True", waiting("ContainerCreating"));
    assert_eq!(status_patch("u-1", Some(&api), &new), None);
}

#[test]
fn a_pod_ip_that_went_away_is_deleted_by_key() {
    let mut api = computed("True", waiting("ContainerCreating"));
    api.pod_ips = Some(vec![
        PodIP {
            ip: "10.0.0.5".into(),
        },
        PodIP {
            ip: "203.0.113.5".into(),
        },
    ]);
    let new = computed("True", waiting("ContainerCreating"));
    let patch = patch(&api, &new);
    assert_eq!(
        patch["status"]["podIPs"],
        json!([{"ip": "203.0.113.5", "$patch": "delete"}])
    );
    assert_eq!(
        patch["status"]["$setElementOrder/podIPs"],
        json!([{"ip": "10.0.0.5"}])
    );
}

#[test]
fn a_first_status_is_sent_in_full() {
    let new = computed("True", waiting("ContainerCreating"));
    let patch = status_patch("u-1", None, &new).unwrap();
    assert_eq!(patch["status"]["phase"], "Running");
    assert_eq!(condition_types(&patch).len(), 4);
    assert_eq!(
        patch["status"]["$setElementOrder/podIPs"],
        json!([{"ip": "10.0.0.5"}])
    );
}
