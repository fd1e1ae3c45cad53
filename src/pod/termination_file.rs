//! The termination-message files on the host (`unit::termination_file_path`): made with
//! the pod's directories, so the unit's bind has its source even at boot; emptied
//! whenever systemk starts the container (the kubelet gives every container instance a
//! file of its own); read after a run ended, its last 4096 bytes only. Mode 0666 as the
//! kubelet's, so a container of any user can write it; its directory is root-only, so
//! only the bind reaches it. Every open refuses a symlink (`O_NOFOLLOW`) and reads only a
//! regular file: nothing planted there can make systemk read a host file into a status.
//! Layer 4.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

use super::error::{Error, Result};
use super::termination_message::{FileRead, MAX_FILE_BYTES};
use crate::unit::termination_file_path;

/// The file's mode: writable by the container's user, whoever it is (as the kubelet's).
const FILE_MODE: u32 = 0o666;
/// The directory's mode: root only.
const DIR_MODE: u32 = 0o700;
/// `open(2)` flags: a final symlink fails the open, and a FIFO planted there cannot
/// block it.
const NO_FOLLOW_NO_BLOCK: i32 = OFlag::O_NOFOLLOW.bits() | OFlag::O_NONBLOCK.bits();

/// Creates `container`'s file (and its directory) unless it exists; keeps its content.
pub fn ensure(pod_dir: &Path, container: &str) -> Result<()> {
    open(pod_dir, container, false).map(drop)
}

/// Empties `container`'s file (creating it if missing), before systemk starts it.
pub fn reset(pod_dir: &Path, container: &str) -> Result<()> {
    open(pod_dir, container, true).map(drop)
}

/// What `container`'s file holds now: its last [`MAX_FILE_BYTES`] bytes.
pub fn read(pod_dir: &Path, container: &str) -> FileRead {
    let path = termination_file_path(pod_dir, container);
    let failed = |err: io::Error| FileRead::Failed(format!("{}: {err}", path.display()));
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(NO_FOLLOW_NO_BLOCK)
        .open(&path);
    let mut file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return FileRead::Missing,
        Err(err) => return failed(err),
    };
    match tail(&mut file) {
        Ok(bytes) => FileRead::Bytes(bytes),
        Err(err) => failed(err),
    }
}

fn tail(file: &mut File) -> io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let max = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX);
    file.seek(SeekFrom::Start(meta.len().saturating_sub(max)))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn open(pod_dir: &Path, container: &str, truncate: bool) -> Result<()> {
    let path = termination_file_path(pod_dir, container);
    let io_error = |source| Error::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        make_dir(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(FILE_MODE)
        .custom_flags(NO_FOLLOW_NO_BLOCK)
        .open(&path)
        .map_err(io_error)?;
    if !file.metadata().map_err(io_error)?.is_file() {
        return Err(io_error(io::Error::other("not a regular file")));
    }
    // The umask narrowed the mode given to open.
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(io_error)
}

/// Creates `dir` unless it exists as a directory; a symlink there is refused.
fn make_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(dir)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::other("not a directory"))
            }
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_made_kept_emptied_and_read_from_its_end() {
        let pod = tempfile::tempdir().unwrap();
        ensure(pod.path(), "app").unwrap();
        let path = termination_file_path(pod.path(), "app");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE);
        assert_eq!(read(pod.path(), "app"), FileRead::Bytes(Vec::new()));
        let long = [b"x".repeat(10), b"y".repeat(MAX_FILE_BYTES)].concat();
        fs::write(&path, &long).unwrap();
        ensure(pod.path(), "app").unwrap();
        assert_eq!(
            read(pod.path(), "app"),
            FileRead::Bytes(b"y".repeat(MAX_FILE_BYTES))
        );
        reset(pod.path(), "app").unwrap();
        assert_eq!(read(pod.path(), "app"), FileRead::Bytes(Vec::new()));
        assert_eq!(read(pod.path(), "other"), FileRead::Missing);
    }

    #[test]
    fn attack_a_symlink_to_a_host_file_is_never_read_or_written() {
        let pod = tempfile::tempdir().unwrap();
        let secret = pod.path().join("shadow");
        fs::write(&secret, "root:secret").unwrap();
        let path = termination_file_path(pod.path(), "app");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        assert!(matches!(read(pod.path(), "app"), FileRead::Failed(_)));
        assert!(reset(pod.path(), "app").is_err());
        assert!(ensure(pod.path(), "app").is_err());
        assert_eq!(fs::read_to_string(&secret).unwrap(), "root:secret");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(matches!(read(pod.path(), "app"), FileRead::Failed(_)));
    }
}
