//! The static-pod tests' world: the real `systemk` binary run as a child process inside the
//! sandbox, with its manifest, state and cache directories in a fresh directory under
//! `/run` (units have `PrivateTmp=yes`, so hostPath sources under `/tmp` would not be the
//! host's), and ways to look at what it did — through systemd, the unit directory and the
//! status files `<state>/pods/<uid>/pod.json`.
//!
//! The agent adopts every `systemk.*` unit in the unit directory and removes those not in
//! its manifests, so each test gives its pods a namespace of its own and removes its units
//! at the end ([`Machine::clean_up`]); the tests run one at a time.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use systemk::systemd::{Systemd, UnitStatus};
use systemk::unit::{SliceName, UnitName};
use tempfile::TempDir;

use crate::support::{TestContext, free_port, is_loaded, wait_for};

/// The node name the agent runs as; static pod names get `-<node>` appended.
pub const NODE: &str = "itest";

/// systemd's unit directory for the administrator; private to the sandbox.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// Where `WantedBy=multi-user.target` puts the enable links.
pub const WANTS_DIR: &str = "/etc/systemd/system/multi-user.target.wants";

/// How long an agent may take to exit after SIGTERM.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// How long removing a test's leftover units may take.
const CLEAN_UP_DEADLINE: Duration = Duration::from_secs(30);

/// One test's manifest directory, state and agent runs.
pub struct Machine {
    /// Removed (with every pod directory in it) when the test ends.
    root: TempDir,
    namespace: String,
    /// The test's own view of systemd.
    pub systemd: Systemd,
}

impl Machine {
    /// A fresh machine for the test of `context`, with empty directories.
    pub async fn new(context: &TestContext) -> Self {
        let root = tempfile::Builder::new()
            .prefix("systemk-itest-")
            .tempdir_in("/run")
            .expect("create the test directory under /run");
        for dir in ["manifests", "state", "run", "cache", "host"] {
            fs::create_dir(root.path().join(dir)).unwrap();
        }
        Self {
            root,
            namespace: context.namespace().to_owned(),
            systemd: Systemd::connect()
                .await
                .expect("connect to the sandbox's systemd"),
        }
    }

    /// A directory for hostPath volumes, visible to units.
    pub fn host_dir(&self) -> PathBuf {
        self.root.path().join("host")
    }

    /// The agent's `--state-dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// The agent's `--runtime-dir` (on the sandbox's tmpfs `/run`).
    pub fn runtime_dir(&self) -> PathBuf {
        self.root.path().join("run")
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("agent.log")
    }

    /// Writes a manifest the way an editor should: to a hidden file, then renamed, so the
    /// agent never reads half of it. `{ns}` in `yaml` becomes the test's namespace.
    pub fn write_manifest(&self, file: &str, yaml: &str) {
        let dir = self.root.path().join("manifests");
        let temp = dir.join(format!(".{file}.tmp"));
        fs::write(&temp, yaml.replace("{ns}", &self.namespace)).unwrap();
        fs::rename(&temp, dir.join(file)).unwrap();
    }

    /// Renames a manifest to another file of the directory, in one step.
    pub fn move_manifest(&self, from: &str, to: &str) {
        let dir = self.root.path().join("manifests");
        fs::rename(dir.join(from), dir.join(to)).unwrap();
    }

    /// Removes a manifest.
    pub fn remove_manifest(&self, file: &str) {
        fs::remove_file(self.root.path().join("manifests").join(file)).unwrap();
    }

    /// Starts `systemk` on this machine's directories, without the kubelet API (the
    /// network, and so port 10250, is the host's); its log goes to one file for all runs
    /// of the test.
    pub fn start_agent(&self) -> Agent {
        self.start_agent_with(&["--kubelet-port", "0"])
    }

    /// Starts `systemk` as [`Machine::start_agent`] does, with `extra` arguments.
    pub fn start_agent_with(&self, extra: &[&str]) -> Agent {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let dir = |name: &str| self.root.path().join(name);
        let child = Command::new(env!("CARGO_BIN_EXE_systemk"))
            .arg("--pod-manifest-path")
            .arg(dir("manifests"))
            .arg("--state-dir")
            .arg(dir("state"))
            .arg("--runtime-dir")
            .arg(dir("run"))
            .args(["--unit-dir", UNIT_DIR, "--nodename", NODE])
            .arg("--cache-dir")
            .arg(dir("cache"))
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the systemk binary");
        Agent { child: Some(child) }
    }

    /// The key of the kubelet API's self-signed serving certificate, which the agent
    /// makes in its state directory.
    pub fn kubelet_key(&self) -> PathBuf {
        self.state_dir().join("pki/kubelet.key")
    }

    /// Starts `systemk` with its kubelet API on a free loopback port, as in production
    /// (no client CA, so every request is refused), and waits until it has written
    /// [`Machine::kubelet_key`].
    pub async fn start_serving_agent(&self, deadline: Duration) -> Agent {
        let port = free_port().to_string();
        let agent = self.start_agent_with(&["--kubelet-port", &port, "--address", "127.0.0.1"]);
        let key = self.kubelet_key();
        wait_for(deadline, "the kubelet API's key", || async {
            key.is_file().then_some(())
        })
        .await;
        agent
    }

    /// Everything the agents of this test logged.
    pub fn log(&self) -> String {
        let bytes = fs::read(self.log_path()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the log, from byte `since` on, has `count` lines containing every one
    /// of `parts`.
    pub async fn wait_for_log(
        &self,
        deadline: Duration,
        since: usize,
        count: usize,
        parts: &[&str],
    ) {
        let what = format!("{count} log line(s) with {parts:?}");
        wait_for(deadline, &what, || async {
            let log = self.log();
            let lines = log
                .get(since..)
                .unwrap_or_default()
                .lines()
                .filter(|line| parts.iter().all(|part| line.contains(part)))
                .count();
            (lines >= count).then_some(())
        })
        .await;
    }

    /// The name of the static pod the manifest calls `pod`.
    pub fn pod_name(pod: &str) -> String {
        format!("{pod}-{NODE}")
    }

    /// The unit of `container` in the static pod the manifest calls `pod`.
    pub fn unit(&self, pod: &str, container: &str) -> UnitName {
        UnitName::for_container(&self.namespace, &Self::pod_name(pod), container).unwrap()
    }

    /// What systemd reports about a unit now.
    pub async fn status(&self, unit: &UnitName) -> UnitStatus {
        self.systemd.status(unit).await.unwrap()
    }

    /// Waits until the unit's main process runs and returns its PID.
    pub async fn wait_running(&self, deadline: Duration, unit: &UnitName) -> u32 {
        let what = format!("{unit} to run");
        wait_for(deadline, &what, || async {
            let status = self.status(unit).await;
            let running = status.main_pid != 0 && status.sub_state == "running";
            running.then_some(status.main_pid)
        })
        .await
    }

    /// Waits until `condition` holds for the unit's status and returns it.
    pub async fn wait_unit(
        &self,
        deadline: Duration,
        unit: &UnitName,
        what: &str,
        condition: impl Fn(&UnitStatus) -> bool,
    ) -> UnitStatus {
        wait_for(deadline, &format!("{unit}: {what}"), || async {
            let status = self.status(unit).await;
            condition(&status).then_some(status)
        })
        .await
    }

    /// The pod's directory (`<state>/pods/<uid>`) and its last saved pod with status.
    pub fn pod(&self, pod: &str) -> Option<(PathBuf, Pod)> {
        let name = Self::pod_name(pod);
        let entries = fs::read_dir(self.state_dir().join("pods")).ok()?;
        entries.flatten().find_map(|entry| {
            let text = fs::read_to_string(entry.path().join("pod.json")).ok()?;
            let saved: Pod = serde_json::from_str(&text).ok()?;
            let meta = &saved.metadata;
            (meta.name.as_deref() == Some(name.as_str())
                && meta.namespace.as_deref() == Some(self.namespace.as_str()))
            .then(|| (entry.path(), saved))
        })
    }

    /// Waits until the pod has saved a status, and returns its directory.
    pub async fn wait_pod_dir(&self, deadline: Duration, pod: &str) -> PathBuf {
        let what = format!("pod {pod} to save its status");
        wait_for(deadline, &what, || async {
            self.pod(pod).map(|(dir, _)| dir)
        })
        .await
    }

    /// Waits until the pod's saved status satisfies `condition`, and returns the pod.
    pub async fn wait_pod(
        &self,
        deadline: Duration,
        pod: &str,
        what: &str,
        condition: impl Fn(&Pod) -> bool,
    ) -> Pod {
        wait_for(deadline, &format!("pod {pod}: {what}"), || async {
            self.pod(pod)
                .map(|(_, saved)| saved)
                .filter(|saved| condition(saved))
        })
        .await
    }

    /// Waits until container `name` of the pod has left `ContainerCreating` (it runs, has
    /// run, or waits for another reason) and returns its state's reason (`Running` or
    /// `Terminated` when it has no waiting reason) and message.
    pub async fn wait_settled(
        &self,
        deadline: Duration,
        pod: &str,
        name: &str,
    ) -> (String, String) {
        let what = format!("pod {pod}: container {name} to run or be refused");
        wait_for(deadline, &what, || async {
            let (_, saved) = self.pod(pod)?;
            let state = container(&saved, name)?.state.clone()?;
            if let Some(waiting) = state.waiting {
                let reason = waiting.reason.unwrap_or_default();
                (reason != "ContainerCreating")
                    .then(|| (reason, waiting.message.unwrap_or_default()))
            } else if state.running.is_some() {
                Some(("Running".to_owned(), String::new()))
            } else {
                let terminated = state.terminated?;
                Some((
                    "Terminated".to_owned(),
                    terminated.message.unwrap_or_default(),
                ))
            }
        })
        .await
    }

    /// Whether the unit's file is gone and systemd no longer has it loaded.
    pub async fn is_gone(&self, unit: &UnitName) -> bool {
        !Path::new(UNIT_DIR).join(unit.as_str()).exists() && !is_loaded(unit).await
    }

    /// Stops and removes every unit of this test's namespace and its pods' slices. Call
    /// it after the agent is stopped, at the end of every test.
    pub async fn clean_up(&self) {
        let (units, uids): (Vec<UnitName>, Vec<String>) = self
            .systemd
            .list_managed(Path::new(UNIT_DIR))
            .await
            .unwrap()
            .into_iter()
            .filter(|unit| unit.meta.namespace == self.namespace)
            .map(|unit| (unit.status.name, unit.meta.pod_uid))
            .unzip();
        if !units.is_empty() {
            tokio::time::timeout(
                CLEAN_UP_DEADLINE,
                self.systemd.remove(Path::new(UNIT_DIR), &units),
            )
            .await
            .expect("removing the test's units timed out")
            .unwrap();
        }
        let slices: Vec<SliceName> = uids
            .iter()
            .filter_map(|uid| SliceName::all_for_pod(uid).ok())
            .flatten()
            .collect();
        self.systemd
            .remove_slices(Path::new(UNIT_DIR), &slices)
            .await
            .unwrap();
    }
}

impl Drop for Machine {
    /// A failing test shows what the agent logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- systemk log ---\n{}--- end of log ---", self.log());
        }
    }
}

/// A running `systemk`. Dropping it SIGKILLs it, so a failing test leaves no agent behind.
pub struct Agent {
    child: Option<Child>,
}

impl Agent {
    /// The agent's process id (in the sandbox's PID namespace, which units share).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `kill -9`: the agent dies at once, without any chance to clean up.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the agent to exit; it must exit successfully.
    pub async fn terminate(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), "-TERM");
        let status = wait_for(EXIT_DEADLINE, "systemk to exit after SIGTERM", || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        })
        .await;
        assert!(
            status.success(),
            "systemk exited with {status} after SIGTERM"
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// The status of the (init or app) container `name` in a saved pod, if it has one.
pub fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|container| container.name == name)
}

/// The pod's phase, empty when it has none.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .unwrap_or_default()
}

/// The waiting reason of a container, if it waits.
pub fn waiting_reason<'a>(pod: &'a Pod, name: &str) -> Option<&'a str> {
    container(pod, name)?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .as_deref()
}

/// `systemctl show -p <properties> <unit>` as `(key, value)` pairs.
pub fn systemctl_show(unit: &UnitName, properties: &str) -> Vec<(String, String)> {
    let output = Command::new("systemctl")
        .args(["show", "-p", properties, unit.as_str()])
        .output()
        .unwrap();
    assert!(output.status.success(), "systemctl show failed: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}
