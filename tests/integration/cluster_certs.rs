//! The node's certificates from the cluster, end to end: the `systemk` binary joins the
//! test API server in HTTPS mode with only a bootstrap token (TLS bootstrap), renews its
//! short-lived client certificate in the background without a restart, gets its serving
//! certificate once an admin approves it with the real `kubectl certificate approve` (so
//! `kubectl logs` works through an API server that verifies kubelet certificates), and a
//! bootstrap token reads nothing but CSRs.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::apiserver::Config;
use crate::cluster::harness::{Cluster, condition, pod_manifest, sleeper};
use crate::cluster::node_event_reasons;

/// What kubeadm's default bootstrap token carries as its extra group.
pub(crate) const BOOTSTRAP_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// Node startup with TLS bootstrap, on a loaded machine.
pub(crate) const JOIN: Duration = Duration::from_secs(60);

/// A cluster in HTTPS mode with the node-client auto-approver, whose signer issues
/// certificates for `signing`; agents join with a fresh bootstrap token.
pub(crate) async fn bootstrapping_cluster(
    test: &str,
    signing: Duration,
    verify_serving: bool,
) -> Option<(Cluster, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config {
        https: true,
        cluster_signing_duration: signing,
        auto_approve_node_client_csrs: true,
        verify_kubelet_serving_certs: verify_serving,
        ..Config::default()
    };
    let mut cluster = Cluster::with_config(test, config).await?;
    let token = cluster.server.create_bootstrap_token(&[BOOTSTRAP_GROUP]);
    let bootstrap = cluster
        .server
        .write_bootstrap_kubeconfig(cluster.context.workspace(), &token);
    cluster.use_bootstrap_kubeconfig(bootstrap);
    Some((cluster, token))
}

/// CSRs of `signer` as the API reports them.
pub(crate) async fn csrs(cluster: &Cluster, signer: &str) -> Vec<Value> {
    let list = cluster.get(&["csr"]).await.unwrap_or_default();
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|csr| csr["spec"]["signerName"] == signer)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Subject CN and notAfter (unix seconds) of the first certificate in a PEM file.
pub(crate) fn certificate_facts(path: &Path) -> (String, i64) {
    let pem = std::fs::read(path).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).unwrap();
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|name| name.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    (cn, cert.validity().not_after.timestamp())
}

pub(crate) async fn wait_ready(cluster: &Cluster) -> Value {
    let node = cluster.node().to_owned();
    cluster
        .wait_until(JOIN, "the node to register and be Ready", || async {
            let found = cluster.get(&["node", &node]).await?;
            (condition(&found, "Ready") == Some("True")).then_some(found)
        })
        .await
}

#[tokio::test]
async fn bootstrap_token_joins_the_node_with_its_own_certificate() {
    let Some((mut cluster, token)) =
        bootstrapping_cluster("certs_bootstrap", Duration::from_secs(3600), false).await
    else {
        return;
    };
    cluster.add_agent_args(&["--rotate-server-certificates=false"]);
    cluster.start_agent().await;
    wait_ready(&cluster).await;
    let node = cluster.node().to_owned();

    // One client CSR, made with the bootstrap token, for system:node:<node>, approved by
    // the auto-approver and issued.
    let client = csrs(&cluster, "kubernetes.io/kube-apiserver-client-kubelet").await;
    assert_eq!(client.len(), 1, "{client:#?}");
    let token_id = token.split('.').next().unwrap();
    assert_eq!(
        client[0]["spec"]["username"],
        format!("system:bootstrap:{token_id}")
    );
    assert_eq!(
        client[0]["spec"]["usages"],
        json!(["digital signature", "client auth"])
    );
    assert!(
        condition(&client[0], "Approved").is_some(),
        "{:#?}",
        client[0]
    );

    // Key and certificate 0600 in a 0700 directory; the node's kubeconfig names them and
    // holds no token.
    let pki = cluster.state_dir().join("pki");
    let cert = pki.join("kubelet-client-current.pem");
    assert_eq!(mode(&pki), 0o700);
    assert_eq!(mode(&cert), 0o600);
    assert_eq!(certificate_facts(&cert).0, format!("system:node:{node}"));
    let kubeconfig = std::fs::read_to_string(cluster.state_dir().join("kubeconfig")).unwrap();
    assert!(kubeconfig.contains(cert.to_str().unwrap()), "{kubeconfig}");
    assert!(
        !kubeconfig.contains(&token),
        "the token leaked into {kubeconfig}"
    );
    assert!(
        !cluster.log().contains(token.split('.').nth(1).unwrap()),
        "the token secret was logged"
    );

    // The node's own identity runs pods.
    let namespace = cluster.namespace().to_owned();
    cluster.apply(&sleeper("sleeper", &namespace, &node)).await;
    cluster
        .wait_for_pod("sleeper", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;

    // A restart reuses the stored certificate: no second CSR.
    cluster.kill_agent().await;
    cluster.start_agent().await;
    cluster
        .wait_for_log("using the stored client certificate", 1, JOIN)
        .await;
    wait_ready(&cluster).await;
    assert_eq!(
        csrs(&cluster, "kubernetes.io/kube-apiserver-client-kubelet")
            .await
            .len(),
        1
    );
    cluster.teardown().await;
}

#[tokio::test]
async fn short_lived_client_certificate_is_renewed_without_a_restart() {
    // 90 s certificates: renewed 63–81 s after they arrive.
    let Some((mut cluster, _)) =
        bootstrapping_cluster("certs_rotation", Duration::from_secs(90), false).await
    else {
        return;
    };
    cluster.add_agent_args(&["--rotate-server-certificates=false"]);
    cluster.start_agent().await;
    wait_ready(&cluster).await;
    let pid = cluster.agent_pid();
    let cert = cluster.state_dir().join("pki/kubelet-client-current.pem");
    let (_, first_not_after) = certificate_facts(&cert);

    cluster
        .wait_for_log("client certificate renewed", 1, Duration::from_secs(150))
        .await;
    let (cn, second_not_after) = certificate_facts(&cert);
    assert!(second_not_after > first_not_after);
    assert_eq!(cn, format!("system:node:{}", cluster.node()));
    // The renewal used the node's own certificate (selfnodeclient), not the token.
    let client = csrs(&cluster, "kubernetes.io/kube-apiserver-client-kubelet").await;
    assert!(
        client
            .iter()
            .any(|csr| csr["spec"]["username"] == format!("system:node:{}", cluster.node())),
        "{client:#?}"
    );

    // Past the first certificate's end the node still renews its lease and its pod watch
    // still delivers pods: the same process, on connections with the new certificate.
    let until_expired = first_not_after - k8s_openapi::jiff::Timestamp::now().as_second() + 2;
    if until_expired > 0 {
        tokio::time::sleep(Duration::from_secs(until_expired.unsigned_abs())).await;
    }
    let lease_args = ["lease", cluster.node(), "-n", "kube-node-lease"];
    let before = cluster.get(&lease_args).await.unwrap()["spec"]["renewTime"].clone();
    cluster
        .wait_until(
            Duration::from_secs(30),
            "the lease renewed after the old certificate expired",
            || async {
                let lease = cluster.get(&lease_args).await?;
                (lease["spec"]["renewTime"] != before).then_some(())
            },
        )
        .await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&sleeper("late", &namespace, &node)).await;
    cluster
        .wait_for_pod("late", "Running", |pod| pod["status"]["phase"] == "Running")
        .await;
    assert!(
        cluster.agent_running(),
        "systemk exited:\n{}",
        cluster.log()
    );
    assert_eq!(cluster.agent_pid(), pid);
    assert!(
        !cluster
            .log()
            .contains("the node's client certificate expired and")
    );
    cluster.teardown().await;
}

#[tokio::test]
async fn expired_client_certificate_is_bootstrapped_again_and_a_dead_token_is_reported() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let Some((mut cluster, token)) =
        bootstrapping_cluster("certs_expired", Duration::from_secs(60), false).await
    else {
        return;
    };
    cluster.add_agent_args(&["--rotate-server-certificates=false"]);
    cluster.start_agent().await;
    wait_ready(&cluster).await;
    let pid = cluster.agent_pid().expect("the agent's pid");
    let cert = cluster.state_dir().join("pki/kubelet-client-current.pem");
    let (_, not_after) = certificate_facts(&cert);

    // The node "sleeps" past its certificate's end (SIGSTOP), and its token is revoked.
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).expect("stop systemk");
    let token_id = token.split('.').next().unwrap().to_owned();
    let secret = format!("bootstrap-token-{token_id}");
    cluster
        .kubectl(&["delete", "secret", "-n", "kube-system", &secret])
        .await;
    let until_expired = not_after - k8s_openapi::jiff::Timestamp::now().as_second() + 2;
    if until_expired > 0 {
        tokio::time::sleep(Duration::from_secs(until_expired.unsigned_abs())).await;
    }
    kill(Pid::from_raw(pid as i32), Signal::SIGCONT).expect("continue systemk");
    cluster
        .wait_for_log(
            "the node's client certificate expired and the bootstrap kubeconfig cannot get a new one",
            1,
            JOIN,
        )
        .await;

    // A new token in the bootstrap kubeconfig: the next attempt bootstraps, in-process.
    let fresh = cluster.server.create_bootstrap_token(&[BOOTSTRAP_GROUP]);
    cluster
        .server
        .write_bootstrap_kubeconfig(cluster.context.workspace(), &fresh);
    cluster
        .wait_for_log("client certificate renewed", 1, Duration::from_secs(120))
        .await;
    let (_, renewed_not_after) = certificate_facts(&cert);
    assert!(renewed_not_after > not_after);
    let lease_args = ["lease", cluster.node(), "-n", "kube-node-lease"];
    let before = cluster.get(&lease_args).await.unwrap()["spec"]["renewTime"].clone();
    cluster
        .wait_until(
            Duration::from_secs(30),
            "the lease renewed with the new certificate",
            || async {
                let lease = cluster.get(&lease_args).await?;
                (lease["spec"]["renewTime"] != before).then_some(())
            },
        )
        .await;
    assert_eq!(cluster.agent_pid(), Some(pid));
    assert!(
        cluster.agent_running(),
        "systemk exited:\n{}",
        cluster.log()
    );
    assert!(
        !cluster.log().contains(fresh.split('.').nth(1).unwrap()),
        "the token secret was logged"
    );
    cluster.teardown().await;
}

#[tokio::test]
async fn serving_certificate_is_used_once_approved_and_kubectl_logs_works() {
    let Some((mut cluster, _)) =
        bootstrapping_cluster("certs_serving", Duration::from_secs(3600), true).await
    else {
        return;
    };
    cluster.start_agent().await;
    wait_ready(&cluster).await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let spec = json!({
        "automountServiceAccountToken": false,
        "containers": [{
            "name": "app",
            "image": "/bin/sh",
            "args": ["-c", "echo one; echo two; exec sleep infinity"],
        }],
    });
    cluster
        .apply(&pod_manifest("talker", &namespace, &node, spec).to_string())
        .await;
    cluster
        .wait_for_pod("talker", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;

    // The serving CSR waits for an approver; meanwhile the self-signed certificate does
    // not verify and `kubectl logs` fails.
    let pending = cluster
        .wait_until(JOIN, "a kubelet-serving CSR", || async {
            csrs(&cluster, "kubernetes.io/kubelet-serving")
                .await
                .into_iter()
                .next()
        })
        .await;
    assert_eq!(pending["spec"]["username"], format!("system:node:{node}"));
    assert_eq!(
        pending["spec"]["usages"],
        json!(["digital signature", "server auth"])
    );
    let name = pending["metadata"]["name"].as_str().unwrap().to_owned();
    let event = cluster
        .wait_until(
            JOIN,
            "the ServingCertificatePending event on the Node",
            || async {
                node_event_reasons(&cluster, &node)
                    .await
                    .into_iter()
                    .find(|(reason, _)| reason == "ServingCertificatePending")
            },
        )
        .await;
    assert!(
        event
            .1
            .contains(&format!("kubectl certificate approve {name}")),
        "{event:?}"
    );
    let (ok, _, stderr) = cluster
        .try_kubectl(&["logs", "talker", "-n", &namespace])
        .await;
    assert!(
        !ok,
        "logs through an unverifiable kubelet certificate worked"
    );
    assert!(!stderr.is_empty());

    cluster.kubectl(&["certificate", "approve", &name]).await;
    cluster
        .wait_for_log("serving the cluster-issued certificate", 1, JOIN)
        .await;
    let served = cluster.state_dir().join("pki/kubelet-server-current.pem");
    assert_eq!(mode(&served), 0o600);
    let logs = cluster
        .wait_until(
            JOIN,
            "kubectl logs through the verified kubelet",
            || async {
                let (ok, stdout, _) = cluster
                    .try_kubectl(&["logs", "talker", "-n", &namespace])
                    .await;
                (ok && stdout == "one\ntwo\n").then_some(stdout)
            },
        )
        .await;
    assert_eq!(logs, "one\ntwo\n");
    cluster.teardown().await;
}

#[tokio::test]
async fn bootstrap_token_reads_nothing_but_csrs() {
    let Some((cluster, _)) =
        bootstrapping_cluster("certs_token_attack", Duration::from_secs(3600), false).await
    else {
        return;
    };
    let bootstrap = cluster.context.workspace().join("bootstrap-kubeconfig");
    let as_bootstrapper = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", bootstrap.to_str().unwrap()];
        all.extend_from_slice(args);
        all.iter()
            .map(|arg| (*arg).to_owned())
            .collect::<Vec<String>>()
    };
    // The harness' kubectl passes the admin kubeconfig first; a later --kubeconfig wins.
    for what in [
        &["get", "pods", "-A"][..],
        &["get", "secrets", "-n", "kube-system"][..],
        &["get", "nodes"][..],
    ] {
        let args = as_bootstrapper(what);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, stderr) = cluster.try_kubectl(&args).await;
        assert!(!ok, "the bootstrap token could {what:?}");
        assert!(
            stderr.contains("Forbidden") || stderr.contains("forbidden"),
            "{stderr}"
        );
        assert!(stderr.contains("system:bootstrap:"), "{stderr}");
    }
    let args = as_bootstrapper(&["get", "csr"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = cluster.try_kubectl(&args).await;
    assert!(ok, "the bootstrap token may list CSRs: {stderr}");
    cluster.teardown().await;
}
