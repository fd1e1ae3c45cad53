//! Volumes as bind mounts into the unit's own mount namespace:
//!
//! - `emptyDir` → `<pod_dir>/volumes/empty-dir/<volume name>`, one directory per pod
//!   volume, so all containers of the pod share it; `medium: Memory` is refused,
//!   `sizeLimit` is not enforced.
//! - `hostPath` → its path, of any known type; the pod layer checks the type (or creates
//!   the path for `DirectoryOrCreate`/`FileOrCreate`) before the unit starts.
//! - Each `volumeMount` becomes `BindPaths=<source>:<mountPath>`, or
//!   `BindReadOnlyPaths=` when `readOnly`. `subPathExpr`, mount propagation other
//!   than `None` and `recursiveReadOnly: Enabled` are refused ([`check_mount`]).
//! - `subPath` (relative, without `..`) is never bound by its path: a container could
//!   replace a directory of its volume by a symlink to anywhere on the host, and systemd
//!   would follow it (the kubelet's CVE-2017-1002101). Instead the pod layer opens it
//!   component by component without following symlinks out of the volume and bind-mounts
//!   what it opened onto a staging path, `<runtime pod dir>/volume-subpaths/<volume>/
//!   <container>/<mount index>` ([`subpath_staging_path`]); the unit binds that path.
//! - `configMap`, `secret`, `projected` and `downwardAPI` → the directory the pod layer
//!   writes their files into, `<dir>/volumes/<kind>/<volume name>` ([`api_volume_path`]),
//!   where `<dir>` is the pod's runtime directory (tmpfs, root-only) for `secret` and
//!   `projected` (which carries service-account tokens), so no secret byte reaches a
//!   persistent disk, and the pod directory for the others; always mounted read-only as
//!   the kubelet does.
//! - Volume names are DNS labels, so a volume name cannot leave its directory; mount
//!   paths are absolute, normalised, without `..` and never `/` itself (`path.rs`).
//!   Every other volume kind is refused with its name.
//!
//! Note: systemd creates a missing mount point (directory, or empty file for a file
//! source) at the target path before binding, on the host's file system: the pod layer
//! checks every target with [`check_mount_targets`](super::check_mount_targets) before
//! a unit is written.
//!
//! Layer 2: pure: computes paths, creates nothing.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, Volume, VolumeMount};

use super::confinement::Effective;
use super::error::{Error, Result};
use super::name::check_dns_label;
use super::path;

/// Directory of a pod's emptyDir volumes, below the pod directory.
const EMPTY_DIR: &str = "volumes/empty-dir";
/// Directory of a pod's staged `subPath`s, below its runtime directory.
pub const SUBPATHS_DIR: &str = "volume-subpaths";

/// The volume kinds whose files systemk writes, each in its own directory below the pod
/// directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVolumeKind {
    /// `configMap`
    ConfigMap,
    /// `secret`
    Secret,
    /// `projected`
    Projected,
    /// `downwardAPI`
    DownwardApi,
}

impl ApiVolumeKind {
    /// The kind of `volume`, when systemk writes its files.
    pub fn of(volume: &Volume) -> Option<Self> {
        if volume.config_map.is_some() {
            Some(Self::ConfigMap)
        } else if volume.secret.is_some() {
            Some(Self::Secret)
        } else if volume.projected.is_some() {
            Some(Self::Projected)
        } else if volume.downward_api.is_some() {
            Some(Self::DownwardApi)
        } else {
            None
        }
    }

    /// Whether the volume's files may hold secrets (`secret`, and `projected` with its
    /// service-account tokens and secret sources): they live on the runtime tmpfs.
    pub fn is_secret(self) -> bool {
        matches!(self, Self::Secret | Self::Projected)
    }

    fn dir(self) -> &'static str {
        match self {
            Self::ConfigMap => "volumes/config-map",
            Self::Secret => "volumes/secret",
            Self::Projected => "volumes/projected",
            Self::DownwardApi => "volumes/downward-api",
        }
    }
}

/// One bind mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Validated, normalised host path.
    pub source: String,
    /// Validated, normalised path inside the unit; never `/`.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// The volume it comes from.
    pub volume: String,
    /// Whether the source is the pod's own (an emptyDir): a mount point systemd creates
    /// below this mount lands in the pod's directory, not in a host directory.
    pub pod_owned: bool,
    /// For a `subPath` mount, what the pod layer stages at `source`.
    pub sub_path: Option<SubPath>,
    /// Whether the unit has a `/dev` of its own (`PrivateDevices=yes`: every
    /// unprivileged container), where systemd makes a mount point below `/dev`.
    pub private_dev: bool,
}

/// A `subPath` of a volume, to be opened safely and staged at the mount's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubPath {
    /// The volume's own directory (or file) on the host.
    pub volume_root: String,
    /// The validated, normalised relative path below it.
    pub path: String,
    /// Whether missing directories are created, as the kubelet does for volumes the pod
    /// writes (emptyDir, hostPath); the files of API volumes are systemk's.
    pub create_missing: bool,
}

impl BindMount {
    /// The directive and its value, `%` escaped.
    pub fn directive(&self) -> (&'static str, String) {
        let key = if self.read_only {
            "BindReadOnlyPaths"
        } else {
            "BindPaths"
        };
        (
            key,
            format!(
                "{}:{}",
                path::directive(&self.source),
                path::directive(&self.target)
            ),
        )
    }
}

/// Where the `subPath` of mount number `index` (in `volumeMounts` order) of `container`
/// is staged: below the pod's runtime directory, a tmpfs.
pub fn subpath_staging_path(
    runtime_pod_dir: &Path,
    volume: &str,
    container: &str,
    index: usize,
) -> PathBuf {
    runtime_pod_dir
        .join(SUBPATHS_DIR)
        .join(volume)
        .join(container)
        .join(index.to_string())
}

/// Where an emptyDir volume of a pod lives.
pub fn empty_dir_path(pod_dir: &Path, volume: &str) -> PathBuf {
    pod_dir.join(EMPTY_DIR).join(volume)
}

/// Where the files of a configMap, secret, projected or downwardAPI volume live: below
/// `runtime_pod_dir` (tmpfs) for secret and projected volumes, below `pod_dir` for the
/// others; `None` for other kinds. The name must be a DNS label (checked before anything
/// is written).
pub fn api_volume_path(pod_dir: &Path, runtime_pod_dir: &Path, volume: &Volume) -> Option<PathBuf> {
    ApiVolumeKind::of(volume).map(|kind| {
        let base = if kind.is_secret() {
            runtime_pod_dir
        } else {
            pod_dir
        };
        base.join(kind.dir()).join(&volume.name)
    })
}

/// Where an older systemk kept the files of a secret or projected volume (below the pod
/// directory, on persistent disk); `None` for other kinds. Such files are removed.
pub fn legacy_secret_volume_path(pod_dir: &Path, volume: &Volume) -> Option<PathBuf> {
    ApiVolumeKind::of(volume)
        .filter(|kind| kind.is_secret())
        .map(|kind| pod_dir.join(kind.dir()).join(&volume.name))
}

/// The bind mounts of `container`, in `volumeMounts` order. `pod_dir` is the pod's
/// directory, `runtime_pod_dir` its directory on the runtime tmpfs.
pub fn bind_mounts(
    pod: &Pod,
    container: &Container,
    pod_dir: &Path,
    runtime_pod_dir: &Path,
) -> Result<Vec<BindMount>> {
    let mut mounts: Vec<BindMount> = Vec::new();
    let privileged = Effective::of(pod, container).privileged();
    for (index, mount) in container.volume_mounts.iter().flatten().enumerate() {
        let name = &mount.name;
        let volume = pod_volumes(pod).find(|v| v.name == *name).ok_or_else(|| {
            invalid(
                name,
                "the container mounts it but the pod has no such volume".into(),
            )
        })?;
        check_mount(mount)?;
        let (mut source, is_empty_dir, forced_read_only) =
            match source(volume, pod_dir, runtime_pod_dir)? {
                Source::EmptyDir(dir) => (dir, true, false),
                Source::Host(path) => (path, false, false),
                Source::Api(dir) => (dir, false, true),
            };
        let mut sub_path = None;
        if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            let sub = path::relative(&format!("subPath of volume mount {name}"), sub)?;
            check_dns_label("container name", &container.name)?;
            let staging = subpath_staging_path(runtime_pod_dir, name, &container.name, index);
            let staging = staging
                .to_str()
                .ok_or_else(|| invalid(name, "the pod's runtime directory is not UTF-8".into()))?;
            sub_path = Some(SubPath {
                volume_root: source,
                path: sub,
                create_missing: !forced_read_only,
            });
            source = path::absolute("subPath staging path", staging)?;
        }
        let target = path::absolute(
            &format!("mountPath of volume mount {name}"),
            &mount.mount_path,
        )?;
        if target == "/" {
            return Err(invalid(name, "it cannot be mounted over /".into()));
        }
        if mounts.iter().any(|m| m.target == target) {
            return Err(invalid(
                name,
                format!("another volume is already mounted at {target}"),
            ));
        }
        mounts.push(BindMount {
            source,
            target,
            read_only: forced_read_only || mount.read_only.unwrap_or(false),
            volume: name.clone(),
            pod_owned: is_empty_dir,
            sub_path,
            private_dev: !privileged,
        });
    }
    Ok(mounts)
}

enum Source {
    EmptyDir(String),
    Host(String),
    /// Files systemk writes: never writable by the container.
    Api(String),
}

fn pod_volumes(pod: &Pod) -> impl Iterator<Item = &Volume> {
    pod.spec.iter().flat_map(|s| s.volumes.iter().flatten())
}

/// Refuses what a volume mount asks that systemk cannot do: `subPathExpr`, mount
/// propagation other than `None` and `recursiveReadOnly: Enabled` (systemd 252 cannot
/// make a bind mount read-only recursively). Admission runs it before any install.
pub fn check_mount(mount: &VolumeMount) -> Result<()> {
    let name = &mount.name;
    if mount.sub_path_expr.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Error::Unsupported {
            what: format!("subPathExpr of volume mount {name}"),
        });
    }
    if mount
        .mount_propagation
        .as_deref()
        .is_some_and(|p| p != "None")
    {
        return Err(Error::Unsupported {
            what: format!("mountPropagation of volume mount {name}"),
        });
    }
    if mount.recursive_read_only.as_deref() == Some("Enabled") {
        return Err(Error::Unsupported {
            what: format!("recursiveReadOnly: Enabled of volume mount {name}"),
        });
    }
    Ok(())
}

/// Refuses a volume systemk cannot provide: a kind other than `emptyDir` (without
/// `medium`), `hostPath` of a known type, `configMap`, `secret`, `projected` and
/// `downwardAPI`, or a name that is no DNS label. Admission runs it before any install.
pub fn check_volume(volume: &Volume) -> Result<()> {
    let name = &volume.name;
    check_dns_label("volume name", name)?;
    if let Some(empty) = &volume.empty_dir {
        if empty.medium.as_deref().is_some_and(|m| !m.is_empty()) {
            return Err(Error::Unsupported {
                what: format!("emptyDir medium of volume {name}"),
            });
        }
        return Ok(());
    }
    if ApiVolumeKind::of(volume).is_some() {
        return Ok(());
    }
    if let Some(host) = &volume.host_path {
        return match host.type_.as_deref().unwrap_or_default() {
            "" | "Directory" | "DirectoryOrCreate" | "File" | "FileOrCreate" | "Socket"
            | "CharDevice" | "BlockDevice" => Ok(()),
            other => Err(invalid(
                name,
                format!("hostPath type {other:?} is not supported"),
            )),
        };
    }
    Err(Error::Unsupported {
        what: format!("volume {name} of kind {}", kind(volume)),
    })
}

fn source(volume: &Volume, pod_dir: &Path, runtime_pod_dir: &Path) -> Result<Source> {
    let name = &volume.name;
    check_volume(volume)?;
    if volume.empty_dir.is_some() {
        return Ok(Source::EmptyDir(format!(
            "{}/{EMPTY_DIR}/{name}",
            pod_dir_text(name, pod_dir)?
        )));
    }
    if let Some(kind) = ApiVolumeKind::of(volume) {
        let base = if kind.is_secret() {
            runtime_pod_dir
        } else {
            pod_dir
        };
        return Ok(Source::Api(format!(
            "{}/{}/{name}",
            pod_dir_text(name, base)?,
            kind.dir()
        )));
    }
    let host = volume
        .host_path
        .as_ref()
        .ok_or_else(|| Error::Unsupported {
            what: format!("volume {name} of kind {}", kind(volume)),
        })?;
    let path = path::absolute(&format!("hostPath of volume {name}"), &host.path)?;
    Ok(Source::Host(path))
}

fn pod_dir_text(volume: &str, pod_dir: &Path) -> Result<String> {
    let pod_dir = pod_dir
        .to_str()
        .ok_or_else(|| invalid(volume, "the pod directory is not UTF-8".into()))?;
    path::absolute("pod directory", pod_dir)
}

/// The volume kind's field name (`configMap`, `secret`, …) for error messages.
fn kind(volume: &Volume) -> String {
    serde_json::to_value(volume)
        .ok()
        .and_then(|v| {
            v.as_object()
                .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn invalid(volume: &str, why: String) -> Error {
    Error::InvalidVolume {
        volume: volume.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests;
