//! The test API server refuses the pod and node status writes kube-apiserver refuses, with
//! its messages, accepts what it accepts, and merges pod status patches as it does. One
//! test per rule (see `status_validation.rs` for the upstream functions).

use serde_json::{Value, json};

use super::crud_tests::{PODS, pod, server};
use super::http_client::Client;

const SMP: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
const STATUS: &str = "/api/v1/namespaces/default/pods/p/status";

async fn with_pod(restart_policy: &str) -> (super::TestApiServer, Client) {
    let (server, client) = server().await;
    let mut p = pod("p", Some("n1"), json!({}));
    p["spec"]["restartPolicy"] = json!(restart_policy);
    let (code, _) = client.post(PODS, &p).await;
    assert_eq!(code, 201);
    (server, client)
}

async fn patch_status(client: &Client, status: Value) -> (u16, Value) {
    client
        .patch(STATUS, SMP, &json!({ "status": status }))
        .await
}

fn message(answer: &Value) -> &str {
    answer["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn issue_14_two_pod_ips_of_one_family_are_invalid() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(
        &client,
        json!({"podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "203.0.113.5"}]}),
    )
    .await;
    assert_eq!(
        (code, answer["reason"].as_str()),
        (422, Some("Invalid")),
        "{answer}"
    );
    assert_eq!(
        message(&answer),
        "Pod \"p\" is invalid: status.podIPs: Invalid value: []core.PodIP{core.PodIP{IP:\"10.0.0.5\"}, core.PodIP{IP:\"203.0.113.5\"}}: may specify no more than one IP for each IP family"
    );
}

#[tokio::test]
async fn issue_14_one_pod_ip_per_family_is_accepted() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(
        &client,
        json!({"podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
               "hostIP": "10.0.0.5", "hostIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
}

#[tokio::test]
async fn issue_14_two_host_ips_of_one_family_are_invalid() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(
        &client,
        json!({"hostIP": "10.0.0.5", "hostIPs": [{"ip": "10.0.0.5"}, {"ip": "10.0.0.6"}]}),
    )
    .await;
    assert_eq!(code, 422, "{answer}");
    assert!(
        message(&answer).contains("status.hostIPs: Invalid value: []core.HostIP{core.HostIP{IP:\"10.0.0.5\"}, core.HostIP{IP:\"10.0.0.6\"}}: may specify no more than one IP for each IP family"),
        "{answer}"
    );
}

#[tokio::test]
async fn issue_14_a_pod_ip_must_be_an_ip() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(&client, json!({"podIPs": [{"ip": "not-an-ip"}]})).await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        message(&answer),
        "Pod \"p\" is invalid: status.podIPs[0]: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    );
}

/// The v1 conversion makes `podIP` win over a `podIPs` list that disagrees.
#[tokio::test]
async fn issue_14_pod_ip_wins_over_a_disagreeing_list() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(
        &client,
        json!({"podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.6"}]}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"]["podIPs"], json!([{"ip": "10.0.0.5"}]));
}

#[tokio::test]
async fn issue_14_host_ips_without_host_ip_are_invalid() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(&client, json!({"hostIPs": [{"ip": "10.0.0.5"}]})).await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        message(&answer),
        "Pod \"p\" is invalid: status.hostIPs[0].ip: Invalid value: \"10.0.0.5\": must be equal to `hostIP`"
    );
}

#[tokio::test]
async fn issue_14_a_condition_type_must_be_a_qualified_name() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(
        &client,
        json!({"conditions": [{"type": "no spaces!", "status": "True"}]}),
    )
    .await;
    assert_eq!(code, 422, "{answer}");
    assert!(
        message(&answer).starts_with("Pod \"p\" is invalid: metadata.conditions[0].Type: Invalid value: \"no spaces!\": name part must consist of alphanumeric characters"),
        "{answer}"
    );
    let (code, answer) = patch_status(
        &client,
        json!({"conditions": [{"type": "example.com/lb-ready", "status": "True"}]}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
}

/// What the real server does not check is accepted here too: condition statuses.
#[tokio::test]
async fn issue_14_condition_statuses_are_not_validated_by_the_real_server_either() {
    let (_server, client) = with_pod("Always").await;
    let (code, answer) = patch_status(
        &client,
        json!({"conditions": [{"type": "Ready", "status": "Maybe"}]}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
}

#[tokio::test]
async fn issue_14_a_terminated_container_stays_terminated_under_never() {
    let (_server, client) = with_pod("Never").await;
    let terminated = json!([{"name": "main", "image": "uptimed", "imageID": "", "ready": false,
        "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}]);
    let (code, answer) = patch_status(&client, json!({"containerStatuses": terminated})).await;
    assert_eq!(code, 200, "{answer}");
    let running = json!([{"name": "main", "image": "uptimed", "imageID": "", "ready": true,
        "restartCount": 0, "state": {"running": {}}}]);
    let (code, answer) = patch_status(&client, json!({"containerStatuses": running})).await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        message(&answer),
        "Pod \"p\" is invalid: status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"
    );
}

#[tokio::test]
async fn a_terminated_sidecar_may_run_again_under_never() {
    let (server, client) = server().await;
    let mut p = pod("p", Some("n1"), json!({}));
    p["spec"]["restartPolicy"] = json!("Never");
    p["spec"]["initContainers"] = json!([
        {"name": "proxy", "image": "/bin/sh", "restartPolicy": "Always"},
        {"name": "setup", "image": "/bin/true"},
    ]);
    let (code, answer) = client.post(PODS, &p).await;
    assert_eq!(code, 201, "{answer}");
    let status = |state: Value| {
        json!([
            {"name": "proxy", "image": "/bin/sh", "imageID": "", "ready": false,
             "restartCount": 0, "state": state.clone()},
            {"name": "setup", "image": "/bin/true", "imageID": "", "ready": false,
             "restartCount": 0, "state": state},
        ])
    };
    let terminated = status(json!({"terminated": {"exitCode": 0}}));
    let (code, answer) = patch_status(&client, json!({"initContainerStatuses": terminated})).await;
    assert_eq!(code, 200, "{answer}");
    let running = status(json!({"running": {}}));
    let (code, answer) = patch_status(&client, json!({"initContainerStatuses": running})).await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        message(&answer),
        "Pod \"p\" is invalid: status.initContainerStatuses[1].state: Forbidden: may not be transitioned to non-terminated state",
        "only the regular init container is held"
    );
    drop(server);
}

#[tokio::test]
async fn issue_14_the_qos_class_is_immutable() {
    let (_server, client) = with_pod("Always").await;
    let (code, _) = patch_status(&client, json!({"qosClass": "BestEffort"})).await;
    assert_eq!(code, 200);
    let (code, answer) = patch_status(&client, json!({"qosClass": "Guaranteed"})).await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        message(&answer),
        "Pod \"p\" is invalid: status.qosClass: Invalid value: \"Guaranteed\": field is immutable"
    );
}

/// The kubelet's patch shape: conditions merged by type in `$setElementOrder` order, a
/// condition another writer set kept, `null` clearing a field, container statuses
/// (atomic in the API types) replaced whole.
#[tokio::test]
async fn issue_14_status_patches_merge_conditions_by_type() {
    let (_server, client) = with_pod("Always").await;
    let (code, _) = patch_status(
        &client,
        json!({"reason": "Evicted", "conditions": [
            {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [{"name": "main", "image": "a", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    )
    .await;
    assert_eq!(code, 200);
    let (code, answer) = patch_status(
        &client,
        json!({"reason": null,
            "$setElementOrder/conditions": [{"type": "DisruptionTarget"}, {"type": "Initialized"}, {"type": "Ready"}],
            "conditions": [{"type": "Initialized", "status": "True"},
                           {"type": "Ready", "status": "True", "reason": null}],
            "containerStatuses": [{"name": "main", "image": "a", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {}}}]}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    let status = &answer["status"];
    assert_eq!(status.get("reason"), None, "{status}");
    let conditions: Vec<(&str, &str)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("DisruptionTarget", "True"),
            ("Initialized", "True"),
            ("Ready", "True")
        ]
    );
    assert_eq!(status["conditions"][2].get("reason"), None);
    assert_eq!(
        status["containerStatuses"][0]["state"],
        json!({"running": {}})
    );
}

#[tokio::test]
async fn issue_14_node_quantities_and_addresses_are_validated() {
    let (_server, client) = server().await;
    let node = |capacity: Value, addresses: Value| {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
               "status": {"capacity": capacity, "addresses": addresses}})
    };
    let two_internal = json!([{"type": "InternalIP", "address": "10.0.0.5"},
                              {"type": "InternalIP", "address": "10.0.0.6"}]);
    let (code, answer) = client
        .post("/api/v1/nodes", &node(json!({"cpu": "-1"}), json!([])))
        .await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        message(&answer),
        "Node \"n1\" is invalid: status.capacity.cpu: Invalid value: \"-1\": must be greater than or equal to 0"
    );
    let (code, answer) = client
        .post("/api/v1/nodes", &node(json!({"memory": "lots"}), json!([])))
        .await;
    assert_eq!(
        (code, answer["reason"].as_str()),
        (400, Some("BadRequest")),
        "{answer}"
    );
    // A node may list several addresses of a family; only duplicates are refused.
    let (code, answer) = client
        .post(
            "/api/v1/nodes",
            &node(json!({"cpu": "2", "memory": "4Gi"}), two_internal),
        )
        .await;
    assert_eq!(code, 201, "{answer}");
    let duplicate = json!({"status": {"addresses": [
        {"type": "InternalIP", "address": "10.0.0.5"}, {"type": "InternalIP", "address": "10.0.0.5"}]}});
    let (code, answer) = client
        .patch("/api/v1/nodes/n1/status", MERGE, &duplicate)
        .await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        message(&answer),
        "Node \"n1\" is invalid: status.addresses[1]: Duplicate value: core.NodeAddress{Type:\"InternalIP\", Address:\"10.0.0.5\"}"
    );
}
