//! Raw-HTTP tests of deletion: graceful deletion of bound pods, preconditions, finalizers and
//! deletecollection, against kube-apiserver's registry rules.

use serde_json::json;

use super::crud_tests::{PODS, pod, server};

#[tokio::test]
async fn delete_is_graceful_for_bound_pods_and_waits_for_finalizers() {
    let (_server, client) = server().await;
    client
        .post(PODS, &pod("bound", Some("n1"), json!({})))
        .await;
    client.post(PODS, &pod("free", None, json!({}))).await;
    let (code, deleted) = client.delete(&format!("{PODS}/free"), None).await;
    assert_eq!(
        (code, deleted["metadata"]["name"].as_str()),
        (200, Some("free"))
    );
    assert_eq!(client.get(&format!("{PODS}/free")).await.0, 404);

    let (code, marked) = client
        .delete(
            &format!("{PODS}/bound"),
            Some(&json!({"gracePeriodSeconds": 20})),
        )
        .await;
    assert_eq!(
        (
            code,
            marked["metadata"]["deletionGracePeriodSeconds"].as_i64()
        ),
        (200, Some(20))
    );
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(client.get(&format!("{PODS}/bound")).await.0, 200);
    let (code, status) = client
        .delete(
            &format!("{PODS}/bound?gracePeriodSeconds=0"),
            Some(&json!({"preconditions": {"uid": "wrong"}})),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
    assert_eq!(
        client
            .delete(&format!("{PODS}/bound?gracePeriodSeconds=0"), None)
            .await
            .0,
        200
    );
    assert_eq!(client.get(&format!("{PODS}/bound")).await.0, 404);

    let cm = "/api/v1/namespaces/default/configmaps";
    client
        .post(
            cm,
            &json!({"metadata": {"name": "kept", "finalizers": ["example.com/hold"]}}),
        )
        .await;
    let (code, status) = client.delete(&format!("{cm}/kept"), None).await;
    assert_eq!((code, status["kind"].as_str()), (200, Some("Status")));
    let (_, held) = client.get(&format!("{cm}/kept")).await;
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let release = json!({"metadata": {"finalizers": null}});
    assert_eq!(
        client
            .patch(
                &format!("{cm}/kept"),
                "application/merge-patch+json",
                &release
            )
            .await
            .0,
        200
    );
    assert_eq!(client.get(&format!("{cm}/kept")).await.0, 404);
}

#[tokio::test]
async fn delete_collection_applies_the_delete_rules_to_every_selected_object() {
    let (_server, client) = server().await;
    client
        .post(PODS, &pod("bound", Some("n1"), json!({"app": "x"})))
        .await;
    client
        .post(PODS, &pod("free", None, json!({"app": "x"})))
        .await;
    client
        .post(PODS, &pod("other", None, json!({"app": "y"})))
        .await;
    let (code, list) = client
        .delete(&format!("{PODS}?labelSelector=app%3Dx"), None)
        .await;
    assert_eq!(
        (
            code,
            list["kind"].as_str(),
            list["items"].as_array().unwrap().len()
        ),
        (200, Some("PodList"), 2)
    );
    assert!(
        client.get(&format!("{PODS}/bound")).await.1["metadata"]["deletionTimestamp"].is_string()
    );
    assert_eq!(client.get(&format!("{PODS}/free")).await.0, 404);
    assert_eq!(client.get(&format!("{PODS}/other")).await.0, 200);
}
