//! TokenReview: the service account tokens the server issues are recognised with the real
//! response shape, and bad, expired, tampered, foreign-audience and orphaned tokens are
//! not.

use serde_json::{Value, json};

use super::crud_tests::server;
use super::token::ISSUER;

const REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

fn review(token: &str, audiences: &[&str]) -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences},
    })
}

#[tokio::test]
async fn issued_tokens_authenticate_their_service_account() {
    let (server, client) = server().await;
    let (code, account) = client
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            &json!({"metadata": {"name": "prometheus"}}),
        )
        .await;
    assert_eq!(code, 201);
    let uid = account["metadata"]["uid"].as_str().unwrap();
    let (code, issued) = client
        .post(
            "/api/v1/namespaces/default/serviceaccounts/prometheus/token",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
        )
        .await;
    assert_eq!(code, 201);
    let token = issued["status"]["token"].as_str().unwrap();

    let (code, answer) = client.post(REVIEWS, &review(token, &[])).await;
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["kind"], "TokenReview");
    let status = &answer["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["audiences"], json!([ISSUER]));
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:prometheus"
    );
    assert_eq!(status["user"]["uid"], uid);
    assert_eq!(
        status["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert!(
        status["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI=")
    );
    assert_eq!(server.token_reviews(), 1);

    // Not this server's token, or tampered with: no user, an error, no `authenticated`.
    for bad in ["garbage", "a.b.c", &format!("{token}x")] {
        let (code, answer) = client.post(REVIEWS, &review(bad, &[])).await;
        assert_eq!(code, 201);
        assert_eq!(answer["status"]["authenticated"], Value::Null, "{bad}");
        assert_eq!(answer["status"]["user"], json!({}));
        assert!(
            answer["status"]["error"]
                .as_str()
                .unwrap()
                .contains("invalid bearer token")
        );
    }

    let expired = server
        .issue_token("default", "prometheus", &[], -10)
        .unwrap();
    let (_, answer) = client.post(REVIEWS, &review(&expired, &[])).await;
    assert_eq!(
        answer["status"]["error"],
        "[invalid bearer token, service account token has expired]"
    );

    // A token for another audience is not the API server's, unless the review asks for it.
    let vault = server
        .issue_token("default", "prometheus", &["vault"], 600)
        .unwrap();
    let (_, answer) = client.post(REVIEWS, &review(&vault, &[])).await;
    assert_eq!(answer["status"]["authenticated"], Value::Null);
    assert!(
        answer["status"]["error"]
            .as_str()
            .unwrap()
            .contains("invalid for the target audiences")
    );
    let (_, answer) = client.post(REVIEWS, &review(&vault, &["vault"])).await;
    assert_eq!(answer["status"]["authenticated"], true);
    assert_eq!(answer["status"]["audiences"], json!(["vault"]));

    // A deleted service account's tokens stop working.
    let (code, _) = client
        .send(
            reqwest::Method::DELETE,
            "/api/v1/namespaces/default/serviceaccounts/prometheus",
            "application/json",
            None,
        )
        .await;
    assert_eq!(code, 200);
    let (_, answer) = client.post(REVIEWS, &review(token, &[])).await;
    assert_eq!(answer["status"]["authenticated"], Value::Null);

    let (code, answer) = client.post(REVIEWS, &review("", &[])).await;
    assert_eq!((code, answer["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(client.get(REVIEWS).await.0, 405);
}
