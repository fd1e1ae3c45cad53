//! Staging a `subPath` the kubelet's way (`pkg/volume/util/subpath/subpath_linux.go`,
//! since CVE-2017-1002101): a container may have replaced any directory of its volume by a
//! symlink to anywhere on the host, so the path is never handed to systemd. systemk
//! resolves it once, refuses it when it leads out of the volume, then opens it again
//! component by component from the volume's root with `O_NOFOLLOW` (a symlink swapped in
//! meanwhile is refused, not followed) and bind-mounts the file it opened, through
//! `/proc/self/fd/<n>`, onto the staging path the unit binds. What is staged is that very
//! file, whatever the volume's paths say later.
//!
//! Missing directories are created (`mkdirat` below the opened parent) for volumes the
//! pod writes, as the kubelet does. Staging mounts live below the pod's runtime directory
//! (a tmpfs): they are gone after a reboot until systemk prepares the pod again, and
//! `dirs::remove_tree` detaches them before a pod's directory goes. Layer 4.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};

use super::error::{Error, Result};
use crate::unit::{SUBPATHS_DIR, SubPath};

/// Mode of the staging directories (below the root-only runtime pod directory).
const STAGING_DIR_MODE: u32 = 0o700;
/// Mode of directories created for a missing `subPath` (the kubelet's).
const CREATED_DIR_MODE: u32 = 0o755;
/// How many stacked mounts a staging path may hold before systemk gives up unmounting.
const MAX_STACKED: usize = 8;

/// Opens `sub` below its volume without following a symlink out of it, and bind-mounts
/// it onto `staging` (replacing what was staged there before).
pub fn stage(sub: &SubPath, staging: &Path) -> Result<()> {
    let refuse = |why: String| Error::InvalidPod {
        why: format!("subPath {:?} of {}: {why}", sub.path, sub.volume_root),
    };
    let opened = open_beneath(sub).map_err(&refuse)?;
    let is_dir = fstat(opened.as_fd())
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .map_err(|err| refuse(format!("cannot read what was opened: {err}")))?;
    let io_error = |source| Error::Io {
        path: staging.to_owned(),
        source,
    };
    if let Some(parent) = staging.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(STAGING_DIR_MODE)
            .create(parent)
            .map_err(io_error)?;
    }
    unmount_all(staging).map_err(io_error)?;
    make_mount_point(staging, is_dir).map_err(io_error)?;
    let proc_path = format!("/proc/self/fd/{}", opened.as_raw_fd());
    mount(
        Some(proc_path.as_str()),
        staging,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|err| io_error(err.into()))
}

/// Removes the staging mounts below `runtime_pod_dir` that are not in `wanted`: each is
/// detached, then its (now empty) mount point removed; never anything recursively.
pub fn remove_unwanted(runtime_pod_dir: &Path, wanted: &[PathBuf]) -> Result<()> {
    let root = runtime_pod_dir.join(SUBPATHS_DIR);
    // volume-subpaths/<volume>/<container>/<index>
    for volume in entries(&root)? {
        for container in entries(&volume)? {
            for staged in entries(&container)? {
                if wanted.contains(&staged) {
                    continue;
                }
                let io_error = |source| Error::Io {
                    path: staged.clone(),
                    source,
                };
                unmount_all(&staged).map_err(io_error)?;
                remove_mount_point(&staged).map_err(io_error)?;
            }
            // Only empty directories go; one still in use stays.
            let _ = fs::remove_dir(&container);
        }
        let _ = fs::remove_dir(&volume);
    }
    Ok(())
}

/// The entries of a staging directory level (none when it does not exist).
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io_error = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error(err)),
    };
    read.map(|entry| entry.map(|e| e.path()).map_err(io_error))
        .collect()
}

/// Resolves `sub` once (symlinks inside the volume are fine, as for the kubelet), checks
/// it stays in the volume, then opens the resolved path from the volume's root with
/// `O_NOFOLLOW` at every step.
fn open_beneath(sub: &SubPath) -> std::result::Result<OwnedFd, String> {
    let root = Path::new(&sub.volume_root);
    let real_root =
        fs::canonicalize(root).map_err(|err| format!("the volume cannot be opened: {err}"))?;
    let relative = match fs::canonicalize(root.join(&sub.path)) {
        Ok(real) => real
            .strip_prefix(&real_root)
            .map(Path::to_owned)
            .map_err(|_| "it leads out of the volume through a symlink".to_owned())?,
        Err(err) if err.kind() == io::ErrorKind::NotFound && sub.create_missing => {
            PathBuf::from(&sub.path)
        }
        Err(err) => return Err(format!("it cannot be resolved: {err}")),
    };
    let mut current = open(
        &real_root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("the volume cannot be opened: {err}"))?;
    let components: Vec<Component<'_>> = relative.components().collect();
    for (index, component) in components.iter().enumerate() {
        let Component::Normal(name) = component else {
            return Err("it is not a plain relative path".to_owned());
        };
        let last = index + 1 == components.len();
        let step = Path::new(name);
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let child = match openat(current.as_fd(), step, flags, Mode::empty()) {
            Err(Errno::ENOENT) if sub.create_missing => {
                match mkdirat(
                    current.as_fd(),
                    step,
                    Mode::from_bits_truncate(CREATED_DIR_MODE),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(err) => return Err(format!("{} cannot be created: {err}", step.display())),
                }
                openat(current.as_fd(), step, flags, Mode::empty())
            }
            other => other,
        }
        .map_err(|err| format!("{} cannot be opened: {err}", step.display()))?;
        let kind = fstat(child.as_fd())
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
            .map_err(|err| format!("{} cannot be read: {err}", step.display()))?;
        if kind == SFlag::S_IFLNK {
            return Err(format!(
                "{} is a symlink (it changed while systemk resolved it)",
                step.display()
            ));
        }
        if !last && kind != SFlag::S_IFDIR {
            return Err(format!("{} is not a directory", step.display()));
        }
        current = child;
    }
    Ok(current)
}

/// Detaches every mount stacked on `path` (none is fine).
fn unmount_all(path: &Path) -> io::Result<()> {
    for _ in 0..MAX_STACKED {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            // Not a mount point (any more), or not there at all.
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
    }
    Err(io::Error::other(
        "too many mounts stacked on the staging path",
    ))
}

/// An empty directory or file at `path` to bind onto, of the staged file's kind.
fn make_mount_point(path: &Path, is_dir: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() == is_dir && !meta.is_symlink() => return Ok(()),
        Ok(_) => remove_mount_point(path)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if is_dir {
        fs::DirBuilder::new().mode(STAGING_DIR_MODE).create(path)
    } else {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(drop)
    }
}

/// Removes an unmounted mount point: `rmdir` (fails on anything not empty) or `unlink`.
fn remove_mount_point(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if meta.is_dir() {
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    }
}
