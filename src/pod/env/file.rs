//! Writing a container's environment file (`unit::env_file_path`, on the runtime tmpfs):
//! mode 0600, owned by root (systemd reads it as root before it drops privileges), written
//! to a temporary file and renamed, so a unit starting meanwhile reads the old or the new
//! file, never half of one. Whether the content changed is what restarts a container
//! whose environment changed: the unit file names the environment file and holds no
//! value, so its spec hash cannot tell, and nothing derived from a value (not even a
//! hash, which would let anyone test guesses) is written where others can read it.
//! Layer 4.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use crate::atomic_file::{self, Durability};
use crate::pod::error::{Error, Result};

/// The environment file's mode: only root, which systemd reads it as, may read it.
const ENV_FILE_MODE: u32 = 0o600;
/// Mode of the directory holding a pod's environment files.
const ENV_DIR_MODE: u32 = 0o700;

/// Makes the file at `path` hold `content` (`None`: no file). Returns whether it changed:
/// a file written where none was, or with other content, or removed.
pub fn sync_env_file(path: &Path, content: Option<&str>) -> Result<bool> {
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let existing = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error(err)),
    };
    if existing.as_deref() == content.map(str::as_bytes) {
        return Ok(false);
    }
    let Some(content) = content else {
        return match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error(err)),
            _ => Ok(true),
        };
    };
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(ENV_DIR_MODE)
            .create(dir)
            .map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            })?;
    }
    // On the runtime tmpfs: nothing to fsync.
    atomic_file::write(
        path,
        content.as_bytes(),
        ENV_FILE_MODE,
        Durability::Unsynced,
    )
    .map_err(io_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_root_only_and_tells_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env/main.env");
        assert!(sync_env_file(&path, Some("A=\"1\"\n")).unwrap());
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o700
        );
        assert!(!sync_env_file(&path, Some("A=\"1\"\n")).unwrap());
        assert!(sync_env_file(&path, Some("A=\"2\"\n")).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "A=\"2\"\n");
        assert!(sync_env_file(&path, None).unwrap());
        assert!(!path.exists());
        assert!(!sync_env_file(&path, None).unwrap());
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 0);
    }
}
