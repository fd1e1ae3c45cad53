//! A second node of a test's cluster: another `systemk` agent against the same API server,
//! with its own state and its own unit directory (`/run/systemd/system`, which systemd
//! also loads from), so neither agent adopts the other's units.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use tokio::process::Child;

use super::harness::{AgentPlace, Cluster, remove_units};
use crate::support::free_port;

/// Where the other node's units go: on systemd's search path, apart from the first node's.
const OTHER_UNIT_DIR: &str = "/run/systemd/system";

/// A running second node.
pub struct OtherNode {
    name: String,
    namespace: String,
    state: TempDir,
    agent: Child,
}

impl Cluster {
    /// Starts a second agent as node `<namespace>-other`.
    pub fn start_other_node(&self) -> OtherNode {
        let name = format!("{}-other", self.namespace());
        let state = tempfile::Builder::new()
            .prefix("systemk-test.")
            .tempdir_in("/run")
            .expect("create a state dir under /run");
        let manifests = state.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        std::fs::create_dir_all(OTHER_UNIT_DIR).unwrap();
        let agent = self.spawn_agent(&AgentPlace {
            node: &name,
            state: state.path(),
            manifests: &manifests,
            unit_dir: Path::new(OTHER_UNIT_DIR),
            kubelet_port: free_port(),
            log: &state.path().join("systemk.log"),
        });
        OtherNode {
            name,
            namespace: self.namespace().to_owned(),
            state,
            agent,
        }
    }
}

impl OtherNode {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory its units are written to.
    pub fn unit_dir(&self) -> PathBuf {
        PathBuf::from(OTHER_UNIT_DIR)
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("systemk.log")).unwrap_or_default()
    }

    /// Stops the agent and removes the units of the test's namespace it wrote.
    pub async fn teardown(mut self) {
        self.agent.kill().await.expect("kill systemk");
        println!("--- the other node's systemk log ---\n{}", self.log());
        remove_units(Path::new(OTHER_UNIT_DIR), &self.namespace).await;
    }
}
