//! Which bind-mount targets a unit may have without changing the host. systemd creates
//! a missing mount point (with its missing parents) before binding, and it does so in the
//! host's file system, following symlinks: an emptyDir at `/etc/something` leaves
//! `/etc/something` behind, a configMap item at `/etc/systemd/system/ssh.service` leaves
//! an empty unit file that masks sshd. So a target is accepted only when:
//!
//! - it lies below another mount of the same container (the longest such wins, as
//!   systemd mounts the shorter path first): below an emptyDir the mount point is made
//!   inside the pod's own directory, and must not pass a symlink there (a container could
//!   plant one to send systemd out of the volume); below any other volume it must exist;
//! - or it lies strictly below a place the unit has for itself, where systemd creates
//!   inside the unit's own mounts: `/tmp` and `/var/tmp` (`PrivateTmp=yes`), `/dev/shm`
//!   (a tmpfs of its own), `/run` and `/var/run` (the container's own, `run_dir.rs`;
//!   not `/run` itself), `/home`, `/root` and `/run/user` (`ProtectHome=tmpfs`; with
//!   the vendor's `ProtectHome=yes` they are inaccessible and refused), and `/dev` when
//!   the unit has a `/dev` of its own (`PrivateDevices=yes`, see [`BindMount::private_dev`]);
//! - or it exists on the host, resolved as the kernel (and systemd) resolve it: a symlink
//!   whose target is missing would make systemd create that target, so it is refused;
//! - and in each case its type fits the source: directory on directory, non-directory on
//!   non-directory (systemd cannot bind one onto the other).
//!
//! `/proc` and `/sys` are refused outright: their entries are the kernel's interfaces,
//! and magic links there lead anywhere.
//!
//! Layer 2: pure. What the host's file system holds comes in through [`HostFiles`].

use super::error::{Error, Result};
use super::file::UnitFile;
use super::volumes::BindMount;

/// What a path on the host is, as far as a bind mount cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostFile {
    /// Nothing there (or a parent is not a directory).
    Missing,
    /// A directory.
    Directory,
    /// Anything else that is not a symlink: a file, socket, device…
    NonDirectory,
    /// A symlink (only when asked not to follow it).
    Symlink,
}

/// The host's file system, read-only.
pub trait HostFiles {
    /// `path` resolved as the kernel resolves it, following every symlink. An error
    /// (other than "not found") is said in words.
    fn stat(&self, path: &str) -> std::result::Result<HostFile, String>;
    /// `path` itself: a final symlink is reported, not followed.
    fn lstat(&self, path: &str) -> std::result::Result<HostFile, String>;
}

/// How the unit's `ProtectHome=` hides `/home`, `/root` and `/run/user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeProtection {
    /// `ProtectHome=tmpfs`: an empty tmpfs of the unit's own.
    Tmpfs,
    /// Anything else (the vendor's `ProtectHome=yes`): inaccessible.
    Inaccessible,
}

impl HomeProtection {
    /// What the (hardened) unit says.
    pub fn of(unit: &UnitFile) -> Self {
        match unit.get("Service", "ProtectHome") {
            Some("tmpfs") => Self::Tmpfs,
            _ => Self::Inaccessible,
        }
    }
}

/// Places whose mount points systemd creates inside mounts of the unit's own (`/run` is
/// the container's own, `run_dir.rs`; `/var/run` is a symlink to it).
const PRIVATE_PLACES: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run"];
/// The places `ProtectHome=` covers.
const HOME_PLACES: &[&str] = &["/home", "/root", "/run/user"];
/// Kernel interfaces no volume is mounted into.
const KERNEL_PLACES: &[&str] = &["/proc", "/sys"];

/// Checks every target of `mounts` (one container's, validated and normalised by
/// [`bind_mounts`](super::bind_mounts)) against the host, as described above.
pub fn check_mount_targets(
    mounts: &[BindMount],
    home: HomeProtection,
    host: &dyn HostFiles,
) -> Result<()> {
    for mount in mounts {
        check_one(mount, mounts, home, host)?;
    }
    Ok(())
}

fn check_one(
    mount: &BindMount,
    all: &[BindMount],
    home: HomeProtection,
    host: &dyn HostFiles,
) -> Result<()> {
    let target = mount.target.as_str();
    let refuse = |why: String| Error::MountTarget {
        volume: mount.volume.clone(),
        target: target.to_owned(),
        why,
    };
    let source_is_dir = match host.stat(&mount.source).map_err(&refuse)? {
        HostFile::Directory => true,
        HostFile::NonDirectory | HostFile::Symlink => false,
        HostFile::Missing => {
            return Err(refuse(format!(
                "its source {} does not exist",
                mount.source
            )));
        }
    };
    let fits = |found: HostFile, where_: &str| match (source_is_dir, found) {
        (true, HostFile::Directory) | (false, HostFile::NonDirectory) => Ok(()),
        (true, _) => Err(refuse(format!(
            "the volume is a directory but {where_} is not"
        ))),
        (false, _) => Err(refuse(format!(
            "the volume is a file but {where_} is a directory"
        ))),
    };
    if let Some(kernel) = KERNEL_PLACES.iter().find(|p| at_or_below(target, p)) {
        return Err(refuse(format!(
            "volumes cannot be mounted into {kernel}, the kernel's interfaces"
        )));
    }
    // The longest other target this one lies below: systemd mounts that one first.
    let parent = all
        .iter()
        .filter(|other| below(target, &other.target))
        .max_by_key(|other| other.target.len());
    if let Some(parent) = parent {
        let rest = &target[parent.target.len() + 1..];
        return if parent.pod_owned {
            below_pod_volume(parent, rest, host, &refuse, &fits)
        } else {
            let path = format!("{}/{rest}", parent.source);
            match host.stat(&path).map_err(&refuse)? {
                HostFile::Missing => Err(refuse(format!(
                    "it does not exist in volume {} ({path}), and systemd would create it there",
                    parent.volume
                ))),
                found => fits(found, &path),
            }
        };
    }
    if let Some(place) = HOME_PLACES.iter().find(|p| at_or_below(target, p)) {
        return match home {
            HomeProtection::Tmpfs if below(target, place) => Ok(()),
            HomeProtection::Tmpfs => fits(HostFile::Directory, place),
            HomeProtection::Inaccessible => Err(refuse(format!(
                "the unit's ProtectHome=yes makes {place} inaccessible"
            ))),
        };
    }
    if matches!(target, "/run" | "/var/run") {
        return Err(refuse(
            "/run is the container's own directory; mount below it".to_owned(),
        ));
    }
    if PRIVATE_PLACES.iter().any(|p| below(target, p)) {
        return Ok(());
    }
    if mount.private_dev && below(target, "/dev") {
        return Ok(());
    }
    match host.stat(target).map_err(&refuse)? {
        HostFile::Missing => Err(refuse(
            "it does not exist on the host, and systemd would create it there; \
             mount at an existing path, or below /tmp, /var/tmp, /run, /home, /root, \
             /dev/shm or an emptyDir mount of the container"
                .to_owned(),
        )),
        found => fits(found, "the host's path"),
    }
}

/// A target below an emptyDir mount: systemd walks the pod's directory, following
/// symlinks a container may have planted there; none may be on the way.
fn below_pod_volume(
    parent: &BindMount,
    rest: &str,
    host: &dyn HostFiles,
    refuse: &dyn Fn(String) -> Error,
    fits: &dyn Fn(HostFile, &str) -> Result<()>,
) -> Result<()> {
    let mut path = parent.source.clone();
    let components: Vec<&str> = rest.split('/').collect();
    for (index, component) in components.iter().enumerate() {
        path = format!("{path}/{component}");
        let last = index + 1 == components.len();
        match host.lstat(&path).map_err(refuse)? {
            // Created by systemd inside the pod's volume.
            HostFile::Missing => return Ok(()),
            HostFile::Symlink => {
                return Err(refuse(format!(
                    "{path} in volume {} is a symlink, which systemd would follow out of the volume",
                    parent.volume
                )));
            }
            found if last => return fits(found, &path),
            HostFile::Directory => {}
            HostFile::NonDirectory => {
                return Err(refuse(format!(
                    "{path} in volume {} is not a directory",
                    parent.volume
                )));
            }
        }
    }
    Ok(())
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
