//! `systemk doctor` against real node state: the binary reads what a bootstrapped agent
//! left (kubeconfig, certificates, `certificate-status.json`) with the agent's own flags,
//! says OK for a healthy node and names the serving CSR to approve, and says FAIL with
//! the cause and the fix for an expired client certificate whose bootstrap token was
//! revoked, both from the agent's record and by asking the API server (`--online`).

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::harness::Cluster;
use crate::cluster_certs::{JOIN, bootstrapping_cluster, certificate_facts, csrs, wait_ready};

/// The line of `check` in doctor's text output.
fn line<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|line| {
            line.get(5..)
                .is_some_and(|rest| rest.starts_with(&format!("{check}:")))
        })
        .unwrap_or_else(|| panic!("no {check} line in:\n{out}"))
}

async fn doctor(cluster: &Cluster, extra: &[&str]) -> (Option<i32>, String) {
    let (code, stdout, stderr) = cluster.doctor(extra).await;
    assert!(
        !stdout.is_empty(),
        "doctor printed nothing; stderr:\n{stderr}"
    );
    (code, stdout)
}

#[tokio::test]
async fn doctor_reports_a_bootstrapped_node_and_the_serving_csr_to_approve() {
    let Some((mut cluster, token)) =
        bootstrapping_cluster("doctor_ok", Duration::from_secs(3600), true).await
    else {
        return;
    };
    // As the README installs it: the token is a secret.
    let bootstrap = cluster.context.workspace().join("bootstrap-kubeconfig");
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o600)).unwrap();
    cluster.start_agent().await;
    wait_ready(&cluster).await;
    let pending = cluster
        .wait_until(JOIN, "a kubelet-serving CSR", || async {
            csrs(&cluster, "kubernetes.io/kubelet-serving")
                .await
                .into_iter()
                .next()
        })
        .await;
    let name = pending["metadata"]["name"].as_str().unwrap().to_owned();

    // Bootstrapped, the serving CSR waiting: warnings only, exit 0.
    let (code, out) = doctor(&cluster, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let node = cluster.node().to_owned();
    let client = line(&out, "client certificate");
    assert!(client.starts_with("OK "), "{out}");
    assert!(
        client.contains(&format!("CN=system:node:{node} O=system:nodes")),
        "{out}"
    );
    assert!(client.contains("renewal due between"), "{out}");
    assert!(line(&out, "kubeconfig").starts_with("OK "), "{out}");
    let bootstrap = line(&out, "bootstrap kubeconfig");
    assert!(bootstrap.starts_with("OK "), "{out}");
    assert!(
        bootstrap.contains("cannot be known without asking it"),
        "{out}"
    );
    assert!(
        !out.contains(token.split('.').nth(1).unwrap()),
        "the token secret was printed"
    );
    let serving = line(&out, "serving certificate");
    assert!(serving.starts_with("WARN "), "{out}");
    assert!(
        serving.contains(&format!("kubectl certificate approve {name}")),
        "{out}"
    );

    // Approved: every check OK, also as JSON and when asking the API server.
    cluster.kubectl(&["certificate", "approve", &name]).await;
    cluster
        .wait_for_log("serving the cluster-issued certificate", 1, JOIN)
        .await;
    let (code, out) = doctor(&cluster, &["--online"]).await;
    assert_eq!(code, Some(0), "{out}");
    for check in [
        "kubeconfig",
        "bootstrap kubeconfig",
        "client certificate",
        "serving certificate",
    ] {
        assert!(line(&out, check).starts_with("OK "), "{check}:\n{out}");
    }
    assert!(
        line(&out, "serving certificate").contains("from the cluster"),
        "{out}"
    );
    assert!(
        line(&out, "bootstrap kubeconfig").contains("the API server accepts its token"),
        "{out}"
    );
    let (code, json) = doctor(&cluster, &["-o", "json"]).await;
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["status"], "OK", "{json}");
    assert_eq!(report["checks"].as_array().map(Vec::len), Some(4), "{json}");

    let (code, _, stderr) = cluster.doctor(&["--no-such-flag"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    cluster.teardown().await;
}

#[tokio::test]
async fn doctor_names_an_expired_certificate_whose_token_was_revoked() {
    let Some((mut cluster, token)) =
        bootstrapping_cluster("doctor_revoked", Duration::from_secs(60), false).await
    else {
        return;
    };
    cluster.add_agent_args(&["--rotate-server-certificates=false"]);
    cluster.start_agent().await;
    wait_ready(&cluster).await;
    let cert = cluster.state_dir().join("pki/kubelet-client-current.pem");
    let (_, not_after) = certificate_facts(&cert);

    // The node is off while its certificate expires and its token is revoked.
    cluster.kill_agent().await;
    let secret = format!("bootstrap-token-{}", token.split('.').next().unwrap());
    cluster
        .kubectl(&["delete", "secret", "-n", "kube-system", &secret])
        .await;
    let until_expired = not_after - k8s_openapi::jiff::Timestamp::now().as_second() + 2;
    if until_expired > 0 {
        tokio::time::sleep(Duration::from_secs(until_expired.unsigned_abs())).await;
    }

    // Asked, the API server refuses the token: doctor says so, and what to do.
    let (code, out) = doctor(&cluster, &["--online"]).await;
    assert_eq!(code, Some(1), "{out}");
    let client = line(&out, "client certificate");
    for needle in [
        "FAIL ",
        "expired at",
        "the bootstrap token cannot get a new one",
        "401 Unauthorized",
        "the node cannot reach the cluster",
        "kubeadm token create",
    ] {
        assert!(client.contains(needle), "{needle}:\n{out}");
    }
    assert!(
        line(&out, "bootstrap kubeconfig").starts_with("FAIL "),
        "{out}"
    );

    // The agent started again cannot bootstrap; doctor reads its record, offline.
    cluster.start_agent().await;
    cluster
        .wait_until(JOIN, "the agent to give up bootstrapping", || async {
            let record =
                std::fs::read_to_string(cluster.state_dir().join("pki/certificate-status.json"))
                    .ok()?;
            record.contains("\"unauthorized\": true").then_some(())
        })
        .await;
    let (code, out) = doctor(&cluster, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    let client = line(&out, "client certificate");
    assert!(client.starts_with("FAIL "), "{out}");
    assert!(
        client.contains("(401 Unauthorized) when the agent last bootstrapped"),
        "{out}"
    );
    assert!(
        line(&out, "bootstrap kubeconfig").contains("the last bootstrap failed at"),
        "{out}"
    );
    cluster.teardown().await;
}
