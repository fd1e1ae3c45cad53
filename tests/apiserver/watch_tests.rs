//! Raw-HTTP tests of watches (resume, selectors, bookmarks, 410), TokenRequest, binding,
//! ServiceAccount admission and outages (stop/resume). No sleeps: watch events are read with
//! deadlines.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::crud_tests::{PODS, pod, rv, server};
use super::http_client::Client;
use super::{Config, TestApiServer, token};

#[tokio::test]
async fn watch_streams_changes_with_selector_transitions_and_resumes() {
    let (_server, client) = server().await;
    let (_, created) = client.post(PODS, &pod("a", Some("n1"), json!({}))).await;
    let mut watch = client
        .watch(&format!("{PODS}?watch=1&fieldSelector=spec.nodeName%3Dn1"))
        .await;
    assert_eq!(watch.next_change().await.0, "ADDED", "initial state first");
    let mut single = client.watch(&format!("{PODS}/a?watch=1")).await;
    assert_eq!(
        single.next_change().await.1["metadata"]["name"],
        "a",
        "deprecated single-object form"
    );
    let label = |value: &str| json!({"metadata": {"labels": {"v": value}}});
    client
        .patch(
            &format!("{PODS}/a"),
            "application/merge-patch+json",
            &label("1"),
        )
        .await;
    let (kind, object) = watch.next_change().await;
    assert_eq!(
        (kind.as_str(), object["metadata"]["labels"]["v"].as_str()),
        ("MODIFIED", Some("1"))
    );

    let mut labelled = client
        .watch(&format!(
            "{PODS}?watch=1&labelSelector=v%3D1&resourceVersion={}",
            rv(&object)
        ))
        .await;
    client
        .patch(
            &format!("{PODS}/a"),
            "application/merge-patch+json",
            &label("2"),
        )
        .await;
    assert_eq!(
        labelled.next_change().await.0,
        "DELETED",
        "stopped matching"
    );
    client
        .patch(
            &format!("{PODS}/a"),
            "application/merge-patch+json",
            &label("1"),
        )
        .await;
    assert_eq!(labelled.next_change().await.0, "ADDED", "matches again");

    let mut resumed = client
        .watch(&format!("{PODS}?watch=1&resourceVersion={}", rv(&created)))
        .await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(resumed.next_change().await.0);
    }
    assert_eq!(
        kinds,
        ["MODIFIED", "MODIFIED", "MODIFIED"],
        "history replayed from the given version"
    );
    client
        .delete(
            &format!("{PODS}/a"),
            Some(&json!({"gracePeriodSeconds": 0})),
        )
        .await;
    let (kind, deleted) = resumed.next_change().await;
    assert_eq!(kind, "DELETED");
    assert!(rv(&deleted) > rv(&object));
}

#[tokio::test]
async fn a_server_may_ignore_field_selectors_of_lists_and_watches() {
    let config = Config {
        ignore_field_selectors: true,
        ..Config::default()
    };
    let (_server, url) = TestApiServer::start_with(config).await;
    let client = Client::new(&url);
    client.post(PODS, &pod("mine", Some("n1"), json!({}))).await;
    client
        .post(PODS, &pod("theirs", Some("n2"), json!({})))
        .await;
    let selected = format!("{PODS}?fieldSelector=spec.nodeName%3Dn1");
    let (code, list) = client.get(&selected).await;
    assert_eq!(code, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let mut watch = client.watch(&format!("{selected}&watch=1")).await;
    let mut names = vec![
        watch.next_change().await.1["metadata"]["name"].clone(),
        watch.next_change().await.1["metadata"]["name"].clone(),
    ];
    names.sort_by_key(ToString::to_string);
    assert_eq!(names, [json!("mine"), json!("theirs")]);
    let (code, _) = client
        .get(&format!("{PODS}?fieldSelector=spec.bogus%3D1"))
        .await;
    assert_eq!(code, 400, "unknown field labels are still refused");
}

#[tokio::test]
async fn watch_sends_bookmarks_times_out_and_expires_old_versions() {
    let config = Config {
        history_limit: 2,
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let (_server, url) = TestApiServer::start_with(config).await;
    let client = Client::new(&url);
    let cm = "/api/v1/namespaces/default/configmaps";
    let (_, first) = client.post(cm, &json!({"metadata": {"name": "a"}})).await;
    for name in ["b", "c", "d"] {
        client.post(cm, &json!({"metadata": {"name": name}})).await;
    }
    let mut expired = client
        .watch(&format!("{cm}?watch=1&resourceVersion={}", rv(&first)))
        .await;
    let (kind, status) = expired.next().await.unwrap();
    assert_eq!(
        (
            kind.as_str(),
            status["code"].as_i64(),
            status["reason"].as_str()
        ),
        ("ERROR", Some(410), Some("Expired"))
    );
    assert!(expired.next().await.is_none());

    let (_, list) = client.get(cm).await;
    let mut bookmarked = client
        .watch(&format!(
            "{cm}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={}",
            list["metadata"]["resourceVersion"].as_str().unwrap()
        ))
        .await;
    let (kind, bookmark) = bookmarked.next().await.unwrap();
    assert_eq!(
        (kind.as_str(), bookmark["kind"].as_str()),
        ("BOOKMARK", Some("ConfigMap"))
    );
    assert_eq!(
        bookmark["metadata"]["resourceVersion"],
        list["metadata"]["resourceVersion"]
    );
    while bookmarked.next().await.is_some() {}

    let mut streaming = client.watch(&format!("{cm}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")).await;
    let existing = list["items"].as_array().unwrap().len();
    for _ in 0..existing {
        assert_eq!(streaming.next().await.unwrap().0, "ADDED");
    }
    let (kind, end) = streaming.next().await.unwrap();
    assert_eq!(
        (
            kind.as_str(),
            end["metadata"]["annotations"]["k8s.io/initial-events-end"].as_str()
        ),
        ("BOOKMARK", Some("true"))
    );
}

#[tokio::test]
async fn token_request_issues_bound_tokens_with_audience_and_expiry() {
    let (_server, client) = server().await;
    let (_, created) = client.post(PODS, &pod("a", Some("n1"), json!({}))).await;
    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
        "audiences": ["api"], "expirationSeconds": 1200,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "a", "uid": created["metadata"]["uid"]}}});
    let path = "/api/v1/namespaces/default/serviceaccounts/default/token";
    let (code, issued) = client.post(path, &request).await;
    assert_eq!(code, 201);
    let claims = token::claims(issued["status"]["token"].as_str().unwrap()).unwrap();
    assert_eq!(
        (claims["aud"].clone(), claims["sub"].as_str()),
        (
            json!(["api"]),
            Some("system:serviceaccount:default:default")
        )
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1200
    );
    assert_eq!(
        claims["kubernetes.io"]["pod"]["uid"],
        created["metadata"]["uid"]
    );

    let mut short = request.clone();
    short["spec"]["expirationSeconds"] = json!(60);
    assert_eq!(client.post(path, &short).await.0, 422);
    let missing = "/api/v1/namespaces/default/serviceaccounts/nobody/token";
    assert_eq!(client.post(missing, &request).await.1["reason"], "NotFound");
}

#[tokio::test]
async fn binding_assigns_a_node_once_and_leases_and_events_are_stored() {
    let (_server, client) = server().await;
    client.post(PODS, &pod("a", None, json!({}))).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a"}, "target": {"kind": "Node", "name": "n1"}});
    assert_eq!(
        client.post(&format!("{PODS}/a/binding"), &binding).await.0,
        201
    );
    assert_eq!(
        client.get(&format!("{PODS}/a")).await.1["spec"]["nodeName"],
        "n1"
    );
    assert_eq!(
        client.post(&format!("{PODS}/a/binding"), &binding).await.0,
        409
    );

    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}});
    assert_eq!(
        client
            .post(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                &lease
            )
            .await
            .0,
        201
    );
    let event = json!({"metadata": {"name": "a.1"}, "involvedObject": {"kind": "Pod", "name": "a", "namespace": "default"}, "reason": "Started", "type": "Normal"});
    client
        .post("/api/v1/namespaces/default/events", &event)
        .await;
    let (_, events) = client.get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Da,involvedObject.kind%3DPod").await;
    assert_eq!(events["items"][0]["reason"], "Started");
    assert_eq!(
        client
            .send(Method::PUT, PODS, "application/json", Some(&json!({})))
            .await
            .0,
        405
    );
}

#[tokio::test]
async fn pods_get_the_service_account_token_volume_unless_mirror_or_opted_out() {
    let (_server, client) = server().await;
    let (code, created) = client.post(PODS, &pod("a", None, json!({}))).await;
    assert_eq!(code, 201);
    let volume = &created["spec"]["volumes"][0];
    let volume_name = volume["name"].as_str().unwrap();
    assert!(volume_name.starts_with("kube-api-access-"));
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["path"],
        "token"
    );
    assert_eq!(
        created["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": volume_name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );
    let (_, root_ca) = client
        .get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
        .await;
    assert!(
        root_ca["data"]["ca.crt"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    let mut opted_out = pod("b", None, json!({}));
    opted_out["spec"]["automountServiceAccountToken"] = json!(false);
    let (_, created) = client.post(PODS, &opted_out).await;
    assert!(created["spec"].get("volumes").is_none());

    let mut mirror = pod("c", None, json!({}));
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
    let (code, created) = client.post(PODS, &mirror).await;
    assert_eq!(
        (code, created["spec"].get("serviceAccountName")),
        (201, None)
    );

    let mut unknown_account = pod("d", None, json!({}));
    unknown_account["spec"]["serviceAccountName"] = json!("builder");
    let (code, status) = client.post(PODS, &unknown_account).await;
    assert_eq!((code, status["reason"].as_str()), (403, Some("Forbidden")));
    assert_eq!(
        status["message"],
        "pods \"d\" is forbidden: error looking up service account default/builder: serviceaccount \"builder\" not found"
    );
}

#[tokio::test]
async fn stopped_server_refuses_connections_and_resumes_with_its_objects() {
    let (mut server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let (_, created) = client.post(PODS, &pod("a", Some("n1"), json!({}))).await;
    let mut watch = client
        .watch(&format!("{PODS}?watch=1&resourceVersion={}", rv(&created)))
        .await;
    server.stop().await;
    assert!(
        watch.next().await.is_none(),
        "watches end when the server stops"
    );
    let refused = reqwest::Client::new()
        .get(format!("{url}{PODS}"))
        .send()
        .await;
    assert!(refused.is_err(), "connections are refused while stopped");

    server.resume().await;
    let (code, pod) = client.get(&format!("{PODS}/a")).await;
    assert_eq!(
        (code, pod["metadata"]["uid"].clone()),
        (200, created["metadata"]["uid"].clone())
    );
    let mut resumed = client
        .watch(&format!("{PODS}?watch=1&resourceVersion={}", rv(&created)))
        .await;
    client
        .patch(
            &format!("{PODS}/a"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"x": "1"}}}),
        )
        .await;
    assert_eq!(resumed.next_change().await.0, "MODIFIED");
}
