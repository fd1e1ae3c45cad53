//! A cluster for one test: the test API server, the real `kubectl` (a test without one is
//! skipped: [`Cluster::new`] is `None`), and the `systemk`
//! binary under test running as a node of it inside the sandbox (state under /run, units
//! in the sandbox's private `/etc/systemd/system`). Teardown stops the agent and removes
//! every unit of the test's namespace.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use systemk::systemd::{Systemd, UnitStatus};
use systemk::unit::UnitName;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::apiserver::{Config, TestApiServer};
use crate::support::{TestContext, free_port, kubectl_or_skip, poll_until, wait_for};

/// The sandbox's unit directory (private to it).
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// How long kubectl may take for one call.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);

/// One test's cluster and node.
pub struct Cluster {
    /// The test's names and workspace.
    pub context: TestContext,
    /// The API server.
    pub server: TestApiServer,
    /// The API server's URL, as the kubeconfig names it.
    url: String,
    /// kubeconfig for systemk and kubectl.
    kubeconfig: PathBuf,
    /// The kubectl program.
    kubectl: PathBuf,
    /// systemk's state, under /run (units have PrivateTmp, so not under /tmp).
    state: TempDir,
    /// Static pod manifests.
    manifests: PathBuf,
    /// The running agent.
    agent: Option<Child>,
    /// The port of the agent's kubelet API, on 127.0.0.1 (the node's InternalIP): free
    /// when the test started, since the network and so port 10250 are the host's.
    kubelet_port: u16,
    /// More flags for the agents this cluster starts.
    agent_args: Vec<String>,
    /// TLS bootstrap: agents get `--bootstrap-kubeconfig` with this file instead of the
    /// admin `--kubeconfig`.
    bootstrap_kubeconfig: Option<PathBuf>,
}

/// Where an agent keeps its things, and which node it is.
pub(super) struct AgentPlace<'a> {
    pub node: &'a str,
    pub state: &'a Path,
    pub manifests: &'a Path,
    pub unit_dir: &'a Path,
    pub kubelet_port: u16,
    pub log: &'a Path,
}

impl Cluster {
    /// A fresh API server with the test's namespace; no agent yet. `None` when there is no
    /// kubectl: the skip is reported, and the test returns
    /// (`let Some(mut cluster) = Cluster::new("name").await else { return };`).
    pub async fn new(test: &str) -> Option<Self> {
        Self::with_config(test, Config::default()).await
    }

    /// Like [`Cluster::new`], with the API server's settings given.
    pub async fn with_config(test: &str, config: Config) -> Option<Self> {
        let context = TestContext::new(test);
        let kubectl = kubectl_or_skip(test)?;
        let (server, url) = TestApiServer::start_with(config).await;
        let kubeconfig = server.write_kubeconfig(context.workspace());
        let state = tempfile::Builder::new()
            .prefix("systemk-test.")
            .tempdir_in("/run")
            .expect("create a state dir under /run");
        let manifests = context.workspace().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        let cluster = Self {
            context,
            server,
            url,
            kubeconfig,
            kubectl,
            state,
            manifests,
            agent: None,
            kubelet_port: free_port(),
            agent_args: Vec::new(),
            bootstrap_kubeconfig: None,
        };
        cluster
            .kubectl(&["create", "namespace", cluster.namespace()])
            .await;
        Some(cluster)
    }

    /// The API server's URL, e.g. `https://127.0.0.1:43121`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The test's namespace.
    pub fn namespace(&self) -> &str {
        self.context.namespace()
    }

    /// The node's name: the namespace, unique to the test.
    pub fn node(&self) -> &str {
        self.context.namespace()
    }

    /// The kubectl program the tests use.
    pub fn kubectl_program(&self) -> &Path {
        &self.kubectl
    }

    /// The port of the agent's kubelet API, the one the node advertises.
    pub fn kubelet_port(&self) -> u16 {
        self.kubelet_port
    }

    /// systemk's state directory.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// systemk's runtime directory (`--runtime-dir`, on the sandbox's tmpfs `/run`).
    pub fn runtime_dir(&self) -> PathBuf {
        self.state.path().join("run")
    }

    /// Where static pod manifests go.
    pub fn manifests(&self) -> &Path {
        &self.manifests
    }

    fn log_path(&self) -> PathBuf {
        self.context.workspace().join("systemk.log")
    }

    /// Adds `args` to the flags of the agents started from now on.
    pub fn add_agent_args(&mut self, args: &[&str]) {
        self.agent_args
            .extend(args.iter().map(|arg| (*arg).to_owned()));
    }

    /// Agents started from now on join with TLS bootstrap: `--bootstrap-kubeconfig
    /// <bootstrap>` and no `--kubeconfig` (systemk writes `<state dir>/kubeconfig`).
    pub fn use_bootstrap_kubeconfig(&mut self, bootstrap: PathBuf) {
        self.bootstrap_kubeconfig = Some(bootstrap);
    }

    /// The running agent's process id.
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().and_then(Child::id)
    }

    /// Whether the agent still runs (it has not exited).
    pub fn agent_running(&mut self) -> bool {
        self.agent
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Starts `systemk` as this cluster's node.
    pub async fn start_agent(&mut self) {
        assert!(self.agent.is_none(), "the agent already runs");
        let child = self.spawn_agent(&AgentPlace {
            node: self.node(),
            state: self.state.path(),
            manifests: &self.manifests,
            unit_dir: Path::new(UNIT_DIR),
            kubelet_port: self.kubelet_port,
            log: &self.log_path(),
        });
        self.agent = Some(child);
    }

    /// Starts a `systemk` binary as a node of this cluster, where `place` says.
    pub(super) fn spawn_agent(&self, place: &AgentPlace<'_>) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(place.log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_systemk"))
            .args(self.node_flags(place))
            .env("RUST_LOG", "info,systemk=debug")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start systemk")
    }

    /// The flags of an agent of this cluster placed at `place`.
    fn node_flags(&self, place: &AgentPlace<'_>) -> Vec<std::ffi::OsString> {
        let identity = match &self.bootstrap_kubeconfig {
            Some(bootstrap) => ["--bootstrap-kubeconfig".into(), bootstrap.clone()],
            None => ["--kubeconfig".into(), self.kubeconfig.clone()],
        };
        let mut flags: Vec<std::ffi::OsString> = identity.map(Into::into).to_vec();
        let pairs: [(&str, std::ffi::OsString); 9] = [
            ("--nodename", place.node.into()),
            ("--node-ip", "127.0.0.1".into()),
            ("--pod-manifest-path", place.manifests.into()),
            ("--state-dir", place.state.into()),
            ("--runtime-dir", place.state.join("run").into()),
            ("--cache-dir", place.state.join("cache").into()),
            ("--unit-dir", place.unit_dir.into()),
            ("--address", "127.0.0.1".into()),
            ("--kubelet-port", place.kubelet_port.to_string().into()),
        ];
        for (flag, value) in pairs {
            flags.push(flag.into());
            flags.push(value);
        }
        flags.extend(self.agent_args.iter().map(Into::into));
        flags
    }

    /// Runs `systemk doctor` with this node's flags (the agent's) and `extra`, without
    /// the host's `/etc/default/systemk`: its exit code, stdout and stderr.
    pub async fn doctor(&self, extra: &[&str]) -> (Option<i32>, String, String) {
        let place = AgentPlace {
            node: self.node(),
            state: self.state.path(),
            manifests: &self.manifests,
            unit_dir: Path::new(UNIT_DIR),
            kubelet_port: self.kubelet_port,
            log: &self.log_path(),
        };
        let output = Command::new(env!("CARGO_BIN_EXE_systemk"))
            .arg("doctor")
            .args(self.node_flags(&place))
            .args(["--env-file", "/nonexistent/systemk-default"])
            .args(extra)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run systemk doctor");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Kills the agent with SIGKILL (no chance to clean anything up).
    pub async fn kill_agent(&mut self) {
        if let Some(mut child) = self.agent.take() {
            child.kill().await.expect("kill systemk");
        }
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits until the agent logged `needle` at least `count` times.
    pub async fn wait_for_log(&self, needle: &str, count: usize, deadline: Duration) {
        let what = format!("systemk to log {needle:?} {count} times");
        wait_for(deadline, &what, || async {
            (self.log().matches(needle).count() >= count).then_some(())
        })
        .await;
    }

    /// Runs kubectl and returns stdout; fails the test (with the agent's log) on error.
    pub async fn kubectl(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.try_kubectl(args).await;
        assert!(
            ok,
            "kubectl {args:?} failed:\n{stdout}\n{stderr}\n--- systemk log ---\n{}",
            self.log()
        );
        stdout
    }

    /// The command line `run_kubectl` starts kubectl with (before its arguments), and the
    /// `HOME` it gives it: for tests that run kubectl under another program (`script`).
    pub fn kubectl_command(&self) -> (Vec<String>, &Path) {
        let home = self.context.workspace();
        let argv = [
            self.kubectl.as_os_str(),
            "--kubeconfig".as_ref(),
            self.kubeconfig.as_os_str(),
            "--cache-dir".as_ref(),
            home.join("kubectl-cache").as_os_str(),
        ]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
        (argv, home)
    }

    /// Runs kubectl: (success, stdout, stderr).
    pub async fn try_kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.run_kubectl(args, &[], None).await;
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs kubectl with the extra environment `env` and `input` on its stdin (else
    /// `/dev/null`).
    pub async fn run_kubectl(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        input: Option<&[u8]>,
    ) -> std::process::Output {
        let home = self.context.workspace();
        let mut command = Command::new(&self.kubectl);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(home.join("kubectl-cache"))
            .args(args)
            .env("HOME", home)
            .envs(env.iter().copied())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let run = async {
            let mut child = command.spawn().expect("run kubectl");
            if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
                use tokio::io::AsyncWriteExt as _;
                stdin.write_all(input).await.expect("kubectl's stdin");
            }
            child.wait_with_output().await.expect("kubectl's output")
        };
        tokio::time::timeout(KUBECTL_TIMEOUT, run)
            .await
            .expect("kubectl finished in time")
    }

    /// `kubectl apply` of a manifest given as text.
    pub async fn apply(&self, manifest: &str) {
        let path = self.context.workspace().join("apply.yaml");
        std::fs::write(&path, manifest).unwrap();
        self.kubectl(&["apply", "-f", path.to_str().unwrap()]).await;
    }

    /// The object as JSON, or `None` when it does not exist.
    pub async fn get(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["get", "-o", "json"];
        all.extend_from_slice(args);
        let (ok, stdout, stderr) = self.try_kubectl(&all).await;
        if !ok {
            assert!(stderr.contains("NotFound"), "kubectl get failed: {stderr}");
            return None;
        }
        Some(serde_json::from_str(&stdout).expect("kubectl printed JSON"))
    }

    /// The pod `name` of the test's namespace.
    pub async fn pod(&self, name: &str) -> Option<Value> {
        self.get(&["pod", name, "-n", self.namespace()]).await
    }

    /// Waits until `check` holds for the pod; returns the pod.
    pub async fn wait_for_pod(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for_pod_within(name, what, Duration::from_secs(60), check)
            .await
    }

    /// Waits up to `deadline` (e.g. long enough for an apt install) until `check` holds
    /// for the pod; returns the pod.
    pub async fn wait_for_pod_within(
        &self,
        name: &str,
        what: &str,
        deadline: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let what = format!("pod {name}: {what}");
        let found = poll_until(deadline, || async {
            self.pod(name).await.filter(|pod| check(pod))
        })
        .await;
        match found {
            Some(pod) => pod,
            None => panic!(
                "timed out waiting for {what}; pod: {:#?}\n--- systemk log ---\n{}",
                self.pod(name).await,
                self.log()
            ),
        }
    }

    /// Polls `condition` until it yields a value; past `deadline` the test fails with
    /// `what` and the agent's log.
    pub async fn wait_until<T, F, Fut>(&self, deadline: Duration, what: &str, condition: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match poll_until(deadline, condition).await {
            Some(value) => value,
            None => panic!(
                "timed out after {deadline:?} waiting for {what}\n--- systemk log ---\n{}",
                self.log()
            ),
        }
    }

    /// The unit of `container` of pod `pod` in the test's namespace.
    pub fn unit(&self, pod: &str, container: &str) -> UnitName {
        self.context.unit_name(pod, container)
    }

    /// What systemd says about a unit now.
    pub async fn unit_status(&self, name: &UnitName) -> UnitStatus {
        let systemd = Systemd::connect().await.expect("connect to systemd");
        systemd.status(name).await.expect("read unit status")
    }

    /// Stops the agent and removes every unit of the test's namespace and its state.
    pub async fn teardown(mut self) {
        self.kill_agent().await;
        // Shown with --nocapture, and by the harness when the test failed after this.
        println!("--- systemk log ---\n{}", self.log());
        remove_units(Path::new(UNIT_DIR), self.namespace()).await;
    }
}

/// Stops and removes the units of `namespace` in `unit_dir`.
pub(super) async fn remove_units(unit_dir: &Path, namespace: &str) {
    let systemd = Systemd::connect().await.expect("connect to systemd");
    let prefix = format!("systemk.{namespace}.");
    let ours: Vec<UnitName> = systemd
        .list_managed(unit_dir)
        .await
        .expect("list units")
        .into_iter()
        .map(|unit| unit.status.name)
        .filter(|name| name.as_str().starts_with(&prefix))
        .collect();
    for name in &ours {
        systemd
            .stop(name, Duration::from_secs(10))
            .await
            .expect("stop a test unit");
    }
    systemd
        .remove(unit_dir, &ours)
        .await
        .expect("remove the test units");
}

/// A pod `name` in `namespace` bound to `node`, tolerating the systemk taint, with a grace
/// period of 5 s and the given spec fields (JSON, which kubectl and manifests read as YAML).
pub fn pod_manifest(name: &str, namespace: &str, node: &str, spec: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 5,
            "tolerations": [{
                "key": "virtual-kubelet.io/provider",
                "operator": "Exists",
                "effect": "NoSchedule",
            }],
        },
    });
    for (field, value) in spec.as_object().expect("spec fields") {
        pod["spec"][field] = value.clone();
    }
    pod
}

/// A pod running `/bin/sleep infinity` on `node`, without the service account token
/// volume (the tests of API volumes are in `cluster_volumes.rs`).
pub fn sleeper(name: &str, namespace: &str, node: &str) -> String {
    let spec = json!({
        "automountServiceAccountToken": false,
        "containers": [{"name": "main", "image": "/bin/sleep", "args": ["infinity"]}],
    });
    pod_manifest(name, namespace, node, spec).to_string()
}

/// The status of condition `type_` of an object, e.g. `Ready` → `True`.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
}

/// Whether the pod is Running and Ready.
pub fn running_and_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && condition(pod, "Ready") == Some("True")
}

/// Runs `argv` as root in the mount namespace of process `pid`, so it sees the files as
/// that process (a container's main process) sees them: (success, stdout, stderr).
pub async fn in_mount_namespace(pid: u32, argv: &[&str]) -> (bool, String, String) {
    let output = Command::new("/usr/bin/nsenter")
        .args(["-t", &pid.to_string(), "-m", "--"])
        .args(argv)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run nsenter");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
