//! Issue 14, points 6 and 7, end to end: a node whose state directory is a small tmpfs.
//! A pod that fills it through an emptyDir is evicted (Failed, reason Evicted, the
//! kubelet's message naming ephemeral-storage, DisruptionTarget, an Evicted event) and its
//! emptyDir freed, one pod per pass: a bystander pod survives that first eviction. With the
//! disk filled by something no eviction frees, DiskPressure goes True on the Node and the
//! remaining ordinary pod is evicted too, while a static pod and a `system-node-critical`
//! pod are never evicted. A pod cannot claim a priority (the API server refuses a
//! `spec.priority` of its own; `apiserver/priority.rs`). Against the test API server.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::cluster::harness::{Cluster, condition, pod_manifest, running_and_ready, sleeper};
use crate::support::wait_for;

/// The tmpfs the node's state directory is, and the threshold that makes 25 % of it the
/// eviction line.
const STATE_SIZE: &str = "size=24m,mode=0700";
const THRESHOLD: &str = "nodefs.available<25%";

/// Eviction runs every 10 s and the node status every 10 s: generous, for a busy machine.
const EVICTION_DEADLINE: Duration = Duration::from_secs(90);

async fn run(argv: &[&str]) {
    let status = Command::new(argv[0])
        .args(&argv[1..])
        .status()
        .await
        .expect("run a command");
    assert!(status.success(), "{argv:?} failed");
}

fn evicted(pod: &Value) -> bool {
    pod["status"]["phase"] == "Failed" && pod["status"]["reason"] == "Evicted"
}

#[tokio::test]
async fn issue_14_a_pod_filling_the_state_file_system_is_evicted_and_critical_pods_stay() {
    let Some(mut cluster) = Cluster::new("eviction").await else {
        return;
    };
    let state = cluster.state_dir().to_owned();
    run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        STATE_SIZE,
        "tmpfs",
        state.to_str().unwrap(),
    ])
    .await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    std::fs::write(
        cluster.manifests().join("static.yaml"),
        sleeper("static", &namespace, &node),
    )
    .unwrap();
    cluster.add_agent_args(&["--eviction-hard", THRESHOLD]);
    cluster.start_agent().await;

    let critical = pod_manifest(
        "critical",
        &namespace,
        &node,
        json!({
            "automountServiceAccountToken": false,
            "priorityClassName": "system-node-critical",
            "containers": [{"name": "main", "image": "/bin/sleep", "args": ["infinity"]}],
        }),
    );
    cluster.apply(&critical.to_string()).await;
    cluster
        .apply(&sleeper("bystander", &namespace, &node))
        .await;
    for name in ["critical", "bystander"] {
        cluster
            .wait_for_pod(name, "running", |pod| pod["status"]["phase"] == "Running")
            .await;
    }
    let filler = pod_manifest(
        "filler",
        &namespace,
        &node,
        json!({
            "automountServiceAccountToken": false,
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{
                "name": "main",
                "image": "/bin/sh",
                "args": ["-c", "dd if=/dev/zero of=/tmp/data/fill bs=1M count=20 2>/dev/null; exec sleep infinity"],
                "volumeMounts": [{"name": "data", "mountPath": "/tmp/data"}],
            }],
        }),
    );
    cluster.apply(&filler.to_string()).await;

    let pod = cluster
        .wait_for_pod_within("filler", "evicted", EVICTION_DEADLINE, evicted)
        .await;
    let message = pod["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "The node was low on resource: ephemeral-storage. Threshold quantity: 6Mi, available: "
        ),
        "{message}"
    );
    assert_eq!(condition(&pod, "DisruptionTarget"), Some("True"), "{pod:#}");
    let filler_unit = cluster.unit("filler", "main");
    assert!(cluster.unit_status(&filler_unit).await.main_pid == 0);
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let fill = state.join("pods").join(uid).join("volumes");
    assert!(
        !dir_holds(&fill, "fill"),
        "the evicted pod's emptyDir is still there"
    );
    let events = cluster.get(&["events", "-n", &namespace]).await.unwrap();
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| {
            e["reason"] == "Evicted"
                && e["type"] == "Warning"
                && e["involvedObject"]["name"] == "filler"
                && e["message"] == message
        }),
        "{events:#}"
    );
    // One pod per pass: freeing the filler's emptyDir ended the pressure.
    let bystander = cluster.pod("bystander").await.unwrap();
    assert_eq!(bystander["status"]["phase"], "Running", "{bystander:#}");

    // Now something no eviction frees fills the disk.
    std::fs::write(state.join("ballast"), vec![0u8; 20 << 20]).unwrap();
    cluster
        .wait_until(EVICTION_DEADLINE, "DiskPressure on the Node", || async {
            let node = cluster.get(&["node", &node]).await?;
            (condition(&node, "DiskPressure") == Some("True")).then_some(())
        })
        .await;
    cluster
        .wait_for_pod_within("bystander", "evicted", EVICTION_DEADLINE, evicted)
        .await;
    cluster
        .wait_for_log("no pod may be evicted", 1, EVICTION_DEADLINE)
        .await;
    let critical = cluster.pod("critical").await.unwrap();
    assert_eq!(critical["status"]["phase"], "Running", "{critical:#}");
    assert_eq!(critical["spec"]["priority"], 2_000_001_000);
    let static_unit = cluster.unit(&format!("static-{node}"), "main");
    assert_ne!(cluster.unit_status(&static_unit).await.main_pid, 0);

    std::fs::remove_file(state.join("ballast")).unwrap();
    wait_for(EVICTION_DEADLINE, "DiskPressure to end", || async {
        let node = cluster.get(&["node", &node]).await?;
        (condition(&node, "DiskPressure") == Some("False")).then_some(())
    })
    .await;
    // Evicted stays evicted: nothing restarted the filler.
    assert_eq!(cluster.unit_status(&filler_unit).await.main_pid, 0);
    cluster.teardown().await;
    run(&["umount", "--lazy", state.to_str().unwrap()]).await;
}

/// Whether a file named `name` is anywhere below `dir`.
fn dir_holds(dir: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(|e| e.ok()).any(|entry| {
        let path = entry.path();
        entry.file_name() == name || (path.is_dir() && dir_holds(&path, name))
    })
}

/// `MemTotal` of this machine in KiB: a `memory.available` threshold this high is always
/// crossed, so memory eviction is exercised without using any memory.
fn mem_total_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn issue_14_memory_pressure_evicts_the_pod_above_its_request_first() {
    let Some(mut cluster) = Cluster::new("eviction_memory").await else {
        return;
    };
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let pod = |name: &str, request: &str| {
        pod_manifest(
            name,
            &namespace,
            &node,
            json!({
                "automountServiceAccountToken": false,
                "containers": [{
                    "name": "main", "image": "/bin/sleep", "args": ["infinity"],
                    "resources": {"requests": {"memory": request}},
                }],
            }),
        )
        .to_string()
    };
    // Within its request: ranked after the pod using more than it asked for.
    cluster.apply(&pod("modest", "1Gi")).await;
    cluster.apply(&pod("greedy", "1")).await;
    // A threshold this high leaves no allocatable memory, so admission (as the kubelet's)
    // would refuse both pods: they are admitted first, and the agent restarted with it
    // finds them running.
    cluster.start_agent().await;
    for name in ["modest", "greedy"] {
        cluster
            .wait_for_pod(name, "running", running_and_ready)
            .await;
    }
    cluster.kill_agent().await;
    let threshold = format!("memory.available<{}Ki", mem_total_kib());
    cluster.add_agent_args(&["--eviction-hard", &threshold]);
    cluster.start_agent().await;
    let greedy = cluster
        .wait_for_pod_within("greedy", "evicted", EVICTION_DEADLINE, evicted)
        .await;
    let modest = cluster.pod("modest").await.unwrap();
    assert!(!evicted(&modest), "{modest:#}");
    let message = greedy["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("The node was low on resource: memory. Threshold quantity: "),
        "{message}"
    );
    assert!(
        message.contains("Container main was using ")
            && message.ends_with(", request is 1, has larger consumption of memory. "),
        "{message}\n--- systemk log ---\n{}",
        cluster.log()
    );
    let node_object = cluster.get(&["node", &node]).await.unwrap();
    assert_eq!(condition(&node_object, "MemoryPressure"), Some("True"));
    // The pressure stays: the next pass takes the next pod.
    cluster
        .wait_for_pod_within("modest", "evicted", EVICTION_DEADLINE, evicted)
        .await;
    cluster.teardown().await;
}
