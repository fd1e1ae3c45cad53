//! CertificateSigningRequests: real kubectl (`get csr`, `certificate approve`/`deny`) on an
//! HTTPS server with its admin kubeconfig, the serving signer, and the create validation
//! and the attacks the signer and approver must resist.

use serde_json::json;

use super::https_tests::{
    CSRS, KUBEADM_GROUP, NODE_CLIENT_SIGNER, cert_client, certificate_of, csr_object, https_server,
    make_csr, token_client,
};
use super::kubectl_tests::Kubectl;

const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

#[tokio::test]
async fn kubectl_lists_and_approves_a_serving_csr_which_is_then_signed() {
    let (server, _url) = https_server().await;
    let Some(kubectl) = Kubectl::new(
        &server,
        "kubectl_lists_and_approves_a_serving_csr_which_is_then_signed",
    ) else {
        return;
    };
    let (cert, key) = server.issue_client_cert("system:node:n1", &["system:nodes"]);
    let node = cert_client(&server, &cert, &key);
    let (request, _) = make_csr("system:node:n1", &["system:nodes"], &["n1", "127.0.0.1"]);
    let body = csr_object(
        "serving-n1",
        &request,
        SERVING_SIGNER,
        &["digital signature", "server auth"],
    );
    let (code, created) = node.post(CSRS, &body).await;
    assert_eq!(code, 201, "{created}");
    assert!(
        created["status"]["conditions"].is_null(),
        "serving CSRs are never auto-approved: {created}"
    );

    let out = kubectl.run(&["get", "csr"]).await;
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "serving-n1");
    assert_eq!(
        row[2..],
        [SERVING_SIGNER, "system:node:n1", "60m", "Pending"]
    );

    let out = kubectl.run(&["certificate", "approve", "serving-n1"]).await;
    assert_eq!(
        out.trim(),
        "certificatesigningrequest.certificates.k8s.io/serving-n1 approved"
    );
    let (_, csr) = node.get(&format!("{CSRS}/serving-n1")).await;
    let pem = certificate_of(&csr).expect("signed after approval");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let out = kubectl.run(&["get", "csr", "serving-n1"]).await;
    assert!(out.contains("Approved,Issued"), "{out}");
}

#[tokio::test]
async fn kubectl_denies_and_a_denied_csr_is_never_signed() {
    let (server, _url) = https_server().await;
    let Some(kubectl) = Kubectl::new(&server, "kubectl_denies_and_a_denied_csr_is_never_signed")
    else {
        return;
    };
    let (cert, key) = server.issue_client_cert("system:node:n1", &["system:nodes"]);
    let node = cert_client(&server, &cert, &key);
    let (request, _) = make_csr("system:node:n1", &["system:nodes"], &["n1"]);
    let body = csr_object(
        "deny-me",
        &request,
        SERVING_SIGNER,
        &["digital signature", "server auth"],
    );
    assert_eq!(node.post(CSRS, &body).await.0, 201);
    kubectl.run(&["certificate", "deny", "deny-me"]).await;
    let csr = server.csr("deny-me").unwrap();
    assert_eq!(csr["status"]["conditions"][0]["type"], "Denied");
    assert!(certificate_of(&csr).is_none());
    // Approving it afterwards is invalid: Approved and Denied are exclusive.
    let output = kubectl.output(&["certificate", "approve", "deny-me"]).await;
    assert!(!output.status.success() || certificate_of(&server.csr("deny-me").unwrap()).is_none());
}

#[tokio::test]
async fn a_node_cannot_get_a_client_certificate_for_another_node_approved() {
    let (server, _url) = https_server().await;
    let (cert, key) = server.issue_client_cert("system:node:n1", &["system:nodes"]);
    let node = cert_client(&server, &cert, &key);
    let (request, _) = make_csr("system:node:n2", &["system:nodes"], &[]);
    let body = csr_object(
        "steal-n2",
        &request,
        NODE_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    let (code, created) = node.post(CSRS, &body).await;
    assert_eq!(code, 201, "{created}");
    assert!(created["status"]["conditions"].is_null(), "{created}");
    assert!(certificate_of(&created).is_none());
    // Nor can the node approve it itself.
    let mut approval = created.clone();
    approval["status"]["conditions"] =
        json!([{"type": "Approved", "status": "True", "reason": "Self"}]);
    let (code, _) = node
        .put(&format!("{CSRS}/steal-n2/approval"), &approval)
        .await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn invalid_csrs_are_refused_and_unfit_ones_fail_at_the_signer() {
    let (server, _url) = https_server().await;
    let token = server.create_bootstrap_token(&[KUBEADM_GROUP]);
    let bootstrap = token_client(&server, &token);
    let (request, _) = make_csr("system:node:n1", &["system:nodes"], &[]);

    let mut body = csr_object("short", &request, NODE_CLIENT_SIGNER, &["client auth"]);
    body["spec"]["expirationSeconds"] = json!(599);
    body["spec"]["signerName"] = json!("");
    body["spec"]["usages"] = json!([]);
    let (code, status) = bootstrap.post(CSRS, &body).await;
    assert_eq!(code, 422, "{status}");
    let causes: Vec<String> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        causes,
        [
            "spec.usages: Required value: usages must be provided",
            "spec.signerName: Required value: signerName must be provided",
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)",
        ]
    );

    let mut body = csr_object("garbage", &request, NODE_CLIENT_SIGNER, &["client auth"]);
    body["spec"]["request"] = json!(super::base64::standard(b"not a PEM"));
    let (code, status) = bootstrap.post(CSRS, &body).await;
    assert_eq!(code, 422);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("PEM block type must be CERTIFICATE REQUEST"),
        "{status}"
    );

    // A tampered request (signature no longer matches) is refused.
    let der_start = "-----BEGIN CERTIFICATE REQUEST-----\n";
    let body_b64: String = request
        .trim_start_matches(der_start)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mut der =
        super::base64::decode_standard(body_b64.trim_end_matches("ENDCERTIFICATEREQUEST")).unwrap();
    let cn = der.windows(6).position(|w| w == b"node:n").unwrap();
    der[cn + 5] = b'm';
    let tampered = format!(
        "{der_start}{}\n-----END CERTIFICATE REQUEST-----\n",
        super::base64::standard(&der)
    );
    let body = csr_object("tampered", &tampered, NODE_CLIENT_SIGNER, &["client auth"]);
    let (code, status) = bootstrap.post(CSRS, &body).await;
    assert_eq!(code, 422, "{status}");

    // Valid as an API object but not a kubelet client request (wrong O): approved by an
    // admin, the signer marks it Failed instead of signing.
    let (wrong, _) = make_csr("system:node:n1", &["system:masters"], &[]);
    let body = csr_object(
        "wrong-org",
        &wrong,
        NODE_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    let (code, created) = bootstrap.post(CSRS, &body).await;
    assert_eq!(code, 201);
    assert!(
        created["status"]["conditions"].is_null(),
        "not auto-approved"
    );
    server.approve_csr("wrong-org");
    let csr = server.csr("wrong-org").unwrap();
    assert_eq!(csr["status"]["conditions"][1]["type"], "Failed");
    assert_eq!(
        csr["status"]["conditions"][1]["message"],
        "subject organization is not system:nodes"
    );
    assert!(certificate_of(&csr).is_none());
}

#[tokio::test]
async fn pod_logs_verify_the_kubelet_serving_certificate_against_the_cluster_ca() {
    use super::fake_kubelet::FakeKubelet;
    let (server, _url) = https_server().await;
    let (cert, key) = server.issue_client_cert("kubernetes-admin", &["system:masters"]);
    let admin = cert_client(&server, &cert, &key);
    let (cert, key) = server.issue_client_cert("system:node:n1", &["system:nodes"]);
    let node = cert_client(&server, &cert, &key);
    // The kubelet's serving certificate, through the serving signer.
    let (request, serving_key) =
        make_csr("system:node:n1", &["system:nodes"], &["n1", "127.0.0.1"]);
    let body = csr_object(
        "serving-n1",
        &request,
        SERVING_SIGNER,
        &["digital signature", "server auth"],
    );
    assert_eq!(node.post(CSRS, &body).await.0, 201);
    server.approve_csr("serving-n1");
    let serving = certificate_of(&server.csr("serving-n1").unwrap()).unwrap();

    for (name, kubelet, trusted) in [
        (
            "signed",
            FakeKubelet::start_serving(&server.cluster_ca_pem(), Some((&serving, &serving_key))),
            true,
        ),
        (
            "selfsigned",
            FakeKubelet::start(&server.cluster_ca_pem()),
            false,
        ),
    ] {
        let node_object = json!({"metadata": {"name": name}, "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}},
        }});
        assert_eq!(admin.post("/api/v1/nodes", &node_object).await.0, 201);
        let pod = json!({"metadata": {"name": name}, "spec": {"nodeName": name, "containers": [{"name": "c", "image": "/bin/sleep"}]}});
        assert_eq!(
            admin.post("/api/v1/namespaces/default/pods", &pod).await.0,
            201
        );
        let (code, body) = admin
            .get(&format!("/api/v1/namespaces/default/pods/{name}/log"))
            .await;
        if trusted {
            assert_eq!(code, 200, "{body}");
        } else {
            assert_eq!(
                code, 500,
                "an untrusted kubelet certificate is refused: {body}"
            );
        }
    }
}

#[tokio::test]
async fn kubectl_with_the_bootstrap_kubeconfig_reaches_csrs_only() {
    let (server, _url) = https_server().await;
    let token = server.create_bootstrap_token(&[KUBEADM_GROUP]);
    let Some(kubectl) = Kubectl::new(
        &server,
        "kubectl_with_the_bootstrap_kubeconfig_reaches_csrs_only",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = server.write_bootstrap_kubeconfig(dir.path(), &token);
    let kubeconfig = bootstrap.to_str().unwrap();
    let out = kubectl
        .run(&["--kubeconfig", kubeconfig, "get", "csr"])
        .await;
    assert!(out.is_empty() || out.contains("No resources"), "{out}");
    let output = kubectl
        .output(&[
            "--kubeconfig",
            kubeconfig,
            "get",
            "secrets",
            "-n",
            "kube-system",
        ])
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Forbidden") || stderr.contains("forbidden"),
        "{stderr}"
    );
}

#[tokio::test]
async fn group_grants_let_the_approver_approve_other_requesters() {
    let (server, _url) = https_server().await;
    // Without a grant, a node's CSR for another node is left pending (above); with
    // nodeclient granted to the group, the approver takes it as kubeadm's binding would.
    server.grant_group(
        "system:nodes",
        "create",
        "certificatesigningrequests",
        "nodeclient",
    );
    let (cert, key) = server.issue_client_cert("system:node:n1", &["system:nodes"]);
    let node = cert_client(&server, &cert, &key);
    let (request, _) = make_csr("system:node:n2", &["system:nodes"], &[]);
    let body = csr_object(
        "n2",
        &request,
        NODE_CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    let (code, created) = node.post(CSRS, &body).await;
    assert_eq!(code, 201);
    assert_eq!(created["status"]["conditions"][0]["reason"], "AutoApproved");
    assert!(certificate_of(&created).is_some());
}
