//! The containers of a pod and their unit names, and the one read a container's unit
//! needs from disk: its package's vendor unit (the pod's `systemk.io/vendor-unit.<container>`
//! annotation decides between several, or names a template's instance), read, its name
//! specifiers expanded for that name, and parsed for [`super::plan`]. Layer 4.

use k8s_openapi::api::core::v1::{Container, Pod};

use super::error::{Error, Result};
use super::restart::Role;
use crate::package::{Installed, SelectedUnit, VENDOR_UNIT_ANNOTATION_PREFIX, select_vendor_unit};
use crate::unit::{self, UnitFile, UnitName};

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

impl ContainerRef<'_> {
    /// Whether it is a native sidecar: an init container with `restartPolicy: Always`
    /// (kubelet `IsRestartableInitContainer`).
    pub fn sidecar(&self) -> bool {
        self.init && self.container.restart_policy.as_deref() == Some("Always")
    }

    /// Its part in the pod.
    pub fn role(&self) -> Role {
        match (self.init, self.sidecar()) {
            (false, _) => Role::App,
            (true, false) => Role::Init,
            (true, true) => Role::Sidecar,
        }
    }

    /// Whether it runs beside the app containers (an app container or a sidecar): it
    /// gets probes and hooks, and its readiness counts.
    pub fn long_running(&self) -> bool {
        self.role() != Role::Init
    }
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

/// The containers of a pod in the order the kubelet stops them: app containers (and
/// regular init containers, which no longer run) first, then the sidecars in reverse
/// order of `initContainers`, so each sidecar outlives what may still use it.
pub fn stop_order(pod: &Pod) -> Vec<ContainerRef<'_>> {
    let (mut sidecars, mut order): (Vec<_>, Vec<_>) =
        containers(pod).into_iter().partition(ContainerRef::sidecar);
    sidecars.reverse();
    order.extend(sidecars);
    order
}

/// The unit name of a container of `pod`.
pub fn unit_name(pod: &Pod, container: &Container) -> Result<UnitName> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    UnitName::for_container(namespace, name, &container.name)
        .map_err(|err| Error::Unit(unit::Error::from(err)))
}

/// The vendor unit `container` runs, chosen among the units of `installed` (the pod's
/// `systemk.io/vendor-unit.<container>` annotation decides between several, or names a
/// template's instance); `None` when there is none.
pub fn selected_vendor_unit(
    pod: &Pod,
    container: &Container,
    installed: &Installed,
) -> Result<Option<SelectedUnit>> {
    let annotation = format!("{VENDOR_UNIT_ANNOTATION_PREFIX}{}", container.name);
    let wanted = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&annotation));
    Ok(select_vendor_unit(installed, wanted.map(String::as_str))?)
}

/// The vendor unit of the package `installed` for `container`, read and checked: the
/// pod's `systemk.io/vendor-unit.<container>` annotation picks one when the package has
/// several (or an instance of a template); `None` when it has none. Reads the file (at
/// most 64 KiB) and expands `%i`, `%n`, … for the chosen name (see `unit::specifiers`).
pub fn read_vendor_unit(
    pod: &Pod,
    container: &Container,
    installed: &Installed,
) -> Result<Option<UnitFile>> {
    let Some(selected) = selected_vendor_unit(pod, container, installed)? else {
        return Ok(None);
    };
    let path = selected.path;
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
    unit::expand_name_specifiers(&text, &selected.name)
        .and_then(|text| UnitFile::parse(&text))
        .and_then(|parsed| unit::check_vendor_exec_lines(&parsed).map(|()| parsed))
        .map(Some)
        .map_err(|source| Error::VendorUnit { path, source })
}
