//! The one container-planning path: a container of a pod, with what is known about its
//! image (the installed package and its vendor unit, already read), the configMaps and
//! secrets it names and the node, becomes the unit systemk writes and the content of its
//! environment file. The reconciler plans with it before writing units, `systemk render`
//! before printing them, so render shows exactly what a pass would write.
//!
//! Pure: installing, fetching objects and reading the vendor unit happen before, in the
//! callers; checks against the live host (mount targets, volume files) after, in the
//! reconciler. Layer 4.

use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::container_unit::{ContainerRef, containers, unit_name};
use super::env::{EnvFacts, resolve_container};
use super::error::{Error, Result};
use super::objects::ReferencedObjects;
use super::slice::pod_slice_name;
use crate::package::{ImageRef, Installed};
use crate::unit::{
    self, BuildInput, HomeProtection, NodeInfo, NodeSecurity, UnitFile, UnitName, UserDb, env_file,
    stdin_socket, unit_identity, wants_stdin,
};

/// What the units of a pod are planned with besides the pod itself: facts of this node
/// and the pod's directories.
#[derive(Clone, Copy)]
pub struct PlanFacts<'a> {
    /// Facts about this node.
    pub node: &'a NodeInfo,
    /// What the pod's environment may name besides the pod (addresses, node name, API
    /// server, allocatable resources).
    pub env: &'a EnvFacts,
    /// The pod's directory (`<state>/pods/<uid>`).
    pub pod_dir: &'a Path,
    /// The pod's runtime directory (`<runtime>/pods/<uid>`, tmpfs).
    pub runtime_pod_dir: &'a Path,
    /// The user database, for primary groups and whom units run as.
    pub users: &'a (dyn UserDb + Send + Sync),
    /// What the node keeps from its pods.
    pub security: &'a NodeSecurity,
}

/// What is known about one container's image and the objects it names.
#[derive(Clone, Copy, Default)]
pub struct ContainerInputs<'a> {
    /// The installed package (or path) its image resolved to; `None` when it is not on
    /// this machine (only `systemk render` plans such a container): the unit is then
    /// synthesised, without a vendor unit or image ID.
    pub installed: Option<&'a Installed>,
    /// The package's vendor unit, read and checked ([`read_vendor_unit`]).
    ///
    /// [`read_vendor_unit`]: super::container_unit::read_vendor_unit
    pub vendor_unit: Option<&'a UnitFile>,
    /// The configMaps and secrets its environment names; `None` without an API server,
    /// and then naming one is an error.
    pub objects: Option<&'a ReferencedObjects>,
}

/// The unit planned for one container.
#[derive(Debug, Clone)]
pub struct PlannedUnit {
    /// The unit's name.
    pub name: UnitName,
    /// The unit file.
    pub unit: UnitFile,
    /// The content of its environment file (`None`: it has none).
    pub env_file: Option<String>,
    /// What its image resolved to; empty when not installed.
    pub image_id: String,
    /// The `(uid, gid)` the unit runs as, when known (owner of its volume files).
    pub identity: Option<(u32, u32)>,
    /// How the unit hides `/home`, for the check of its mount targets.
    pub home: HomeProtection,
    /// The container with its environment resolved (plain values), as the unit runs it.
    pub resolved: Container,
}

/// Plans the unit of `container`: resolves its environment as the kubelet does, writes
/// the plain values into its environment file's content and builds its unit.
pub fn plan_container(
    pod: &Pod,
    container: ContainerRef<'_>,
    inputs: ContainerInputs<'_>,
    facts: &PlanFacts<'_>,
) -> Result<PlannedUnit> {
    let name = unit_name(pod, container.container)?;
    // The unit names the environment file, which gets the plain values; a changed value
    // changes the file, so the container restarts with it, as the kubelet reads the
    // environment at start.
    let resolved = resolve_container(pod, container.container, inputs.objects, facts.env)?;
    let env = env_file(&resolved).map_err(Error::from)?;
    let with_entrypoint = path_image_entrypoint(&resolved);
    let slice = pod_slice_name(pod)?;
    let input = BuildInput {
        slice: &slice,
        pod,
        container: with_entrypoint.as_ref().unwrap_or(&resolved),
        init_container: container.init,
        container_index: container.index,
        image_id: inputs
            .installed
            .map(|i| i.image_id.as_str())
            .unwrap_or_default(),
        vendor_unit: inputs.vendor_unit,
        writable_dirs: inputs
            .installed
            .map(|i| i.writable_dirs.as_slice())
            .unwrap_or_default(),
        node: facts.node,
        pod_dir: facts.pod_dir,
        runtime_pod_dir: facts.runtime_pod_dir,
        users: facts.users,
        security: facts.security,
    };
    let unit = unit::build(&input)?;
    Ok(PlannedUnit {
        name,
        identity: unit_identity(&unit, facts.users),
        home: HomeProtection::of(&unit),
        env_file: env,
        image_id: inputs
            .installed
            .map(|i| i.image_id.clone())
            .unwrap_or_default(),
        unit,
        resolved,
    })
}

/// The socket units of the containers of `pod` whose units are among `written`: the
/// rendered unit holding a container's standard input when it asks for one, else `None`
/// (a socket file left from an earlier spec is to go). Its FIFO is in `stdin_dir`.
pub fn stdin_sockets(
    pod: &Pod,
    written: &[UnitName],
    stdin_dir: &Path,
) -> Result<Vec<(UnitName, Option<String>)>> {
    let mut sockets = Vec::new();
    for container in containers(pod) {
        let name = unit_name(pod, container.container)?;
        if !written.contains(&name) {
            continue;
        }
        let socket = if wants_stdin(container.container) {
            Some(stdin_socket(&name, stdin_dir)?.render())
        } else {
            None
        };
        sockets.push((name, socket));
    }
    Ok(sockets)
}

/// A path image is the binary to run, as an OCI image's entrypoint is: without a
/// `command`, the container runs the image path with its `args`.
fn path_image_entrypoint(container: &Container) -> Option<Container> {
    let image = container.image.as_deref()?;
    let is_path = matches!(image.parse(), Ok(ImageRef::Path(_)));
    let has_command = container
        .command
        .as_ref()
        .is_some_and(|command| !command.is_empty());
    (is_path && !has_command).then(|| Container {
        command: Some(vec![image.to_owned()]),
        ..container.clone()
    })
}

#[cfg(test)]
mod tests;
