//! Checking a container's bind-mount targets against the real host before its unit is
//! written, with the unit layer's rules (`unit/mount_target.rs`): systemd must never
//! create, truncate or mask a host file for a pod.
//!
//! One exception, not chosen by any pod: the service-account token's mount point
//! `/var/run/secrets/kubernetes.io/serviceaccount`, which the API server's admission adds
//! to every pod of a cluster. systemk itself creates that fixed directory (below `/run`,
//! a tmpfs) so cluster pods do not all fail. Layer 4.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::error::{Error, Result};
use crate::unit::{BindMount, HomeProtection, HostFile, HostFiles, check_mount_targets};

/// Where Kubernetes mounts a pod's service-account token (`/var/run` is `/run` on
/// Debian, and systemd resolves the symlink the same way).
const TOKEN_MOUNT_POINTS: &[&str] = &[
    "/var/run/secrets/kubernetes.io/serviceaccount",
    "/run/secrets/kubernetes.io/serviceaccount",
];
/// The token mount point as systemk creates it.
const TOKEN_MOUNT_POINT: &str = "/run/secrets/kubernetes.io/serviceaccount";
const TOKEN_MOUNT_POINT_MODE: u32 = 0o755;

/// The host's file system as seen by systemk (which shares PID 1's mount namespace).
pub struct RealHost;

impl HostFiles for RealHost {
    fn stat(&self, path: &str) -> std::result::Result<HostFile, String> {
        kind(fs::metadata(path), path)
    }

    fn lstat(&self, path: &str) -> std::result::Result<HostFile, String> {
        kind(fs::symlink_metadata(path), path)
    }
}

fn kind(meta: io::Result<fs::Metadata>, path: &str) -> std::result::Result<HostFile, String> {
    match meta {
        Ok(meta) if meta.is_symlink() => Ok(HostFile::Symlink),
        Ok(meta) if meta.is_dir() => Ok(HostFile::Directory),
        Ok(_) => Ok(HostFile::NonDirectory),
        // ENOTDIR: a parent is a file, so nothing can be there.
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(HostFile::Missing)
        }
        Err(err) => Err(format!("{path}: {err}")),
    }
}

/// Checks the targets of one container's mounts on this host; creates the token mount
/// point first when a mount asks for it.
pub fn check_targets(mounts: &[BindMount], home: HomeProtection) -> Result<()> {
    if mounts
        .iter()
        .any(|m| TOKEN_MOUNT_POINTS.contains(&m.target.as_str()))
    {
        create_token_mount_point()?;
    }
    check_mount_targets(mounts, home, &RealHost)?;
    Ok(())
}

fn create_token_mount_point() -> Result<()> {
    let path = Path::new(TOKEN_MOUNT_POINT);
    DirBuilder::new()
        .recursive(true)
        .mode(TOKEN_MOUNT_POINT_MODE)
        .create(path)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_host_is_read_as_the_kernel_resolves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        fs::write(path("file"), "x").unwrap();
        std::os::unix::fs::symlink(path("file"), path("good")).unwrap();
        std::os::unix::fs::symlink(path("missing"), path("dangling")).unwrap();
        let host = RealHost;
        assert_eq!(host.stat(&path("file")), Ok(HostFile::NonDirectory));
        assert_eq!(host.stat(&path("good")), Ok(HostFile::NonDirectory));
        assert_eq!(host.lstat(&path("good")), Ok(HostFile::Symlink));
        assert_eq!(host.stat(&path("dangling")), Ok(HostFile::Missing));
        assert_eq!(host.stat(&path("missing")), Ok(HostFile::Missing));
        assert_eq!(
            host.stat(&format!("{}/below", path("file"))),
            Ok(HostFile::Missing)
        );
        assert_eq!(
            host.stat(dir.path().to_str().unwrap()),
            Ok(HostFile::Directory)
        );
    }
}
