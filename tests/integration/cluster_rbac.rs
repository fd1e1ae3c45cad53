//! `k3s/rbac.yaml` is exact. A node joins the test API server in HTTPS mode with a bootstrap
//! token of k3s's default group and runs through every flow it has: TLS bootstrap, register,
//! lease, the pod watch, status patches, events, a mirror pod, configMap and secret volumes
//! and env, projected service account tokens, repeated events (a series), its serving
//! certificate, TokenReview and SubjectAccessReview from its kubelet API, deletion, and the
//! renewal of its client certificate. The server records every request of the node's two identities as RBAC
//! attributes (`apiserver::request_info`), with the Node authorizer's decision at that moment
//! (`apiserver::node_authorizer`), plus the CSR approver's checks for the node. Then:
//! (a) each one is allowed by the Node authorizer or by a rule of `k3s/rbac.yaml`
//! (`apiserver::rbac`), and (b) each rule of `k3s/rbac.yaml` allowed at least one of them.
//! The CSR approval also depends on the file: the approver reads the applied bindings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::apiserver::Config;
use crate::apiserver::node_authorizer::Decision;
use crate::apiserver::rbac::{Policy, RuleId};
use crate::apiserver::request_info::Attributes;
use crate::cluster::harness::{Cluster, condition, pod_manifest, sleeper};

/// The extra group `k3s token create` gives its tokens (k3s `pkg/kubeadm/token.go`).
pub const K3S_BOOTSTRAP_GROUP: &str = "system:bootstrappers:k3s:default-node-token";

/// Node startup with TLS bootstrap, on a loaded machine.
const JOIN: Duration = Duration::from_secs(60);

/// The node's client certificates live this long, so it renews one during the test.
const SIGNING: Duration = Duration::from_secs(90);

/// The bootstrap binding's permissions, through the built-in role it binds.
const BOOTSTRAPPER: &str = "ClusterRoleBinding/systemk:node-bootstrapper -> \
    ClusterRole/system:node-bootstrapper#0: ";

/// Permissions `k3s/rbac.yaml` grants that no request in this test uses, with the reason.
/// Both come with the built-in role `system:node-bootstrapper`, which the file binds as
/// kubeadm does rather than defining a role of its own.
const UNEXERCISED: &[(&str, &str, &str)] = &[
    (
        BOOTSTRAPPER,
        "get certificates.k8s.io/certificatesigningrequests",
        "systemk reads its CSR by a metadata.name field selector (list, then watch), never \
         with a get; the built-in role grants it anyway",
    ),
    (
        BOOTSTRAPPER,
        "watch certificates.k8s.io/certificatesigningrequests",
        "the test API server approves and signs a client CSR within the create request, so the \
         bootstrap token's first list already finds the certificate; against a real \
         csrapproving controller the token then watches the CSR (as the node identity does \
         here for its serving CSR): src/sources/kube/certificates/request.rs",
    ),
];

fn rbac_yaml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k3s/rbac.yaml")
}

/// The documents of `k3s/rbac.yaml`.
pub fn rbac_documents() -> Vec<Value> {
    let text = std::fs::read_to_string(rbac_yaml()).expect("read k3s/rbac.yaml");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("a YAML document"))
        .filter(|document| !document.is_null())
        .collect()
}

async fn wait_ready(cluster: &Cluster) {
    let node = cluster.node().to_owned();
    cluster
        .wait_until(JOIN, "the node to register and be Ready", || async {
            let found = cluster.get(&["node", &node]).await?;
            (condition(&found, "Ready") == Some("True")).then_some(())
        })
        .await;
}

/// A pod that uses a configMap volume, secret env, a projected token and the default
/// service account token.
fn consumer(cluster: &Cluster) -> Value {
    let spec = json!({
        "containers": [{
            "name": "main",
            "image": "/bin/sleep",
            "args": ["infinity"],
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}],
            "volumeMounts": [
                {"name": "settings", "mountPath": "/tmp/settings"},
                {"name": "vault", "mountPath": "/tmp/vault"},
            ],
        }],
        "volumes": [
            {"name": "settings", "configMap": {"name": "settings"}},
            {"name": "vault", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "token"}},
            ]}},
        ],
    });
    pod_manifest("consumer", cluster.namespace(), cluster.node(), spec)
}

/// Calls the node's kubelet API with a service account token: a TokenReview, then a
/// SubjectAccessReview, from the node.
async fn call_kubelet_api_with_a_token(cluster: &Cluster) {
    let namespace = cluster.namespace();
    cluster
        .kubectl(&["create", "serviceaccount", "scraper", "-n", namespace])
        .await;
    let token = cluster
        .server
        .issue_token(namespace, "scraper", &[], 600)
        .expect("a token");
    let ca = reqwest::Certificate::from_pem(cluster.server.cluster_ca_pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // The cluster-issued serving certificate names the node's InternalIP.
    let url = format!("https://127.0.0.1:{}/pods", cluster.kubelet_port());
    let (status, body) = cluster
        .wait_until(JOIN, "the kubelet API to answer a token", || async {
            let response = client.get(&url).bearer_auth(&token).send().await.ok()?;
            Some((response.status(), response.text().await.ok()?))
        })
        .await;
    // Authenticated but not authorized: both reviews happened.
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
}

/// Approves the node's kubelet-serving CSR once it is there.
async fn approve_serving_csr(cluster: &Cluster) {
    let name = cluster
        .wait_until(JOIN, "a kubelet-serving CSR", || async {
            let list = cluster.get(&["csr"]).await?;
            list["items"].as_array()?.iter().find_map(|csr| {
                (csr["spec"]["signerName"] == "kubernetes.io/kubelet-serving")
                    .then(|| csr["metadata"]["name"].as_str().map(str::to_owned))?
            })
        })
        .await;
    cluster.kubectl(&["certificate", "approve", &name]).await;
    cluster
        .wait_for_log("serving the cluster-issued certificate", 1, JOIN)
        .await;
}

/// Runs the node through its flows; returns once its client certificate was renewed.
async fn run_every_flow(cluster: &mut Cluster) {
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let manifest = cluster.manifests().join("web.yaml");
    std::fs::write(&manifest, sleeper("web", &namespace, &node)).unwrap();
    cluster.add_agent_args(&["--authentication-token-webhook"]);
    cluster.start_agent().await;
    wait_ready(cluster).await;

    cluster
        .kubectl(&[
            "create",
            "configmap",
            "settings",
            "--from-literal=level=debug",
            "-n",
            &namespace,
        ])
        .await;
    cluster
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=password=hunter2",
            "-n",
            &namespace,
        ])
        .await;
    cluster.apply(&consumer(cluster).to_string()).await;
    // A container that keeps exiting: its repeated events become a series (a patch).
    let restarter = json!({
        "automountServiceAccountToken": false,
        "containers": [{"name": "main", "image": "/bin/sh", "args": ["-c", "exit 3"]}],
    });
    cluster
        .apply(&pod_manifest("restarter", &namespace, &node, restarter).to_string())
        .await;
    cluster
        .wait_for_pod("consumer", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;
    let mirror = format!("web-{node}");
    cluster
        .wait_for_pod(&mirror, "mirrored and Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;

    approve_serving_csr(cluster).await;
    call_kubelet_api_with_a_token(cluster).await;

    std::fs::remove_file(&manifest).unwrap();
    cluster
        .wait_until(JOIN, "the mirror pod to go", || async {
            cluster.pod(&mirror).await.is_none().then_some(())
        })
        .await;
    cluster
        .kubectl(&["delete", "pod", "consumer", "-n", &namespace, "--wait=true"])
        .await;
    cluster
        .wait_for_log("client certificate renewed", 1, Duration::from_secs(150))
        .await;
}

/// What the policy and the Node authorizer made of the node's recorded requests.
#[derive(Default)]
struct Verdict {
    /// Requests neither allowed, each with whether the CSR approver asked it.
    denied: Vec<(Attributes, bool)>,
    /// Rules of the file, each with a request it allowed.
    used: BTreeMap<RuleId, Attributes>,
    /// How many requests each identity made.
    counts: BTreeMap<String, usize>,
}

fn judge(cluster: &Cluster, policy: &Policy, token_id: &str) -> Verdict {
    let node_user = format!("system:node:{}", cluster.node());
    let bootstrap_user = format!("system:bootstrap:{token_id}");
    let mut verdict = Verdict::default();
    for recorded in cluster.server.recorded() {
        let attributes = recorded.attributes;
        if attributes.user != node_user && attributes.user != bootstrap_user {
            continue;
        }
        *verdict.counts.entry(attributes.user.clone()).or_default() += 1;
        let rules = policy.rules_allowing(&attributes);
        for rule in &rules {
            verdict
                .used
                .entry(rule.clone())
                .or_insert_with(|| attributes.clone());
        }
        let by_node_authorizer = recorded.node_authorizer == Some(Decision::Allow);
        let denied = (attributes, recorded.by_csr_approver);
        if !by_node_authorizer && rules.is_empty() && !verdict.denied.contains(&denied) {
            verdict.denied.push(denied);
        }
    }
    verdict
}

#[tokio::test]
async fn every_request_of_a_node_is_allowed_by_rbac_yaml_and_every_rule_is_used() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config {
        https: true,
        cluster_signing_duration: SIGNING,
        auto_approve_node_client_csrs: true,
        verify_kubelet_serving_certs: true,
        ..Config::default()
    };
    let Some(mut cluster) = Cluster::with_config("rbac_exact", config).await else {
        return;
    };
    cluster
        .kubectl(&["apply", "-f", rbac_yaml().to_str().unwrap()])
        .await;
    let token = cluster
        .server
        .create_bootstrap_token(&[K3S_BOOTSTRAP_GROUP]);
    let bootstrap = cluster
        .server
        .write_bootstrap_kubeconfig(cluster.context.workspace(), &token);
    cluster.use_bootstrap_kubeconfig(bootstrap);
    run_every_flow(&mut cluster).await;

    let policy = Policy::new(rbac_documents());
    let token_id = token.split('.').next().unwrap();
    let verdict = judge(&cluster, &policy, token_id);
    let shown: Vec<String> = verdict
        .denied
        .iter()
        .map(|(attributes, by_approver)| {
            let asker = if *by_approver {
                " (the CSR approver's review)"
            } else {
                ""
            };
            format!("{attributes}{asker}")
        })
        .collect();
    assert!(
        verdict.denied.is_empty(),
        "requests neither the Node authorizer nor k3s/rbac.yaml allow:\n{}",
        shown.join("\n")
    );
    let unused: Vec<String> = policy
        .own_rules()
        .into_iter()
        .filter(|rule| !verdict.used.contains_key(rule))
        .filter(|rule| {
            !UNEXERCISED
                .iter()
                .any(|(binding, permission, _)| rule.0 == format!("{binding}{permission}"))
        })
        .map(|rule| rule.0)
        .collect();
    assert!(
        unused.is_empty(),
        "rules of k3s/rbac.yaml no request needed: {unused:?}\n(used: {:#?})",
        verdict.used
    );
    // The flows happened: both identities made requests.
    assert!(verdict.counts.len() == 2, "{:?}", verdict.counts);
    cluster.teardown().await;
}
