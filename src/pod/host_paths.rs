//! hostPath sources checked as the host resolves them. The unit layer refuses a hostPath
//! whose *spelling* reaches what unprivileged pods must not see; systemd binds the path
//! after following its symlinks, so a symlink (one another pod may have planted in a
//! shared hostPath, `ln -s /var/lib/systemk x`) must not lead there either. This runs
//! before anything is created for the pod.
//!
//! Left open: a directory swapped for a symlink between this check and systemd's bind.
//! That needs a pod with write access to a parent of the hostPath; the kubelet has the
//! same window for hostPath (it closes it only for `subPath`). Layer 4.

use std::io;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use super::error::{Error, Result};
use crate::unit::{NodeSecurity, check_host_path_source};

/// Refuses the pod when a hostPath mounted by an unprivileged container resolves into a
/// path only privileged pods may see.
pub fn check_resolved_host_paths(pod: &Pod, node: &NodeSecurity) -> Result<()> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(());
    };
    let unprivileged_mounts: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter(|c| c.security_context.as_ref().and_then(|s| s.privileged) != Some(true))
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .map(|m| m.name.as_str())
        .collect();
    for volume in spec.volumes.iter().flatten() {
        let Some(host) = volume.host_path.as_ref() else {
            continue;
        };
        if !unprivileged_mounts.contains(&volume.name.as_str()) {
            continue;
        }
        let resolved = resolve(Path::new(&host.path)).map_err(|source| Error::Io {
            path: PathBuf::from(&host.path),
            source,
        })?;
        let Some(resolved) = resolved.to_str() else {
            return Err(Error::InvalidPod {
                why: format!("hostPath of volume {:?} is not UTF-8", volume.name),
            });
        };
        check_host_path_source(&volume.name, resolved, node)?;
    }
    Ok(())
}

/// `path` with every symlink of its existing part resolved; the missing rest (which
/// `DirectoryOrCreate` will create) is appended as written, `..` refused.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut real = real;
                for part in missing.iter().rev() {
                    real.push(part);
                }
                return Ok(real);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let Some(last) = existing.components().next_back() else {
                    return Err(err);
                };
                match last {
                    Component::Normal(part) => missing.push(part.to_owned()),
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "not a normalised absolute path",
                        ));
                    }
                }
                if !existing.pop() {
                    return Err(err);
                }
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, HostPathVolumeSource, PodSpec, SecurityContext, Volume, VolumeMount,
    };

    fn pod(host_path: &Path, privileged: bool) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    volume_mounts: Some(vec![VolumeMount {
                        name: "v".into(),
                        mount_path: "/srv".into(),
                        ..Default::default()
                    }]),
                    security_context: Some(SecurityContext {
                        privileged: Some(privileged),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                volumes: Some(vec![Volume {
                    name: "v".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: host_path.to_str().unwrap().into(),
                        type_: None,
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_symlink_into_a_hidden_path_is_refused_unless_privileged() {
        let temp = tempfile::tempdir().unwrap();
        let hidden = temp.path().join("state");
        std::fs::create_dir(&hidden).unwrap();
        let shared = temp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::os::unix::fs::symlink(&hidden, shared.join("esc")).unwrap();
        let node = NodeSecurity {
            hidden_paths: vec![hidden.to_str().unwrap().to_owned()],
            ..Default::default()
        };
        let err = check_resolved_host_paths(&pod(&shared.join("esc"), false), &node).unwrap_err();
        assert!(err.to_string().contains("only privileged pods"), "{err}");
        let below = shared.join("esc/missing/dir");
        assert!(check_resolved_host_paths(&pod(&below, false), &node).is_err());
        check_resolved_host_paths(&pod(&shared.join("esc"), true), &node).unwrap();
        check_resolved_host_paths(&pod(&shared, false), &node).unwrap();
        check_resolved_host_paths(&pod(&shared.join("new/dir"), false), &node).unwrap();
    }
}
