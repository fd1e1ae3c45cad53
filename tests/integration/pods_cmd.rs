//! `systemk pods` against a real agent: the agent binary runs two static pods (one that
//! runs, one whose package does not exist), and `systemk pods` — a separate process that
//! reads only systemd and the state directory — shows both, as a table and as JSON.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use systemk::systemd::Systemd;
use systemk::unit::UnitName;
use tokio::process::{Child, Command};

use crate::support::{TestContext, wait_for};

/// systemd's unit directory for the administrator; private to the sandbox.
const UNIT_DIR: &str = "/etc/systemd/system";

/// The agent installs nothing for the running pod; the missing package costs an apt
/// lookup (and maybe an `apt-get update`).
const DEADLINE: Duration = Duration::from_secs(90);

/// Node name given to the agent: static pod names get `-<node>` appended.
const NODE: &str = "node";

const SYSTEMK: &str = env!("CARGO_BIN_EXE_systemk");

#[tokio::test]
async fn pods_lists_a_running_pod_and_one_whose_image_is_missing() {
    let context = TestContext::new("pods_lists_a_running_pod");
    let ns = context.namespace().to_owned();
    // Under /run: private to the sandbox and visible to units (PrivateTmp hides /tmp).
    let state = tempfile::Builder::new()
        .prefix("systemk-test.")
        .tempdir_in("/run")
        .unwrap();
    let manifests = context.workspace().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("pods.yaml"), manifest(&ns)).unwrap();
    let log = context.workspace().join("agent.log");
    let mut agent = start_agent(context.workspace(), &manifests, state.path(), &log);

    let state_dir = state.path().to_owned();
    let namespace = ns.clone();
    // In a task, so a timeout still lets the test clean up before it fails.
    let waited = tokio::spawn(async move {
        wait_for(DEADLINE, "both pods in `systemk pods`", || async {
            let table = pods(&state_dir, &[]).await?;
            let running = row(&table, &namespace, &format!("run-{NODE}"))?;
            let broken = row(&table, &namespace, &format!("broken-{NODE}"))?;
            // The pass that tried shows ErrImagePull, the wait for its retry ImagePullBackOff.
            let pulling = ["ErrImagePull", "ImagePullBackOff"].contains(&broken[3]);
            (running[2..4] == ["1/1", "Running"] && broken[2] == "0/1" && pulling).then_some(table)
        })
        .await
    })
    .await;
    let json = pods(state.path(), &["-o", "json"]).await;

    let _ = agent.kill().await;
    let left = remove_units(&ns).await;
    let state_dir = state.path().to_owned();
    drop(state);
    let after = pods(&state_dir, &[]).await.unwrap();
    let Ok(table) = waited else {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("the pods never showed as expected; agent log:\n{log}");
    };
    let json = json.unwrap();

    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    let running = row(&table, &ns, &format!("run-{NODE}")).unwrap();
    assert_eq!(running[4], "0", "{table}");
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (&list["apiVersion"], &list["kind"]),
        (&"v1".into(), &"List".into())
    );
    let items: Vec<&serde_json::Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pod| pod["metadata"]["namespace"] == ns.as_str())
        .collect();
    assert_eq!(items.len(), 2, "{json}");
    let run = items[1];
    assert_eq!(run["kind"], "Pod");
    assert_eq!(run["status"]["phase"], "Running", "{json}");
    let app = &run["status"]["containerStatuses"][0];
    assert_eq!(app["ready"], true);
    assert!(app["state"]["running"]["startedAt"].is_string(), "{json}");
    assert!(
        app["containerID"]
            .as_str()
            .unwrap()
            .starts_with("systemd://systemk."),
        "{json}"
    );
    let broken = items[0];
    assert_eq!(broken["metadata"]["name"], format!("broken-{NODE}"));
    assert_eq!(broken["status"]["phase"], "Pending");
    let waiting = &broken["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(
        waiting["reason"] == "ErrImagePull" || waiting["reason"] == "ImagePullBackOff",
        "{json}"
    );
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("systemk-no-such-package"),
        "{json}"
    );
    assert_eq!(left, 1, "the running pod had one unit; the broken pod none");
    assert!(!after.contains(&ns), "no pod of the test is left:\n{after}");
}

fn manifest(namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: run\n  namespace: {namespace}\n\
         spec:\n  containers:\n  - name: app\n    image: /bin/sleep\n    args: [infinity]\n\
         ---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n  namespace: {namespace}\n\
         spec:\n  containers:\n  - name: app\n    image: systemk-no-such-package\n"
    )
}

fn start_agent(workspace: &Path, manifests: &Path, state: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(SYSTEMK)
        .arg("--pod-manifest-path")
        .arg(manifests)
        .arg("--state-dir")
        .arg(state)
        .args(["--unit-dir", UNIT_DIR, "--nodename", NODE])
        .arg("--cache-dir")
        .arg(workspace.join("cache"))
        // No kubelet API: the network, and so port 10250, is the host's.
        .args(["--kubelet-port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start the systemk agent")
}

/// `systemk pods ARGS` with the test's state directory; `None` when it fails.
async fn pods(state: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new(SYSTEMK)
        .arg("pods")
        .arg("--state-dir")
        .arg(state)
        .args(["--unit-dir", UNIT_DIR])
        .args(args)
        .output()
        .await
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "systemk pods failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// The cells of the table row of `namespace`/`name`.
fn row<'a>(table: &'a str, namespace: &str, name: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.len() >= 6 && cells[0] == namespace && cells[1] == name)
}

/// Stops and removes every unit of `namespace`; returns how many there were.
async fn remove_units(namespace: &str) -> usize {
    let systemd = Systemd::connect().await.unwrap();
    let dir = PathBuf::from(UNIT_DIR);
    let names: Vec<UnitName> = systemd
        .list_managed(&dir)
        .await
        .unwrap()
        .into_iter()
        .filter(|unit| unit.meta.namespace == namespace)
        .map(|unit| unit.status.name)
        .collect();
    systemd.remove(&dir, &names).await.unwrap();
    names.len()
}
