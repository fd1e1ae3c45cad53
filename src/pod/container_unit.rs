//! One container of a pod → the unit that runs it: picks the package's vendor unit (the
//! pod's `systemk.io/vendor-unit.<container>` annotation decides between several), reads
//! and parses it, and hands everything to the pure builder. Used by the reconciler and by
//! `systemk render`, so what render prints is what systemk runs. Layer 4.

use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::error::{Error, Result};
use crate::package::{ImageRef, Installed, VENDOR_UNIT_ANNOTATION_PREFIX, select_vendor_unit};
use crate::unit::{self, BuildInput, NodeInfo, NodeSecurity, UnitFile, UnitName, UserDb};

/// Largest vendor unit file read (64 KiB): real ones are a few hundred bytes.
const MAX_VENDOR_UNIT_BYTES: u64 = 64 * 1024;

/// A container and where it stands in its pod.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'a> {
    /// The container spec.
    pub container: &'a Container,
    /// Whether it is one of `initContainers`.
    pub init: bool,
    /// Its position in `initContainers` or `containers`.
    pub index: usize,
}

/// The containers of a pod in the order the kubelet runs them: init containers first.
pub fn containers(pod: &Pod) -> Vec<ContainerRef<'_>> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, container)| ContainerRef {
            container,
            init: true,
            index,
        });
    let app = spec
        .containers
        .iter()
        .enumerate()
        .map(|(index, container)| ContainerRef {
            container,
            init: false,
            index,
        });
    init.chain(app).collect()
}

/// The unit name of a container of `pod`.
pub fn unit_name(pod: &Pod, container: &Container) -> Result<UnitName> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    UnitName::for_container(namespace, name, &container.name)
        .map_err(|err| Error::Unit(unit::Error::from(err)))
}

/// What the unit of one container is built from besides the pod itself.
#[derive(Clone, Copy)]
pub struct UnitContext<'a> {
    /// Facts about this node.
    pub node: &'a NodeInfo,
    /// The pod's directory (`<state>/pods/<uid>`).
    pub pod_dir: &'a Path,
    /// The pod's runtime directory (`<runtime>/pods/<uid>`, tmpfs).
    pub runtime_pod_dir: &'a Path,
    /// The user database, for primary groups.
    pub users: &'a dyn UserDb,
    /// What the node keeps from its pods.
    pub security: &'a NodeSecurity,
}

/// Builds the unit of `container`. `installed` is `None` when the image is not on this
/// machine (only `systemk render` asks for that): the unit is then synthesised.
pub fn container_unit(
    pod: &Pod,
    container: ContainerRef<'_>,
    installed: Option<&Installed>,
    context: UnitContext<'_>,
) -> Result<UnitFile> {
    let vendor_unit = match installed {
        Some(installed) => read_vendor_unit(pod, container.container, installed)?,
        None => None,
    };
    let with_entrypoint = path_image_entrypoint(container.container);
    let input = BuildInput {
        pod,
        container: with_entrypoint.as_ref().unwrap_or(container.container),
        init_container: container.init,
        container_index: container.index,
        image_id: installed.map(|i| i.image_id.as_str()).unwrap_or_default(),
        vendor_unit: vendor_unit.as_ref(),
        writable_dirs: installed
            .map(|i| i.writable_dirs.as_slice())
            .unwrap_or_default(),
        node: context.node,
        pod_dir: context.pod_dir,
        runtime_pod_dir: context.runtime_pod_dir,
        users: context.users,
        security: context.security,
    };
    Ok(unit::build(&input)?)
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

fn read_vendor_unit(
    pod: &Pod,
    container: &Container,
    installed: &Installed,
) -> Result<Option<UnitFile>> {
    let annotation = format!("{VENDOR_UNIT_ANNOTATION_PREFIX}{}", container.name);
    let wanted = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&annotation));
    let Some(path) = select_vendor_unit(installed, wanted.map(String::as_str))? else {
        return Ok(None);
    };
    let io_error = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::open(&path).map_err(io_error)?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_VENDOR_UNIT_BYTES),
        &mut text,
    )
    .map_err(io_error)?;
    // Checked here as well as in `unit::build`, so the error names the package's unit.
    UnitFile::parse(&text)
        .and_then(|parsed| unit::check_vendor_exec_lines(&parsed).map(|()| parsed))
        .map(Some)
        .map_err(|source| Error::VendorUnit { path, source })
}
