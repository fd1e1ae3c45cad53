//! What every reconcile pass works with: the clients of the lower layers and the node's
//! settings. Built once by the agent; no globals. Layer 4.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::package::Installer;
use crate::systemd::Systemd;
use crate::unit::{NodeInfo, UserDb};

use super::PodDirs;

/// The reconciler's view of the machine.
#[derive(Clone)]
pub struct Context {
    /// Installs the packages images name.
    pub installer: Installer,
    /// The service manager the containers run in.
    pub systemd: Systemd,
    /// The pods' directories (emptyDirs, restart records, last status).
    pub dirs: PodDirs,
    /// Where pod units are written.
    pub unit_dir: PathBuf,
    /// The node facts units are built with.
    pub node: NodeInfo,
    /// The node's addresses, shown as host and pod IPs.
    pub host_ips: Vec<IpAddr>,
    /// Primary groups of users named by security contexts.
    pub users: Arc<dyn UserDb + Send + Sync>,
}
