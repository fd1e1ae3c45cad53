//! The container's termination-message file (`terminationMessagePath`, default
//! `/dev/termination-log`): a file of the pod's own, `<pod dir>/termination/<container>`
//! ([`termination_file_path`]), bound writable at that path, as the kubelet binds a
//! per-container file there. The pod layer creates and empties it and reads it after the
//! container exited; nothing ever reads the path in the host's view.
//!
//! The path comes from the spec, so it is checked like a `mountPath` (`path.rs`:
//! absolute, normalised, no `..`, nothing that needs quoting; never `/`), and then with
//! every mount target (`mount_target.rs`: never into `/proc` or `/sys`, never a mount
//! point systemd would create on the host) and the container's own `/run` rules
//! (`run_dir.rs`). Below `/dev` it lands in the unit's private `/dev`
//! (`PrivateDevices=yes`, every unprivileged container), so the default path needs
//! nothing of the host. A privileged container shares the host's `/dev`: there the file
//! is left out (the container gets no termination-message file, and its message can
//! only come from its logs) rather than made on the host's `/dev`. For an unprivileged
//! container the path may not lie in what the node hides from it
//! ([`NodeSecurity::hidden_paths`], the host's control sockets).
//!
//! Layer 2: pure: computes paths, creates nothing.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::confinement::{Effective, HOST_CONTROL_SOCKETS, NodeSecurity};
use super::error::{Error, Result};
use super::name::check_dns_label;
use super::path;
use super::volumes::{BindMount, bind_mounts};

/// The API server's default `terminationMessagePath`, also used when a static pod
/// leaves it out.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// The name the termination-message bind carries where a volume name would be.
pub const TERMINATION_MOUNT: &str = "terminationMessagePath";
/// Directory of the pod's termination-message files, below the pod directory.
const TERMINATION_DIR: &str = "termination";

/// Where the termination-message file of `container` lives on the host.
pub fn termination_file_path(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join(TERMINATION_DIR).join(container)
}

/// The path the container writes its message to: the spec's, else the default.
pub fn termination_message_path(container: &Container) -> &str {
    container
        .termination_message_path
        .as_deref()
        .filter(|path| !path.is_empty())
        .unwrap_or(DEFAULT_TERMINATION_MESSAGE_PATH)
}

/// The bind of `container`'s termination-message file, or `None` for a privileged
/// container whose path lies in the host's `/dev`. Refuses a path that is invalid, `/`,
/// or hidden from the container.
pub fn termination_mount(
    pod: &Pod,
    container: &Container,
    pod_dir: &Path,
    security: &NodeSecurity,
) -> Result<Option<BindMount>> {
    let refuse = |target: &str, why: String| Error::MountTarget {
        volume: TERMINATION_MOUNT.to_owned(),
        target: target.to_owned(),
        why,
    };
    let target = path::absolute(TERMINATION_MOUNT, termination_message_path(container))?;
    if target == "/" {
        return Err(refuse(&target, "it cannot be /".to_owned()));
    }
    let privileged = Effective::of(pod, container).privileged();
    if privileged && at_or_below(&target, "/dev") && !below(&target, "/dev/shm") {
        return Ok(None);
    }
    if !privileged {
        let hidden = security
            .hidden_paths
            .iter()
            .map(String::as_str)
            .chain(HOST_CONTROL_SOCKETS.iter().copied());
        for hit in hidden {
            if at_or_below(&target, hit) || below(hit, &target) {
                return Err(refuse(
                    &target,
                    format!("{hit} is hidden from the container"),
                ));
            }
        }
    }
    check_dns_label("container name", &container.name)?;
    let source = termination_file_path(pod_dir, &container.name);
    let source = source.to_str().ok_or_else(|| Error::Unsupported {
        what: format!("pod directory {} that is not UTF-8", pod_dir.display()),
    })?;
    Ok(Some(BindMount {
        source: path::absolute("termination message file", source)?,
        target,
        read_only: false,
        volume: TERMINATION_MOUNT.to_owned(),
        pod_owned: false,
        sub_path: None,
        private_dev: !privileged,
    }))
}

/// Every bind of `container`: its volume mounts ([`bind_mounts`]) and its
/// termination-message file, which may not share a target with a volume.
pub fn container_mounts(
    pod: &Pod,
    container: &Container,
    (pod_dir, runtime_pod_dir): (&Path, &Path),
    security: &NodeSecurity,
) -> Result<Vec<BindMount>> {
    let mut mounts = bind_mounts(pod, container, pod_dir, runtime_pod_dir)?;
    if let Some(termination) = termination_mount(pod, container, pod_dir, security)? {
        if let Some(volume) = mounts.iter().find(|m| m.target == termination.target) {
            return Err(Error::MountTarget {
                volume: TERMINATION_MOUNT.to_owned(),
                target: termination.target,
                why: format!("volume {} is mounted there", volume.volume),
            });
        }
        mounts.push(termination);
    }
    Ok(mounts)
}

/// Whether normalised absolute `path` lies strictly below `dir`.
fn below(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

fn at_or_below(path: &str, dir: &str) -> bool {
    path == dir || below(path, dir)
}

#[cfg(test)]
mod tests;
