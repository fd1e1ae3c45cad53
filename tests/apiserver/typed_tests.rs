//! The server's JSON read through k8s-openapi's typed structs, as kube-rs reads it: objects,
//! lists, watch events (incl. BOOKMARK and the 410 ERROR), Status errors, discovery, and the
//! kinds systemk writes (Node, Lease, events.k8s.io Event, TokenRequest). A shape mistake
//! here would break systemk against this server but not against a real one.

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroupList, APIResourceList, Status, WatchEvent,
};
use k8s_openapi::apimachinery::pkg::version::Info;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::crud_tests::{PODS, pod, rv};
use super::http_client::{Client, Watch};
use super::{Config, TestApiServer};

fn typed<T: DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|err| panic!("{err}: {value:#}"))
}

async fn next_typed(watch: &mut Watch) -> WatchEvent<Pod> {
    let (kind, object) = watch.next().await.expect("an event");
    typed(&json!({"type": kind, "object": object}))
}

#[tokio::test]
async fn objects_lists_and_errors_decode_as_k8s_openapi_types() {
    let (_server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let (_, created) = client
        .post(PODS, &pod("a", Some("n1"), json!({"app": "x"})))
        .await;
    let pod: Pod = typed(&created);
    assert_eq!(
        pod.metadata.uid.as_deref(),
        created["metadata"]["uid"].as_str()
    );
    assert!(pod.metadata.creation_timestamp.is_some());
    let list: k8s_openapi::List<Pod> = typed(&client.get(PODS).await.1);
    assert_eq!(list.items.len(), 1);
    let status: Status = typed(&client.get(&format!("{PODS}/missing")).await.1);
    assert_eq!(
        (status.code, status.reason.as_deref()),
        (Some(404), Some("NotFound"))
    );

    let _: Info = typed(&client.get("/version").await.1);
    let _: APIGroupList = typed(&client.get("/apis").await.1);
    let _: APIResourceList = typed(&client.get("/api/v1").await.1);
}

#[tokio::test]
async fn kinds_systemk_writes_round_trip_through_their_types() {
    let (_server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "status": {
        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
    let (code, created) = client.post("/api/v1/nodes", &node).await;
    let node: Node = typed(&created);
    assert_eq!(
        (
            code,
            node.status
                .unwrap()
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port
        ),
        (201, 10250)
    );

    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2026-01-01T00:00:00.123456Z"}});
    let (_, created) = client
        .post(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            &lease,
        )
        .await;
    let lease: Lease = typed(&created);
    assert_eq!(lease.spec.unwrap().lease_duration_seconds, Some(40));

    let (_, owner) = client.post(PODS, &pod("web", Some("n1"), json!({}))).await;
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"generateName": "web."},
        "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Start", "reason": "Started", "note": "started", "type": "Normal",
        "reportingController": "systemk", "reportingInstance": "n1",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default", "uid": owner["metadata"]["uid"]}});
    let (_, created) = client
        .post("/apis/events.k8s.io/v1/namespaces/default/events", &event)
        .await;
    let event: Event = typed(&created);
    assert_eq!(event.regarding.unwrap().name.as_deref(), Some("web"));

    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": ["x"], "expirationSeconds": 3600}});
    let (_, issued) = client
        .post(
            "/api/v1/namespaces/default/serviceaccounts/default/token",
            &request,
        )
        .await;
    let issued: TokenRequest = typed(&issued);
    assert!(issued.status.unwrap().token.split('.').count() == 3);
}

#[tokio::test]
async fn watch_events_decode_as_k8s_openapi_watch_events() {
    let config = Config {
        history_limit: 1,
        bookmark_interval: std::time::Duration::from_millis(50),
        ..Config::default()
    };
    let (_server, url) = TestApiServer::start_with(config).await;
    let client = Client::new(&url);
    let (_, created) = client.post(PODS, &pod("a", Some("n1"), json!({}))).await;
    let mut watch = client
        .watch(&format!(
            "{PODS}?watch=1&allowWatchBookmarks=true&resourceVersion={}",
            rv(&created)
        ))
        .await;
    client
        .patch(
            &format!("{PODS}/a"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"a": "1"}}}),
        )
        .await;
    let (mut modified, mut bookmarked) = (false, false);
    while !(modified && bookmarked) {
        match next_typed(&mut watch).await {
            WatchEvent::Modified(pod) => modified = pod.metadata.labels.is_some(),
            WatchEvent::Bookmark {
                resource_version, ..
            } => bookmarked = !resource_version.is_empty(),
            other => panic!("unexpected {other:?}"),
        }
    }

    client
        .patch(
            &format!("{PODS}/a"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"a": "2"}}}),
        )
        .await;
    let mut expired = client
        .watch(&format!("{PODS}?watch=1&resourceVersion={}", rv(&created)))
        .await;
    assert!(
        matches!(next_typed(&mut expired).await, WatchEvent::ErrorStatus(status) if status.code == Some(410))
    );
}
