//! The exec phase (issue 13, point 9): `kubectl exec <pod> -- true` through the project's
//! test API server (`tests/apiserver`, a process of its own: `api_server.rs`) to
//! systemk running as a node of it, against two floors on the same machine:
//! `systemd-run --wait --pipe --quiet true` (a command run in a fresh unit, its status
//! back) and `kubectl get pod <pod> -o name` through the same API server (kubectl's own
//! start-up and one request, which exec pays too). Every figure is the wall clock of
//! the whole process, from spawn to reaped, after one untimed warm-up run.

use std::ffi::{OsStr, OsString};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::json;

use crate::agent::Agent;
use crate::api_server::ApiServer;
use crate::percentile::percentile;
use crate::{NAMESPACE, SYSTEMK, UNIT_DIR};

/// The node systemk registers as.
pub(crate) const NODE: &str = "systemk-bench";
/// The pod the commands run in (`/bin/sleep infinity`).
const POD: &str = "exec-target";
/// The agent's first sync, the pod running, the first exec answering: each within this.
const DEADLINE: Duration = Duration::from_secs(60);

/// The exec round trip and its floors, in milliseconds.
#[derive(Debug, Serialize)]
pub struct ExecFigures {
    /// Timed runs of each of the three commands.
    pub exec_runs: usize,
    /// `kubectl exec <pod> -- true` through the test API server, median.
    pub exec_p50_ms: f64,
    /// The same, 99th percentile.
    pub exec_p99_ms: f64,
    /// `systemd-run --wait --pipe --quiet true`, median.
    pub exec_floor_p50_ms: f64,
    /// The same, 99th percentile.
    pub exec_floor_p99_ms: f64,
    /// `kubectl get pod <pod> -o name` through the same API server, median.
    pub kubectl_floor_p50_ms: f64,
    /// The same, 99th percentile.
    pub kubectl_floor_p99_ms: f64,
}

/// Runs the phase with its own agent (log: `log`) and API server (from `test_binary`),
/// state under `work`; the agent stops before the server. Leaves the pod's unit for the
/// benchmark's cleanup.
pub fn measure(
    work: &Path,
    test_binary: &Path,
    runs: usize,
    log: &Path,
) -> anyhow::Result<ExecFigures> {
    let work = work.join("exec");
    std::fs::create_dir(&work)?;
    let server = ApiServer::start(test_binary, &work)?;
    let kubeconfig = server.kubeconfig.as_path();
    let kubectl = Kubectl::new(&work, kubeconfig);
    let agent = start_agent(&work, kubeconfig, log)?;
    agent.wait_synced(DEADLINE)?;
    kubectl.run(&["create", "namespace", NAMESPACE])?;
    let manifest = work.join("pod.json");
    std::fs::write(&manifest, pod_manifest().to_string())?;
    kubectl.run(&[OsStr::new("apply"), "-f".as_ref(), manifest.as_os_str()])?;
    let timeout = format!("--timeout={}s", DEADLINE.as_secs());
    let pod = format!("pod/{POD}");
    kubectl.run(&[
        "wait",
        "--for=condition=Ready",
        &pod,
        "-n",
        NAMESPACE,
        &timeout,
    ])?;

    let exec = || kubectl.command(&["exec", POD, "-n", NAMESPACE, "--", "true"]);
    let get = || kubectl.command(&["get", "pod", POD, "-n", NAMESPACE, "-o", "name"]);
    let floor = || {
        let mut command = Command::new("systemd-run");
        command.args(["--wait", "--pipe", "--quiet", "true"]);
        command
    };
    // The kubelet API serves exec a moment after the pod reads Ready.
    let started = Instant::now();
    while let Err(error) = run(exec()) {
        if started.elapsed() > DEADLINE {
            return Err(error.context("the first kubectl exec"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("exec: {runs} runs each of kubectl exec, systemd-run, kubectl get");
    let exec_ms = timed(exec, runs)?;
    let floor_ms = timed(floor, runs)?;
    let get_ms = timed(get, runs)?;
    Ok(ExecFigures {
        exec_runs: runs,
        exec_p50_ms: percentile(&exec_ms, 50.0),
        exec_p99_ms: percentile(&exec_ms, 99.0),
        exec_floor_p50_ms: percentile(&floor_ms, 50.0),
        exec_floor_p99_ms: percentile(&floor_ms, 99.0),
        kubectl_floor_p50_ms: percentile(&get_ms, 50.0),
        kubectl_floor_p99_ms: percentile(&get_ms, 99.0),
    })
}

/// systemk as a node of the API server, with the cluster tests' flags; its kubelet API
/// on a loopback port free a moment ago (the node's InternalIP is 127.0.0.1).
pub(crate) fn start_agent(work: &Path, kubeconfig: &Path, log: &Path) -> anyhow::Result<Agent> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let state = work.join("state");
    let manifests = work.join("manifests");
    std::fs::create_dir(&manifests)?;
    let flags: [(&str, OsString); 10] = [
        ("--kubeconfig", kubeconfig.into()),
        ("--nodename", NODE.into()),
        ("--node-ip", "127.0.0.1".into()),
        ("--pod-manifest-path", manifests.into()),
        ("--state-dir", state.clone().into()),
        ("--runtime-dir", state.join("run").into()),
        ("--cache-dir", state.join("cache").into()),
        ("--unit-dir", UNIT_DIR.into()),
        ("--address", "127.0.0.1".into()),
        ("--kubelet-port", port.to_string().into()),
    ];
    let args: Vec<&OsStr> = flags
        .iter()
        .flat_map(|(flag, value)| [OsStr::new(flag), value.as_os_str()])
        .collect();
    Agent::start(SYSTEMK, &args, log)
}

/// The pod: bound to the node, tolerating its taint, no service account token volume.
fn pod_manifest() -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": NAMESPACE},
        "spec": {
            "nodeName": NODE,
            "automountServiceAccountToken": false,
            "tolerations": [{
                "key": "virtual-kubelet.io/provider",
                "operator": "Exists",
                "effect": "NoSchedule",
            }],
            "containers": [{"name": "main", "image": "/bin/sleep", "args": ["infinity"]}],
        },
    })
}

/// kubectl against the API server: `$SYSTEMK_KUBECTL` (as the integration tests) or
/// `kubectl` from `PATH`, with its caches and `HOME` in the phase's directory.
struct Kubectl {
    program: OsString,
    args: Vec<OsString>,
    home: OsString,
}

impl Kubectl {
    fn new(work: &Path, kubeconfig: &Path) -> Self {
        let program = std::env::var_os("SYSTEMK_KUBECTL").unwrap_or_else(|| "kubectl".into());
        let args = vec![
            "--kubeconfig".into(),
            kubeconfig.into(),
            "--cache-dir".into(),
            work.join("kubectl-cache").into(),
        ];
        Self {
            program,
            args,
            home: work.into(),
        }
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG");
        command
    }

    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> anyhow::Result<()> {
        run(self.command(args))
    }
}

/// Runs `command` (stdin empty, output captured): an error saying what it printed unless
/// it succeeded.
fn run(mut command: Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?} (not installed? scripts/install-deps)"))?;
    if !output.status.success() {
        bail!(
            "{command:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// One untimed run, then `runs` timed ones: each run's wall clock in milliseconds.
fn timed(command: impl Fn() -> Command, runs: usize) -> anyhow::Result<Vec<f64>> {
    run(command())?;
    (0..runs)
        .map(|_| {
            let command = command();
            let start = Instant::now();
            run(command)?;
            Ok(start.elapsed().as_secs_f64() * 1000.0)
        })
        .collect()
}
