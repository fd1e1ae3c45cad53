//! `k3s/node-bootstrap` against the test API server with the real kubectl: it applies
//! `k3s/rbac.yaml`, creates a bootstrap token Secret the way the bootstrap token
//! authenticator reads it, and writes a bootstrap kubeconfig with which a real systemk node
//! joins (the CSR approver approves it only through the applied bindings, since the token's
//! group is k3s's, not kubeadm's). Attacks: bad arguments are refused before anything
//! reaches the cluster, and a kubeconfig with an expired or unknown token is Unauthorized.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::apiserver::Config;
use crate::apiserver::base64::decode_standard;
use crate::cluster::harness::{Cluster, condition};
use crate::cluster_rbac::K3S_BOOTSTRAP_GROUP;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k3s/node-bootstrap")
}

async fn bootstrap_cluster(test: &str) -> Option<Cluster> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config {
        https: true,
        auto_approve_node_client_csrs: true,
        ..Config::default()
    };
    Cluster::with_config(test, config).await
}

/// Runs the script with an admin kubeconfig of `cluster`; returns (success, stdout, stderr).
async fn run_script(cluster: &Cluster, args: &[&str]) -> (bool, String, String) {
    let admin_dir = cluster.context.workspace().join("admin");
    std::fs::create_dir_all(&admin_dir).unwrap();
    let admin = cluster.server.write_kubeconfig(&admin_dir);
    let output = Command::new(script())
        .arg("--kubeconfig")
        .arg(&admin)
        .args(args)
        .env("KUBECTL", cluster.kubectl_program())
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run k3s/node-bootstrap");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `stringData` of a stored Secret, decoded.
fn decoded(secret: &Value) -> Value {
    let data = secret["data"].as_object().cloned().unwrap_or_default();
    let fields = data.into_iter().map(|(key, value)| {
        let bytes = decode_standard(value.as_str().unwrap_or("")).unwrap_or_default();
        (key, json!(String::from_utf8_lossy(&bytes)))
    });
    Value::Object(fields.collect())
}

fn token_in(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let line = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token in {text}"));
    line.trim().to_owned()
}

#[tokio::test]
async fn node_bootstrap_output_joins_a_node_with_only_its_token() {
    let Some(mut cluster) = bootstrap_cluster("node_bootstrap").await else {
        return;
    };
    let out = cluster.context.workspace().join("bootstrap-kubeconfig");
    let url = cluster.url().to_owned();
    let (ok, stdout, stderr) = run_script(
        &cluster,
        &[
            "--server",
            &url,
            "--out",
            out.to_str().unwrap(),
            "--ttl",
            "10m",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("SYSTEMK_BOOTSTRAP_KUBECONFIG"), "{stdout}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let token = token_in(&out);
    let (id, _) = token.split_once('.').unwrap();
    let secret = cluster
        .get(&[
            "secret",
            &format!("bootstrap-token-{id}"),
            "-n",
            "kube-system",
        ])
        .await
        .expect("the token's Secret");
    assert_eq!(secret["type"], "bootstrap.kubernetes.io/token");
    let data = decoded(&secret);
    assert_eq!(data["token-id"], id);
    assert_eq!(data["usage-bootstrap-authentication"], "true");
    assert!(data.get("usage-bootstrap-signing").is_none(), "{data}");
    assert_eq!(data["auth-extra-groups"], K3S_BOOTSTRAP_GROUP);
    let expires: Timestamp = data["expiration"].as_str().unwrap().parse().unwrap();
    let left = expires.as_second() - Timestamp::now().as_second();
    assert!((500..=600).contains(&left), "expires in {left}s");
    for binding in [
        "systemk:node-bootstrapper",
        "systemk:node-autoapprove-bootstrap",
    ] {
        assert!(
            cluster
                .get(&["clusterrolebinding", binding])
                .await
                .is_some()
        );
    }

    cluster.add_agent_args(&["--rotate-server-certificates=false"]);
    cluster.use_bootstrap_kubeconfig(out);
    cluster.start_agent().await;
    let node = cluster.node().to_owned();
    cluster
        .wait_until(Duration::from_secs(60), "the node to be Ready", || async {
            let found = cluster.get(&["node", &node]).await?;
            (condition(&found, "Ready") == Some("True")).then_some(())
        })
        .await;
    let csrs = cluster.get(&["csr"]).await.unwrap();
    let csr = &csrs["items"][0];
    assert_eq!(csr["spec"]["username"], format!("system:bootstrap:{id}"));
    let approved = csr["status"]["conditions"][0].clone();
    assert_eq!(approved["reason"], "AutoApproved", "{csr:#}");
    cluster.teardown().await;
}

#[tokio::test]
async fn node_bootstrap_refuses_bad_arguments_and_dead_tokens_are_unauthorized() {
    let Some(cluster) = bootstrap_cluster("node_bootstrap_attack").await else {
        return;
    };
    let out = cluster.context.workspace().join("bootstrap-kubeconfig");
    let out_arg = out.to_str().unwrap().to_owned();
    let url = cluster.url().to_owned();
    for (args, what) in [
        (vec!["--ttl", "0h"], "a zero TTL"),
        (vec!["--ttl", "1y"], "an unknown unit"),
        (vec!["--ttl", "5h; rm -rf /"], "a TTL with a command"),
        (
            vec!["--token", "ABCDEF.0123456789abcdef"],
            "an upper-case token",
        ),
        (
            vec!["--token", "abcdef.0123456789abcdef\nextra"],
            "a token with a new line",
        ),
        (vec!["--server", "http://plain"], "a plain-HTTP server"),
        (vec!["--name", "node"], "an unknown flag"),
    ] {
        let (ok, _, stderr) = run_script(&cluster, &args).await;
        assert!(!ok, "{what} was accepted");
        assert!(
            stderr.contains("node-bootstrap") || stderr.contains("k3s/node-bootstrap"),
            "{what}: {stderr}"
        );
    }
    assert!(!out.exists(), "a refused run wrote {}", out.display());
    assert!(
        cluster
            .get(&["clusterrolebinding", "systemk:node-events"])
            .await
            .is_none()
    );

    // A token nobody created, then one whose Secret expired: the kubeconfig is written
    // (the script cannot know), and the API server refuses it.
    let expired = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-expird", "namespace": "kube-system"},
        "stringData": {"token-id": "expird", "token-secret": "0123456789abcdef",
            "usage-bootstrap-authentication": "true", "expiration": "2020-01-01T00:00:00Z",
            "auth-extra-groups": K3S_BOOTSTRAP_GROUP},
    });
    cluster.apply(&expired.to_string()).await;
    for token in ["K10abc::unknwn.0123456789abcdef", "expird.0123456789abcdef"] {
        let (ok, _, stderr) = run_script(
            &cluster,
            &["--server", &url, "--out", &out_arg, "--token", token],
        )
        .await;
        assert!(ok, "{stderr}");
        assert_eq!(token_in(&out), token.rsplit("::").next().unwrap());
        let (ok, _, stderr) = cluster
            .try_kubectl(&["--kubeconfig", &out_arg, "get", "csr"])
            .await;
        assert!(!ok, "{token} was accepted");
        assert!(stderr.contains("Unauthorized"), "{stderr}");
    }
    cluster.teardown().await;
}
