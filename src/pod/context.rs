//! What every reconcile pass works with: the clients of the lower layers and the node's
//! settings. Built once by the agent; no globals. Layer 4.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::package::Installer;
use crate::systemd::Systemd;
use crate::unit::{NodeInfo, NodeSecurity, UserDb};

use super::PodDirs;
use super::admission::NodeView;
use super::env::NodeAllocatable;
use super::installing::Installing;
use super::metrics::PodMetrics;
use super::objects::ObjectLookup;

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
    /// Reads the configMaps and secrets environments name; `None` without an API server,
    /// and then naming one is a CreateContainerConfigError.
    pub objects: Option<Arc<dyn ObjectLookup>>,
    /// The API server systemk uses (host, port), given to pods from the API as
    /// `KUBERNETES_SERVICE_HOST/PORT`.
    pub kubernetes_service: Option<(String, u16)>,
    /// The node's cpu and memory, for `resourceFieldRef` of containers without limits.
    pub allocatable: NodeAllocatable,
    /// What the node keeps from its pods: hidden paths, restricted groups.
    pub security: Arc<NodeSecurity>,
    /// The node as admission sees it (labels, taints, allocatable), kept current by
    /// whoever registers the Node.
    pub node_view: watch::Receiver<NodeView>,
    /// What passes and image installs count for `/metrics`.
    pub metrics: PodMetrics,
    /// The passes installing an image now, which the reconciler does not count against
    /// its bound on passes at once.
    pub installing: Arc<Installing>,
}
