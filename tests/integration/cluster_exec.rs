//! `kubectl exec` and `kubectl cp` (issue 13, points 1, 4 and 8 for exec) with the real
//! kubectl through the test API server, which passes the upgrade through to systemk's
//! kubelet API: over SPDY (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`) and with kubectl's
//! default, a `v5.channel.k8s.io` WebSocket. The command runs as the container's user and sees its private `/tmp`; stdout
//! and stderr stay apart, stdin streams, the exit code comes back. Attacks: no
//! certificate, or a user without `nodes/proxy`, is refused before any upgrade; the
//! command cannot read the host's secrets, write the host's `/etc` or see the host's
//! `/tmp`.

use std::time::Duration;

use serde_json::json;

use crate::cluster::harness::{Cluster, pod_manifest};

/// `nobody`.
const NOBODY: u32 = 65_534;

/// Reads the host's shadow file, writes to the host's `/etc`, counts the host's files in
/// `/tmp`: only the count may print, and it must be 0.
const ATTACK: &str = "cat /etc/shadow && echo READ; touch /etc/systemk-exec && echo WROTE; \
                      ls /tmp | grep -c systemk-host; true";

/// How soon the pod runs and answers exec.
const START: Duration = Duration::from_secs(30);

fn shell_pod(namespace: &str, node: &str) -> String {
    let spec = json!({
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 2,
        "securityContext": {"runAsUser": NOBODY, "runAsGroup": NOBODY},
        "containers": [{
            "name": "main", "image": "/bin/sh",
            "args": ["-c", "echo private > /tmp/mark; exec sleep infinity"],
        }],
    });
    pod_manifest("shell", namespace, node, spec).to_string()
}

/// kubectl's exit code, stdout and stderr.
async fn exec(
    cluster: &Cluster,
    websockets: &str,
    args: &[&str],
    input: Option<&[u8]>,
) -> (Option<i32>, String, String) {
    let env = [("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets)];
    let output = cluster.run_kubectl(args, &env, input).await;
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cluster_exec_and_cp_over_spdy_and_kubectls_default() {
    let Some(mut cluster) = Cluster::new("cluster_exec").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&shell_pod(&namespace, &node)).await;
    cluster
        .wait_for_pod("shell", "Running", |pod| {
            pod["status"]["phase"] == "Running"
        })
        .await;
    let host_file = format!("/tmp/systemk-host-{}", std::process::id());
    std::fs::write(&host_file, "host").unwrap();
    let ns = namespace.as_str();

    for websockets in ["false", "true"] {
        let shown = format!("KUBECTL_REMOTE_COMMAND_WEBSOCKETS={websockets}");
        let who = cluster
            .wait_until(START, "kubectl exec to answer", || async {
                let args = [
                    "exec",
                    "shell",
                    "-n",
                    ns,
                    "--",
                    "sh",
                    "-c",
                    "id -u; cat /tmp/mark",
                ];
                let (code, stdout, _) = exec(&cluster, websockets, &args, None).await;
                (code == Some(0)).then_some(stdout)
            })
            .await;
        assert_eq!(who, format!("{NOBODY}\nprivate\n"), "{shown}");

        let script = "echo out; echo err >&2; exit 3";
        let args = ["exec", "shell", "-n", ns, "--", "sh", "-c", script];
        let (code, stdout, stderr) = exec(&cluster, websockets, &args, None).await;
        assert_eq!(
            (code, stdout.as_str()),
            (Some(3), "out\n"),
            "{shown}: {stderr}"
        );
        assert!(stderr.starts_with("err\n"), "{shown}: {stderr}");
        assert!(
            stderr.contains("command terminated with exit code 3"),
            "{shown}: {stderr}"
        );

        let args = ["exec", "-i", "shell", "-n", ns, "--", "cat"];
        let (code, stdout, stderr) = exec(&cluster, websockets, &args, Some(b"hi\n")).await;
        assert_eq!(
            (code, stdout.as_str()),
            (Some(0), "hi\n"),
            "{shown}: {stderr}"
        );

        // kubectl cp is tar over exec, both ways.
        let local = cluster
            .state_dir()
            .with_file_name(format!("cp-{websockets}"));
        std::fs::write(&local, "copied both ways\n").unwrap();
        let target = format!("{ns}/shell:/tmp/copied-{websockets}");
        let local_text = local.to_str().unwrap();
        let (code, _, stderr) =
            exec(&cluster, websockets, &["cp", local_text, &target], None).await;
        assert_eq!(code, Some(0), "{shown}: {stderr}");
        let back = local.with_extension("back");
        let back_text = back.to_str().unwrap();
        let (code, _, stderr) = exec(&cluster, websockets, &["cp", &target, back_text], None).await;
        assert_eq!(code, Some(0), "{shown}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(&back).unwrap(),
            "copied both ways\n"
        );

        // The host stays out of reach.
        let args = ["exec", "shell", "-n", ns, "--", "sh", "-c", ATTACK];
        let (code, stdout, _) = exec(&cluster, websockets, &args, None).await;
        assert_eq!((code, stdout.as_str()), (Some(0), "0\n"), "{shown}");
        assert!(!std::path::Path::new("/etc/systemk-exec").exists());
    }
    // kubectl's default reached systemk as a WebSocket (GET), SPDY as POST; both upgraded.
    let log = cluster.log();
    for method in ["\"GET\"", "\"POST\""] {
        assert!(
            log.lines()
                .any(|l| l.contains(method) && l.contains("/exec/") && l.contains("101")),
            "no {method} exec upgraded"
        );
    }
    std::fs::remove_file(&host_file).unwrap();
    cluster.teardown().await;
}
