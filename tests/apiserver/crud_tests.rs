//! Raw-HTTP tests of the test API server's object semantics: discovery, create, list with
//! selectors, update, patch, server-side apply, and the fixtures the other test files share.
//! Each test starts its own server and checks one behaviour against what kube-apiserver does.

use serde_json::{Value, json};

use super::TestApiServer;
use super::http_client::Client;

pub fn pod(name: &str, node: Option<&str>, labels: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "uptimed"}]},
    });
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    pod
}

pub fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub async fn server() -> (TestApiServer, Client) {
    let (server, url) = TestApiServer::start().await;
    (server, Client::new(&url))
}

pub const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn discovery_lists_groups_resources_and_subresources() {
    let (_server, client) = server().await;
    let (code, versions) = client.get("/api").await;
    assert_eq!((code, versions["versions"].clone()), (200, json!(["v1"])));
    let (_, groups) = client.get("/apis").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "coordination.k8s.io",
            "events.k8s.io",
            "apps",
            "rbac.authorization.k8s.io",
            "certificates.k8s.io",
            "authentication.k8s.io",
            "authorization.k8s.io"
        ]
    );
    let (_, core) = client.get("/api/v1").await;
    let token = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .unwrap();
    assert_eq!(
        (token["group"].as_str(), token["kind"].as_str()),
        (Some("authentication.k8s.io"), Some("TokenRequest"))
    );
    let (code, leases) = client.get("/apis/coordination.k8s.io/v1").await;
    assert_eq!(
        (code, leases["resources"][0]["kind"].as_str()),
        (200, Some("Lease"))
    );
    assert_eq!(client.get("/apis/batch/v1").await.0, 404);
    assert_eq!(client.get("/version").await.1["major"], "1");
}

#[tokio::test]
async fn create_sets_metadata_and_rejects_duplicates_bad_names_and_missing_namespaces() {
    let (_server, client) = server().await;
    let (code, created) = client.post(PODS, &pod("a", None, json!({}))).await;
    assert_eq!(code, 201);
    assert_eq!(created["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        created["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        (
            created["status"]["phase"].as_str(),
            created["metadata"]["generation"].as_i64()
        ),
        (Some("Pending"), Some(1))
    );
    assert_eq!(created["spec"]["serviceAccountName"], "default");

    let (code, status) = client
        .post(&format!("{PODS}?dryRun=All"), &pod("dry", None, json!({})))
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (400, Some("BadRequest")),
        "dryRun is refused, not performed"
    );
    let (code, status) = client.post(PODS, &pod("a", None, json!({}))).await;
    assert_eq!(
        (code, status["reason"].as_str(), status["message"].as_str()),
        (
            409,
            Some("AlreadyExists"),
            Some("pods \"a\" already exists")
        )
    );

    let (code, status) = client.post(PODS, &pod("Bad_Name", None, json!({}))).await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    let long_part = "a".repeat(100);
    let (code, _) = client.post(PODS, &pod(&long_part, None, json!({}))).await;
    assert_eq!(code, 201, "a subdomain's parts have no 63-character limit");
    let too_long = "a".repeat(254);
    let (code, _) = client.post(PODS, &pod(&too_long, None, json!({}))).await;
    assert_eq!(code, 422, "a subdomain is at most 253 characters");

    let mut unnamed = pod("", None, json!({}));
    unnamed["metadata"] = json!({"generateName": "web-"});
    let (code, generated) = client.post(PODS, &unnamed).await;
    assert_eq!(code, 201);
    assert!(
        generated["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-")
    );
    assert_eq!(generated["metadata"]["name"].as_str().unwrap().len(), 9);

    let (code, status) = client
        .post(
            "/api/v1/namespaces/nope/configmaps",
            &json!({"metadata": {"name": "c"}}),
        )
        .await;
    assert_eq!(
        (code, status["reason"].as_str(), status["message"].as_str()),
        (404, Some("NotFound"), Some("namespaces \"nope\" not found"))
    );
    let (code, status) = client.get(&format!("{PODS}/missing")).await;
    assert_eq!(
        (
            code,
            status["kind"].as_str(),
            status["details"]["kind"].as_str()
        ),
        (404, Some("Status"), Some("pods"))
    );
}

#[tokio::test]
async fn namespaces_get_a_default_service_account_and_take_their_objects_when_deleted() {
    let (_server, client) = server().await;
    assert_eq!(
        client
            .post("/api/v1/namespaces", &json!({"metadata": {"name": "team"}}))
            .await
            .0,
        201
    );
    assert_eq!(
        client
            .get("/api/v1/namespaces/team/serviceaccounts/default")
            .await
            .0,
        200
    );
    client
        .post(
            "/api/v1/namespaces/team/configmaps",
            &json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        )
        .await;
    let (code, terminating) = client.delete("/api/v1/namespaces/team", None).await;
    assert_eq!(
        (code, terminating["status"]["phase"].as_str()),
        (200, Some("Terminating"))
    );
    assert_eq!(
        client.get("/api/v1/namespaces/team/configmaps/c").await.0,
        404
    );
    assert_eq!(client.get("/api/v1/namespaces/team").await.0, 404);
}

#[tokio::test]
async fn list_filters_by_label_and_field_selectors() {
    let (_server, client) = server().await;
    client
        .post(
            PODS,
            &pod("a", Some("n1"), json!({"app": "x", "tier": "web"})),
        )
        .await;
    client
        .post(PODS, &pod("b", Some("n2"), json!({"app": "y"})))
        .await;
    client.post(PODS, &pod("c", None, json!({}))).await;
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let cases = [
        ("labelSelector=app%3Dx", vec!["a"]),
        ("labelSelector=app%3D%3Dy", vec!["b"]),
        ("labelSelector=app%21%3Dx", vec!["b", "c"]),
        ("labelSelector=app+in+%28x%2Cy%29", vec!["a", "b"]),
        ("labelSelector=app+notin+%28x%29", vec!["b", "c"]),
        ("labelSelector=tier", vec!["a"]),
        ("labelSelector=%21app", vec!["c"]),
        ("fieldSelector=spec.nodeName%3Dn1", vec!["a"]),
        ("fieldSelector=spec.nodeName%3D", vec!["c"]),
        (
            "fieldSelector=metadata.name%21%3Da,status.phase%3DPending",
            vec!["b", "c"],
        ),
    ];
    for (query, expected) in cases {
        let (code, list) = client.get(&format!("{PODS}?{query}")).await;
        assert_eq!(
            (code, names(&list)),
            (
                200,
                expected.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            ),
            "{query}"
        );
    }
    let (code, status) = client
        .get(&format!("{PODS}?fieldSelector=spec.image%3Dx"))
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .ends_with("field label not supported: spec.image")
    );

    let (_, list) = client.get("/api/v1/pods").await;
    assert_eq!(
        (
            list["kind"].as_str(),
            list["items"].as_array().unwrap().len()
        ),
        (Some("PodList"), 3)
    );
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind, as from kube-apiserver"
    );
    let (_, page) = client.get(&format!("{PODS}?limit=2")).await;
    assert_eq!(
        (
            names(&page),
            page["metadata"]["remainingItemCount"].as_i64()
        ),
        (vec!["a".to_string(), "b".to_string()], Some(1))
    );
    let token = page["metadata"]["continue"].as_str().unwrap();
    let (_, rest) = client
        .get(&format!("{PODS}?limit=2&continue={token}"))
        .await;
    assert_eq!(names(&rest), vec!["c".to_string()]);
}

#[tokio::test]
async fn update_checks_resource_version_bumps_generation_and_keeps_status() {
    let (_server, client) = server().await;
    let path = "/apis/apps/v1/namespaces/default/deployments/d";
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
    let (_, created) = client
        .post("/apis/apps/v1/namespaces/default/deployments", &deployment)
        .await;
    let mut changed = created.clone();
    changed["spec"]["replicas"] = json!(2);
    changed["status"] = json!({"replicas": 5});
    let (code, updated) = client.put(path, &changed).await;
    assert_eq!(
        (
            code,
            updated["metadata"]["generation"].as_i64(),
            updated["status"].clone()
        ),
        (200, Some(2), json!({}))
    );
    assert!(rv(&updated) > rv(&created));

    let (code, status) = client.put(path, &changed).await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
    assert_eq!(
        status["message"],
        "Operation cannot be fulfilled on deployments.apps \"d\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let (code, unchanged) = client.put(path, &updated).await;
    assert_eq!(
        (code, rv(&unchanged)),
        (200, rv(&updated)),
        "a no-op update writes nothing"
    );

    let mut status_write = updated.clone();
    status_write["status"] = json!({"replicas": 2});
    status_write["spec"]["replicas"] = json!(9);
    let (_, after) = client.put(&format!("{path}/status"), &status_write).await;
    assert_eq!(
        (
            after["status"]["replicas"].as_i64(),
            after["spec"]["replicas"].as_i64()
        ),
        (Some(2), Some(2))
    );
}

#[tokio::test]
async fn pod_spec_is_immutable_except_images() {
    let (_server, client) = server().await;
    let (_, created) = client.post(PODS, &pod("a", None, json!({}))).await;
    let (code, _) = client
        .patch(
            &format!("{PODS}/a"),
            "application/strategic-merge-patch+json",
            &json!({"spec": {"containers": [{"name": "main", "image": "other"}]}}),
        )
        .await;
    assert_eq!(code, 200);
    let mut changed = created.clone();
    changed["spec"]["restartPolicy"] = json!("Never");
    changed["metadata"]["resourceVersion"] = json!(null);
    let (code, status) = client.put(&format!("{PODS}/a"), &changed).await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
}

#[tokio::test]
async fn patches_merge_strategically_and_honour_uid_preconditions() {
    let (_server, client) = server().await;
    let (_, created) = client
        .post(PODS, &pod("a", Some("n1"), json!({"app": "x"})))
        .await;
    let status_path = format!("{PODS}/a/status");
    let smp = "application/strategic-merge-patch+json";
    let ready = json!({"metadata": {"uid": created["metadata"]["uid"]}, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}});
    let (code, patched) = client.patch(&status_path, smp, &ready).await;
    assert_eq!(
        (code, patched["status"]["phase"].as_str()),
        (200, Some("Running"))
    );
    let (_, patched) = client
        .patch(
            &status_path,
            smp,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )
        .await;
    assert_eq!(
        patched["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
    );

    let (code, status) = client
        .patch(
            &status_path,
            smp,
            &json!({"metadata": {"uid": "other"}, "status": {"phase": "Failed"}}),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("Precondition failed: UID in precondition: other")
    );

    let (_, merged) = client.patch(&format!("{PODS}/a"), "application/merge-patch+json", &json!({"metadata": {"labels": {"app": null, "b": "1"}}, "status": {"phase": "Failed"}})).await;
    assert_eq!(
        (
            merged["metadata"]["labels"].clone(),
            merged["status"]["phase"].as_str()
        ),
        (json!({"b": "1"}), Some("Running"))
    );

    let ops = json!([{"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}}]);
    let (code, patched) = client
        .patch(&format!("{PODS}/a"), "application/json-patch+json", &ops)
        .await;
    assert_eq!(
        (code, patched["metadata"]["annotations"]["a"].as_str()),
        (200, Some("1"))
    );
    let (code, status) = client
        .patch(&format!("{PODS}/a"), "text/plain", &json!({}))
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    assert_eq!(
        client.patch(&format!("{PODS}/zz"), smp, &json!({})).await.0,
        404
    );
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let (_server, client) = server().await;
    let path = "/api/v1/namespaces/default/configmaps/c?fieldManager=test";
    let apply = "application/apply-patch+yaml";
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let (code, created) = client.patch(path, apply, &config).await;
    assert_eq!((code, created["data"].clone()), (201, json!({"a": "1"})));
    let (code, updated) = client.patch(path, apply, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "2"}})).await;
    assert_eq!(
        (code, updated["data"].clone()),
        (200, json!({"a": "1", "b": "2"}))
    );
    let (code, _) = client
        .patch("/api/v1/namespaces/default/configmaps/c", apply, &config)
        .await;
    assert_eq!(code, 422, "apply needs a fieldManager");
}
