//! Bearer tokens on the kubelet API end to end: systemk with `--authentication-token-webhook`
//! as a node of the test API server; a service account token made by the real
//! `kubectl create token` reads `/pods` when the SubjectAccessReview allows its user and is
//! refused (403) when it does not; invalid, expired, foreign-audience, oversized and
//! query-string tokens and no credentials at all get 401. A client certificate wins over a
//! token (x509 first, as the kubelet's union authenticator), answers are cached, and no
//! token reaches the agent's log.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;

use crate::cluster::harness::Cluster;
use crate::support::wait_for;

/// How soon the agent's kubelet API answers.
const START: Duration = Duration::from_secs(20);

/// A client of the agent's kubelet API (trusting its self-signed certificate), with a
/// client certificate when given.
fn client(cluster: &Cluster, pem: &[u8], identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem).unwrap()])
        .resolve(
            cluster.node(),
            SocketAddr::from(([127, 0, 0, 1], cluster.kubelet_port())),
        )
        .timeout(Duration::from_secs(20));
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build().unwrap()
}

/// GET `path` with the `Authorization` header `authorization` (none when `None`).
async fn get(
    cluster: &Cluster,
    client: &reqwest::Client,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, String) {
    let url = format!(
        "https://{}:{}{path}",
        cluster.node(),
        cluster.kubelet_port()
    );
    let mut request = client.get(url);
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn service_account_tokens_read_the_kubelet_api_when_reviews_allow() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(mut cluster) = Cluster::new("kubelet_api_tokens").await else {
        return;
    };
    cluster.add_agent_args(&["--authentication-token-webhook"]);
    cluster.start_agent().await;
    let namespace = cluster.namespace().to_owned();
    for account in ["prometheus", "intruder"] {
        cluster
            .kubectl(&["create", "serviceaccount", account, "-n", &namespace])
            .await;
    }
    let token = |account: &'static str| {
        let namespace = namespace.clone();
        let cluster = &cluster;
        async move {
            cluster
                .kubectl(&["create", "token", account, "-n", &namespace])
                .await
                .trim()
                .to_owned()
        }
    };
    let prometheus = token("prometheus").await;
    let intruder = token("intruder").await;
    let prometheus_user = format!("system:serviceaccount:{namespace}:prometheus");
    cluster
        .server
        .grant(&prometheus_user, "get", "nodes", "proxy");

    let cert_path = cluster.state_dir().join("pki/kubelet.crt");
    let pem = wait_for(START, "the serving certificate", || async {
        std::fs::read(&cert_path).ok()
    })
    .await;
    let anonymous = client(&cluster, &pem, None);
    let bearer = format!("Bearer {prometheus}");
    let body = wait_for(START, "the pods with the token", || async {
        let url = format!("https://{}:{}/pods", cluster.node(), cluster.kubelet_port());
        let response = anonymous
            .get(url)
            .header(reqwest::header::AUTHORIZATION, &bearer)
            .send()
            .await
            .ok()?;
        (response.status() == StatusCode::OK).then_some(response.text().await.ok()?)
    })
    .await;
    assert!(body.contains("\"PodList\""), "{body}");

    // Cached: the same token again is not reviewed again; the scheme is case-insensitive.
    let reviews = cluster.server.token_reviews();
    let lower = format!("bearer {prometheus}");
    assert_eq!(
        get(&cluster, &anonymous, "/healthz", Some(&lower)).await,
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(cluster.server.token_reviews(), reviews);

    // Authenticated, not authorized: 403 naming the service account.
    let (status, body) = get(
        &cluster,
        &anonymous,
        "/pods",
        Some(&format!("Bearer {intruder}")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains(&format!(
            "user=system:serviceaccount:{namespace}:intruder, verb=get, resource=nodes, subresource=proxy"
        )),
        "{body}"
    );

    // Not authenticated: 401.
    let expired = cluster
        .server
        .issue_token(&namespace, "prometheus", &[], -60)
        .unwrap();
    let vault = cluster
        .server
        .issue_token(&namespace, "prometheus", &["vault"], 600)
        .unwrap();
    for (what, authorization) in [
        ("no credentials", None),
        ("an invalid token", Some("Bearer not-a-token".to_owned())),
        ("an expired token", Some(format!("Bearer {expired}"))),
        (
            "a token for another audience",
            Some(format!("Bearer {vault}")),
        ),
        ("another scheme", Some(format!("Basic {prometheus}"))),
        ("an empty token", Some("Bearer ".to_owned())),
    ] {
        let (status, body) = get(&cluster, &anonymous, "/pods", authorization.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    }

    // Attacks: a token in the query string is not read; an oversized one is refused before
    // any review.
    for query in ["access_token", "token", "bearer"] {
        let path = format!("/pods?{query}={prometheus}");
        let (status, body) = get(&cluster, &anonymous, &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "?{query}=: {body}");
    }
    let reviews = cluster.server.token_reviews();
    let huge = format!(
        "Bearer {}",
        "a".repeat(systemk::server::token::MAX_TOKEN_BYTES + 1)
    );
    let (status, _) = get(&cluster, &anonymous, "/pods", Some(&huge)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        cluster.server.token_reviews(),
        reviews,
        "the oversized token was reviewed"
    );

    // A client certificate is looked at first: its user is the caller, not the token's.
    let (cert, key) = cluster.server.issue_client_cert("alice", &["dev"]);
    let alice = client(
        &cluster,
        &pem,
        Some(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap()),
    );
    let (status, body) = get(&cluster, &alice, "/pods", Some(&bearer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("user=alice,"), "{body}");

    let log = cluster.log();
    for secret in [&prometheus, &intruder, &expired, &vault] {
        assert!(
            !log.contains(secret.as_str()),
            "a token is in the agent's log"
        );
    }
    // The log line of each request names how its caller authenticated (colours stripped).
    let mut parts = log.split('\x1b');
    let mut plain = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        plain.push_str(part.split_once('m').map_or(part, |(_, rest)| rest));
    }
    assert!(
        plain.contains(&format!(
            "user=\"{prometheus_user}\" authn=\"token\" status=200"
        )),
        "{plain}"
    );
    assert!(
        plain.contains("user=\"alice\" authn=\"x509\" status=403"),
        "{plain}"
    );
    cluster.teardown().await;
}

#[tokio::test]
async fn without_the_flag_tokens_are_not_read() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(mut cluster) = Cluster::new("kubelet_api_tokens_off").await else {
        return;
    };
    cluster.start_agent().await;
    let namespace = cluster.namespace().to_owned();
    cluster
        .kubectl(&["create", "serviceaccount", "prometheus", "-n", &namespace])
        .await;
    let token = cluster
        .kubectl(&["create", "token", "prometheus", "-n", &namespace])
        .await
        .trim()
        .to_owned();
    cluster.server.grant(
        &format!("system:serviceaccount:{namespace}:prometheus"),
        "get",
        "nodes",
        "proxy",
    );
    let cert_path = cluster.state_dir().join("pki/kubelet.crt");
    let pem = wait_for(START, "the serving certificate", || async {
        std::fs::read(&cert_path).ok()
    })
    .await;
    let anonymous = client(&cluster, &pem, None);
    let url = format!("https://{}:{}/pods", cluster.node(), cluster.kubelet_port());
    let status = wait_for(START, "the kubelet API to answer", || async {
        let response = anonymous
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .ok()?;
        Some(response.status())
    })
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(cluster.server.token_reviews(), 0);
    cluster.teardown().await;
}
