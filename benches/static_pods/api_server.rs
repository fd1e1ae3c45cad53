//! The project's test API server (`tests/apiserver`) as a process of its own, as a real
//! one is: the integration test binary's `serve_until_killed` entry, built by
//! `scripts/bench` with the same profile as the benchmark. It prints the kubeconfig it
//! wrote; it is killed on drop.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

/// The test that serves until killed.
const ENTRY: &str = "apiserver::kubectl_tests::serve_until_killed";
/// What it prints before the kubeconfig's path.
const KUBECONFIG_LINE: &str = "export KUBECONFIG=";

/// A running test API server.
pub struct ApiServer {
    child: Child,
    /// Its kubeconfig: plain HTTP on loopback, no authentication.
    pub kubeconfig: PathBuf,
}

impl ApiServer {
    /// Starts `test_binary`'s server, its temporary files under `dir`, and waits for its
    /// kubeconfig.
    pub fn start(test_binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(test_binary)
            .args([ENTRY, "--exact", "--ignored", "--nocapture"])
            .env("TMPDIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", test_binary.display()))?;
        let stdout = child.stdout.take().context("the API server's stdout")?;
        let mut server = Self {
            child,
            kubeconfig: PathBuf::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            if let Some(path) = line?.strip_prefix(KUBECONFIG_LINE) {
                server.kubeconfig = path.into();
                // Read on, so that no later line meets a closed pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return Ok(server);
            }
        }
        bail!(
            "{} {ENTRY} ended without a kubeconfig",
            test_binary.display()
        )
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
