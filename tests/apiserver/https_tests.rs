//! HTTPS mode end to end: a bootstrap token user creates a kubelet client CSR, the
//! auto-approver approves it and the signer signs it with the cluster CA; the certificate
//! then authenticates as the node. Plus the authentication rules: no credentials, an
//! expired or foreign certificate → 401; a bootstrap user only reaches CSRs and discovery.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::http_client::Client;
use super::{Config, TestApiServer};

pub const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
pub const NODE_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBEADM_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// A server in HTTPS mode with the kubelet client CSR approver on.
pub async fn https_server() -> (TestApiServer, String) {
    TestApiServer::start_with(Config {
        https: true,
        cluster_signing_duration: Duration::from_secs(3600),
        auto_approve_node_client_csrs: true,
        verify_kubelet_serving_certs: true,
        ..Config::default()
    })
    .await
}

fn builder(server: &TestApiServer) -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(server.cluster_ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder().tls_certs_only([ca]).no_proxy()
}

/// A client presenting `token` as its bearer token.
pub fn token_client(server: &TestApiServer, token: &str) -> Client {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    headers.insert(AUTHORIZATION, value);
    let http = builder(server).default_headers(headers).build().unwrap();
    Client::with(http, &server.url())
}

/// A client presenting the certificate and key (PEM).
pub fn cert_client(server: &TestApiServer, cert: &str, key: &str) -> Client {
    let identity = reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
    let http = builder(server).identity(identity).build().unwrap();
    Client::with(http, &server.url())
}

/// A client without credentials.
fn anonymous_client(server: &TestApiServer) -> Client {
    Client::with(builder(server).build().unwrap(), &server.url())
}

/// A PEM CSR for `cn` in `organizations` with DNS `sans`, and the key (PEM).
pub fn make_csr(cn: &str, organizations: &[&str], sans: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if let Some(o) = organizations.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *o);
    }
    let csr = params.serialize_request(&key).unwrap();
    (csr.pem().unwrap(), key.serialize_pem())
}

/// The CSR object for `request_pem` with `signer` and `usages`.
pub fn csr_object(name: &str, request_pem: &str, signer: &str, usages: &[&str]) -> Value {
    json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": super::base64::standard(request_pem.as_bytes()),
            "signerName": signer,
            "usages": usages,
            "expirationSeconds": 3600,
        },
    })
}

/// The decoded `status.certificate` PEM of `csr`.
pub fn certificate_of(csr: &Value) -> Option<String> {
    let encoded = csr["status"]["certificate"].as_str()?;
    String::from_utf8(super::base64::decode_standard(encoded)?).ok()
}

#[tokio::test]
async fn bootstrap_token_csr_is_auto_approved_signed_and_authenticates_the_node() {
    let (server, url) = https_server().await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let token = server.create_bootstrap_token(&[KUBEADM_GROUP]);
    let bootstrap = token_client(&server, &token);
    let mut watch = bootstrap.watch(&format!("{CSRS}?watch=1")).await;

    let (request, key) = make_csr("system:node:n1", &["system:nodes"], &[]);
    let mut body = csr_object(
        "node-csr-n1",
        &request,
        NODE_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    // A forged identity in the spec is replaced by the caller's.
    body["spec"]["username"] = json!("system:node:n1");
    body["spec"]["groups"] = json!(["system:masters"]);
    let (code, created) = bootstrap.post(CSRS, &body).await;
    assert_eq!(code, 201, "{created}");
    let id = token.split('.').next().unwrap();
    assert_eq!(
        created["spec"]["username"],
        format!("system:bootstrap:{id}")
    );
    assert_eq!(
        created["spec"]["groups"],
        json!([
            "system:bootstrappers",
            KUBEADM_GROUP,
            "system:authenticated"
        ])
    );
    let approved = &created["status"]["conditions"][0];
    assert_eq!(approved["type"], "Approved");
    assert_eq!(approved["reason"], "AutoApproved");
    assert_eq!(
        approved["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );

    // The watch sees the CSR added, approved, then signed.
    let (kind, _) = watch.next_change().await;
    assert_eq!(kind, "ADDED");
    let (_, event) = watch.next_change().await;
    assert_eq!(event["status"]["conditions"][0]["type"], "Approved");
    let (_, event) = watch.next_change().await;
    let cert = certificate_of(&event).expect("signed certificate");
    assert_eq!(server.csr_names(), ["node-csr-n1"]);

    // The certificate chains to the cluster CA and names the node.
    let node = cert_client(&server, &cert, &key);
    let (code, pods) = node.get("/api/v1/pods").await;
    assert_eq!(code, 200, "{pods}");
    let (code, csr) = node.get(&format!("{CSRS}/node-csr-n1")).await;
    assert_eq!(code, 200);
    assert_eq!(certificate_of(&csr).as_deref(), Some(cert.as_str()));

    // Renewal by the node itself: selfnodeclient.
    let (request, _) = make_csr("system:node:n1", &["system:nodes"], &[]);
    let body = csr_object(
        "renew-n1",
        &request,
        NODE_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    let (code, renewed) = node.post(CSRS, &body).await;
    assert_eq!(code, 201, "{renewed}");
    assert_eq!(renewed["spec"]["username"], "system:node:n1");
    assert_eq!(
        renewed["status"]["conditions"][0]["message"],
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    );
    assert!(certificate_of(&renewed).is_some());
}

#[tokio::test]
async fn requests_without_valid_credentials_are_unauthorized() {
    let (server, _url) = https_server().await;
    let anonymous = anonymous_client(&server);
    let (code, status) = anonymous.get("/api/v1/pods").await;
    assert_eq!(code, 401);
    assert_eq!(status["reason"], "Unauthorized");
    assert_eq!(status["message"], "Unauthorized");
    let (code, _) = anonymous.get("/version").await;
    assert_eq!(code, 200, "version is public");

    let now = time::OffsetDateTime::now_utc();
    let (cert, key) = server.issue_client_cert_valid(
        "kubernetes-admin",
        &["system:masters"],
        now - time::Duration::hours(2),
        now - time::Duration::hours(1),
    );
    let (code, _) = cert_client(&server, &cert, &key).get("/api/v1/pods").await;
    assert_eq!(
        code, 401,
        "an expired certificate is refused, not anonymous"
    );

    let foreign = super::pki::ClientCa::generate();
    let (cert, key) = foreign.issue("kubernetes-admin", &["system:masters"]);
    let (code, _) = cert_client(&server, &cert, &key).get("/api/v1/pods").await;
    assert_eq!(code, 401, "a certificate of another CA is refused");

    let (code, _) = token_client(&server, "abcdef.0123456789abcdef")
        .get(CSRS)
        .await;
    assert_eq!(code, 401, "a bootstrap token without its Secret");

    let (cert, key) = server.issue_client_cert("kubernetes-admin", &["system:masters"]);
    let (code, _) = cert_client(&server, &cert, &key).get("/api/v1/pods").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn bootstrap_users_reach_only_csrs_and_discovery() {
    let (server, _url) = https_server().await;
    let token = server.create_bootstrap_token(&[KUBEADM_GROUP]);
    let id = token.split('.').next().unwrap().to_owned();
    let bootstrap = token_client(&server, &token);
    let (code, denied) = bootstrap.get("/api/v1/namespaces/default/pods").await;
    assert_eq!(code, 403);
    assert_eq!(denied["reason"], "Forbidden");
    assert_eq!(
        denied["message"],
        format!(
            "pods is forbidden: User \"system:bootstrap:{id}\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        )
    );
    let (code, _) = bootstrap
        .get(&format!(
            "/api/v1/namespaces/kube-system/secrets/bootstrap-token-{id}"
        ))
        .await;
    assert_eq!(code, 403, "a bootstrap user cannot read secrets");
    let (code, _) = bootstrap.get("/api/v1/nodes").await;
    assert_eq!(code, 403);
    for path in ["/api", "/apis", "/apis/certificates.k8s.io/v1", CSRS] {
        let (code, body) = bootstrap.get(path).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
}

/// An edit of a bootstrap token Secret's `stringData`.
type SecretChange = dyn FnOnce(&mut Value);

/// A bootstrap token Secret as an admin would create it; `change` edits its `stringData`.
fn token_secret(id: &str, secret: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut object = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "token-id": id,
            "token-secret": secret,
            "usage-bootstrap-authentication": "true",
            "expiration": super::objects::now_plus(3600),
            "auth-extra-groups": "system:bootstrappers:k3s:default-node-token",
        },
    });
    change(&mut object["stringData"]);
    object
}

#[tokio::test]
async fn bootstrap_token_secrets_expired_or_malformed_are_refused() {
    let (server, _url) = https_server().await;
    let (cert, key) = server.issue_client_cert("kubernetes-admin", &["system:masters"]);
    let admin = cert_client(&server, &cert, &key);
    let secret = "0123456789abcdef";
    let cases: Vec<(&str, &str, Box<SecretChange>)> = vec![
        ("good00", "a valid token", Box::new(|_| {})),
        (
            "expird",
            "expired",
            Box::new(|d| d["expiration"] = json!("2020-01-01T00:00:00Z")),
        ),
        (
            "badexp",
            "an unparsable expiration",
            Box::new(|d| d["expiration"] = json!("tomorrow")),
        ),
        (
            "nousag",
            "no authentication usage",
            Box::new(|d| d["usage-bootstrap-authentication"] = json!("false")),
        ),
        (
            "wrngid",
            "a token-id other than the name's",
            Box::new(|d| d["token-id"] = json!("other1")),
        ),
        (
            "master",
            "a group outside system:bootstrappers:",
            Box::new(|d| d["auth-extra-groups"] = json!("system:masters")),
        ),
        (
            "upperg",
            "an invalid group name",
            Box::new(|d| d["auth-extra-groups"] = json!("system:bootstrappers:K3s")),
        ),
        (
            "spaceg",
            "a group with a space",
            Box::new(|d| {
                d["auth-extra-groups"] = json!("system:bootstrappers:a, system:bootstrappers:b")
            }),
        ),
    ];
    let mut expected = Vec::new();
    for (id, what, change) in cases {
        let (code, body) = admin
            .post(
                "/api/v1/namespaces/kube-system/secrets",
                &token_secret(id, secret, change),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        expected.push((id, what, if id == "good00" { 200 } else { 401 }));
    }
    let (code, body) = admin
        .post(
            "/api/v1/namespaces/kube-system/secrets",
            &json!({"metadata": {"name": "bootstrap-token-opaque", "namespace": "kube-system"},
                "type": "Opaque", "stringData": {"token-id": "opaque", "token-secret": secret,
                "usage-bootstrap-authentication": "true"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    expected.push(("opaque", "a Secret of another type", 401));
    for (id, what, code) in expected {
        let (got, _) = token_client(&server, &format!("{id}.{secret}"))
            .get(CSRS)
            .await;
        assert_eq!(got, code, "{what}");
    }
    for (token, what) in [
        ("good00.0123456789ABCDEF", "the right secret in upper case"),
        ("good00.0123456789abcde", "a 15-character secret"),
        ("good00.0123456789abcdee", "another secret"),
    ] {
        let (got, _) = token_client(&server, token).get(CSRS).await;
        assert_eq!(got, 401, "{what}");
    }
}
