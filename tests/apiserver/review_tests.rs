//! The client PKI and SubjectAccessReview: the client CA published as kube-apiserver
//! publishes it, certificates issued for tests chaining to it, and reviews answered and
//! validated as the real authorizer chain and validation answer them.

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use serde_json::{Value, json};

use super::crud_tests::server;

const REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

fn review(spec: Value) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
}

fn pod_logs(user: &str, groups: &[&str]) -> Value {
    review(json!({
        "user": user, "groups": groups,
        "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": "proxy", "name": "n1"},
    }))
}

#[tokio::test]
async fn the_client_ca_is_published_and_issued_certificates_chain_to_it() {
    let (server, client) = server().await;
    let (code, config_map) = client
        .get("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication")
        .await;
    assert_eq!(code, 200);
    let published = config_map["data"]["client-ca-file"].as_str().unwrap();
    assert_eq!(published, server.client_ca_pem());
    assert!(published.starts_with("-----BEGIN CERTIFICATE-----"));

    let _ = rustls::crypto::ring::default_provider().install_default();
    let verifier = |ca_pem: &str| {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        WebPkiClientVerifier::builder(roots.into()).build().unwrap()
    };
    let (cert_pem, key_pem) = server.issue_client_cert("alice", &["dev", "ops"]);
    assert!(key_pem.contains("PRIVATE KEY"));
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    for text in ["alice", "dev", "ops"] {
        assert!(cert.windows(text.len()).any(|w| w == text.as_bytes()));
    }
    verifier(published)
        .verify_client_cert(&cert, &[], UnixTime::now())
        .expect("the certificate chains to the published client CA");
    let (other, _) = super::TestApiServer::start().await;
    assert!(
        verifier(&other.client_ca_pem())
            .verify_client_cert(&cert, &[], UnixTime::now())
            .is_err(),
        "another cluster's CA does not accept it"
    );
}

#[tokio::test]
async fn reviews_allow_masters_and_granted_users_and_deny_the_rest() {
    let (server, client) = server().await;
    let (code, answer) = client
        .post(
            REVIEWS,
            &pod_logs("kube-apiserver-kubelet-client", &["system:masters"]),
        )
        .await;
    assert_eq!(
        (code, answer["status"].clone()),
        (201, json!({"allowed": true}))
    );
    assert_eq!(answer["kind"], "SubjectAccessReview");

    let (code, answer) = client.post(REVIEWS, &pod_logs("alice", &["dev"])).await;
    assert_eq!(
        (code, answer["status"].clone()),
        (201, json!({"allowed": false}))
    );

    server.grant("alice", "get", "nodes", "proxy");
    let (_, answer) = client.post(REVIEWS, &pod_logs("alice", &["dev"])).await;
    assert_eq!(answer["status"]["allowed"], true);
    assert!(
        answer["status"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("RBAC: allowed by")
    );
    let (_, answer) = client.post(REVIEWS, &pod_logs("bob", &[])).await;
    assert_eq!(answer["status"]["allowed"], false, "grants are per user");
    let mut other_subresource = pod_logs("alice", &[]);
    other_subresource["spec"]["resourceAttributes"]["subresource"] = json!("log");
    let (_, answer) = client.post(REVIEWS, &other_subresource).await;
    assert_eq!(
        answer["status"]["allowed"], false,
        "grants are per subresource"
    );

    server.grant("carol", "*", "nodes", "proxy");
    let (_, answer) = client.post(REVIEWS, &pod_logs("carol", &[])).await;
    assert_eq!(answer["status"]["allowed"], true);
    let non_resource = review(
        json!({"user": "carol", "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}),
    );
    let (code, answer) = client.post(REVIEWS, &non_resource).await;
    assert_eq!(
        (code, answer["status"]["allowed"].clone()),
        (201, json!(false))
    );
}

#[tokio::test]
async fn a_typed_review_as_kube_rs_sends_it_is_answered_in_its_type() {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let (_server, client) = server().await;
    let request = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("kube-apiserver-kubelet-client".into()),
            groups: Some(vec!["system:masters".into(), "system:authenticated".into()]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some("get".into()),
                resource: Some("nodes".into()),
                subresource: Some("log".into()),
                name: Some("n1".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let (code, answer) = client
        .post(REVIEWS, &serde_json::to_value(&request).unwrap())
        .await;
    assert_eq!(code, 201, "{answer}");
    let answer: SubjectAccessReview = serde_json::from_value(answer).unwrap();
    assert!(answer.status.unwrap().allowed);
}

#[tokio::test]
async fn reviews_are_validated_like_the_real_ones() {
    let (_server, client) = server().await;
    let message = async |body: Value| {
        let (code, status) = client.post(REVIEWS, &body).await;
        (
            code,
            status["reason"].clone(),
            status["message"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        message(review(json!({"user": "alice"}))).await,
        (422, json!("Invalid"), "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".to_string())
    );
    assert_eq!(
        message(review(json!({"resourceAttributes": {"verb": "get", "resource": "nodes"}}))).await,
        (422, json!("Invalid"), "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified".to_string())
    );
    let both = review(
        json!({"user": "a", "resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/", "verb": "get"}}),
    );
    let (code, _, text) = message(both).await;
    assert_eq!(code, 422);
    assert!(
        text.contains("spec.nonResourceAttributes: Invalid value: "),
        "{text}"
    );
    let (code, status) = client
        .post(
            REVIEWS,
            &json!({"kind": "Pod", "apiVersion": "authorization.k8s.io/v1"}),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _) = client
        .send(reqwest::Method::POST, REVIEWS, "application/json", None)
        .await;
    assert_eq!(code, 400);
    assert_eq!(client.get(REVIEWS).await.0, 405);

    let (_, group) = client.get("/apis/authorization.k8s.io/v1").await;
    assert_eq!(
        group["resources"],
        json!([{"name": "subjectaccessreviews", "singularName": "subjectaccessreview", "namespaced": false, "kind": "SubjectAccessReview", "verbs": ["create"]}])
    );
    let (_, core) = client.get("/api/v1").await;
    let log = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/log")
        .unwrap();
    assert_eq!(
        (log["kind"].clone(), log["verbs"].clone()),
        (json!("Pod"), json!(["get"]))
    );
}
