//! Replacing a file so that a reader sees the old content or the new, never half of one,
//! and never the new content with the wrong mode: the content goes to a temporary file
//! beside the target (same directory, so the final `rename` is atomic), created
//! exclusively (`O_EXCL`, never an existing file or a planted symlink) with its final
//! mode set before the first byte is written, then renamed over the target. On any error,
//! and when a [`TempFile`] is dropped without being persisted, the temporary file is
//! removed and the target keeps its old content.
//!
//! Temporary names are `.<name>.<pid>-<n>.tmp`: hidden and with a suffix no reader of
//! these directories acts on (systemd loads no such unit, the manifest watcher skips dot
//! files). Blocking I/O: async callers run it under `spawn_blocking`. Layer 0: used by
//! every layer that keeps files (package, systemd, pod, server); imports nothing of them.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How far a write goes before the rename makes it visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The content is `fsync`ed before the rename: after a crash the target holds the
    /// old content or the complete new one. For files that must survive a power loss.
    Synced,
    /// No `fsync`: cheaper, for files on tmpfs or rewritten on every pass anyway.
    Unsynced,
}

/// Temporary files that fail to be created because the name exists (a leftover of a
/// crashed process with the same pid) are retried under the next name this many times.
const CREATE_ATTEMPTS: u32 = 16;

/// Makes `path` hold exactly `content`, with `mode` (not masked by the umask).
pub fn write(path: &Path, content: &[u8], mode: u32, durability: Durability) -> io::Result<()> {
    write_with(path, mode, durability, |file| file.write_all(content))
}

/// Makes `path` hold what `fill` writes, with `mode`; when `fill` fails, `path` keeps its
/// old content and the temporary file is removed.
pub fn write_with(
    path: &Path,
    mode: u32,
    durability: Durability,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let (dir, name) = split(path)?;
    let mut temp = TempFile::new_in(dir, name, mode)?;
    fill(temp.file_mut())?;
    temp.persist(path, durability)
}

/// A temporary file beside its future name, removed on drop unless persisted.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates an empty temporary file in `dir`, named after `name`, with `mode` already
    /// set, so its content is never readable with a wider mode.
    pub fn new_in(dir: &Path, name: &str, mode: u32) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut attempt = 0;
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
            match create_exclusive(&path, mode) {
                Ok(file) => {
                    let temp = Self {
                        file,
                        path,
                        persisted: false,
                    };
                    // The creation mode was masked by the umask, so it was never wider
                    // than `mode`; this makes it exactly `mode` before anything is written.
                    temp.file.set_permissions(Permissions::from_mode(mode))?;
                    return Ok(temp);
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    attempt += 1;
                    if attempt >= CREATE_ATTEMPTS {
                        return Err(err);
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Where the temporary file is, for programs that read it before it is persisted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, to write the content to.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Renames the file to `target` (in the same directory), replacing what is there.
    /// On error the temporary file is removed and `target` is untouched.
    pub fn persist(mut self, target: &Path, durability: Durability) -> io::Result<()> {
        if durability == Durability::Synced {
            self.file.sync_all()?;
        }
        fs::rename(&self.path, target)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.persisted {
            return;
        }
        if let Err(error) = fs::remove_file(&self.path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove a temporary file");
        }
    }
}

/// Creates `path` with `mode`; an existing file or symlink there is an error
/// (`O_CREAT | O_EXCL` never follows a symlink).
fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// The directory and file name of `path`, which must name a file.
fn split(path: &Path) -> io::Result<(&Path, &str)> {
    let name = path.file_name().and_then(|name| name.to_str());
    match (path.parent(), name) {
        (Some(dir), Some(name)) => Ok((
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            name,
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file with a UTF-8 name", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_content_with_the_exact_mode_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write(&path, b"old", 0o644, Durability::Synced).unwrap();
        write(&path, b"new", 0o600, Durability::Unsynced).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names(dir.path()), ["a.json"]);
    }

    #[test]
    fn mode_is_set_before_any_content_and_target_unseen_until_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("key.pem");
        let mut temp = TempFile::new_in(dir.path(), "key.pem", 0o600).unwrap();
        assert_eq!(mode(temp.path()), 0o600);
        assert_eq!(fs::metadata(temp.path()).unwrap().len(), 0);
        temp.file_mut().write_all(b"secret").unwrap();
        assert!(!target.exists());
        let temp_path = temp.path().to_owned();
        assert!(
            temp_path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".key.pem.")
        );
        temp.persist(&target, Durability::Synced).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"secret");
        assert!(!temp_path.exists());
    }

    #[test]
    fn a_failing_write_keeps_the_old_content_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record");
        write(&path, b"old", 0o644, Durability::Unsynced).unwrap();
        let err = write_with(&path, 0o644, Durability::Synced, |file| {
            file.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["record"]);
    }

    #[test]
    fn a_failing_rename_keeps_the_target_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be replaced by a file.
        let target = dir.path().join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), "x").unwrap();
        assert!(write(&target, b"new", 0o644, Durability::Unsynced).is_err());
        assert_eq!(names(dir.path()), ["busy"]);
        assert_eq!(names(&target), ["inside"]);
    }

    #[test]
    fn dropped_temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut temp = TempFile::new_in(dir.path(), "download", 0o644).unwrap();
        temp.file_mut().write_all(b"partial").unwrap();
        drop(temp);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_planted_temp_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let planted = dir.path().join(".f.1-1.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let err = create_exclusive(&planted, 0o644).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        assert_eq!(
            write(Path::new("/"), b"x", 0o644, Durability::Unsynced)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
