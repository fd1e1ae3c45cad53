//! `pods/exec` and `pods/attach` through the test API server to a fake kubelet (`fake_kubelet.rs`) that
//! answers an upgrade with 101 and then echoes: the URL the API server built for the
//! kubelet, the upgrade passed through both ways, the kubelet's refusals passed back as
//! they are, and the API server's own refusals before any upgrade.

use super::TestApiServer;
use super::fake_kubelet::{FakeKubelet, expect_passed_through};
use super::http_client::Client;
use super::logs_tests::{node, pod};

const PODS: &str = "/api/v1/namespaces/default/pods";

/// A SPDY upgrade request for `path` with the protocols kubectl offers.
fn upgrade_request(url: &str, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v5.channel.k8s.io")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
}

#[tokio::test]
async fn exec_passes_the_upgrade_through_to_the_kubelet() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main"]).await;

    let query =
        "command=sh&command=-c&command=echo+hi&stdin=true&stdout=true&stderr=true&tty=false";
    let response = upgrade_request(&url, &format!("{PODS}/web/exec?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["x-stream-protocol-version"],
        "v5.channel.k8s.io"
    );
    expect_passed_through(response, "POST /exec/default/web/main?input=1&output=1&error=1&command=sh&command=-c&command=echo+hi\n").await;
    assert!(kubelet.saw_client("kube-apiserver-kubelet-client"));
}

#[tokio::test]
async fn exec_refusals_come_before_any_upgrade() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main", "gone"]).await;
    pod(&client, "pending", None, &["main"]).await;

    let status = |path: String| {
        let url = url.clone();
        async move {
            let response = upgrade_request(&url, &path).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (code, body) = status(format!("{PODS}/pending/exec?command=ls&stdout=1")).await;
    assert_eq!(code, 400);
    assert!(
        body.contains("pod pending does not have a host assigned"),
        "{body}"
    );
    let (code, body) = status(format!("{PODS}/web/exec?command=ls&stdout=1&container=x")).await;
    assert_eq!(code, 400);
    assert!(
        body.contains("container x is not valid for pod web"),
        "{body}"
    );
    let (code, _) = status(format!("{PODS}/absent/exec?command=ls&stdout=1")).await;
    assert_eq!(code, 404);
    let (code, body) = status(format!(
        "{PODS}/web/exec?command=ls&stdout=1&container=gone"
    ))
    .await;
    assert_eq!(
        (code, body.as_str()),
        (500, "container not found (\"gone\")"),
        "the kubelet's refusal as it is"
    );

    let plain = reqwest::Client::new()
        .post(format!(
            "{url}{PODS}/web/exec?command=ls&stdout=1&container=main"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert!(
        plain
            .text()
            .await
            .unwrap()
            .contains("Upgrade request required")
    );
}

#[tokio::test]
async fn attach_passes_the_upgrade_through_without_a_command() {
    let (server, url) = TestApiServer::start().await;
    let client = Client::new(&url);
    let kubelet = FakeKubelet::start(&server.client_ca_pem());
    node(&client, kubelet.port).await;
    pod(&client, "web", Some("n1"), &["main", "side", "gone"]).await;

    let query = "container=side&stdin=true&stdout=true&stderr=false&tty=true&command=ignored";
    let response = upgrade_request(&url, &format!("{PODS}/web/attach?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    expect_passed_through(
        response,
        "POST /attach/default/web/side?input=1&output=1&tty=1\n",
    )
    .await;

    let refused = upgrade_request(&url, &format!("{PODS}/web/attach?stdout=1&container=gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 500, "the kubelet's refusal as it is");
    let plain = reqwest::Client::new()
        .post(format!("{url}{PODS}/web/attach?stdout=1&container=main"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    let body = plain.text().await.unwrap();
    assert!(body.contains("Upgrade request required"), "{body}");
    let bad = upgrade_request(
        &url,
        &format!("{PODS}/web/attach?stdin=maybe&container=main"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
}
