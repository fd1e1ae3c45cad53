//! The dpkg frontend lock, held by systemk itself around an install: `lock-frontend` of
//! the dpkg database (what dpkg, apt and unattended-upgrades take first) and apt's
//! archive lock, taken with open-file-description locks, which conflict with the POSIX
//! record locks apt and dpkg use. systemk then runs apt-get with
//! `Debug::NoLocking=true` and `DPKG_FRONTEND_LOCKED=true` (dpkg(1): the frontend holds
//! the lock; dpkg still takes its inner lock). apt 2.6 always takes the frontend lock
//! itself otherwise, so this is the way a caller can hold it while apt runs, and the
//! policy-rc.d guard goes into place only once no other package manager can run. Layer 1.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{FcntlArg, fcntl};
use tokio::time::Instant;

use super::error::{Error, Result};

/// dpkg's frontend lock (dpkg ≥ 1.19.1, apt ≥ 1.7).
pub(crate) const FRONTEND_LOCK: &str = "/var/lib/dpkg/lock-frontend";

/// apt's lock of its download directory, taken by `apt-get install` after the frontend
/// lock.
pub(crate) const ARCHIVES_LOCK: &str = "/var/cache/apt/archives/lock";

/// How often a held lock is tried again; apt itself tries once a second.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// The locks, held until dropped (closing the files releases them).
pub(crate) struct DpkgLock {
    _files: Vec<File>,
}

impl DpkgLock {
    /// Takes each of `paths` in order, waiting at most `timeout` for each.
    pub(crate) async fn acquire(paths: &[&Path], timeout: Duration) -> Result<Self> {
        let mut files = Vec::new();
        for path in paths {
            files.push(lock_one(path, timeout).await?);
        }
        Ok(Self { _files: files })
    }
}

async fn lock_one(path: &Path, timeout: Duration) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(Error::io("opening", path))?;
    let deadline = Instant::now() + timeout;
    let mut told = false;
    loop {
        match try_lock(&file) {
            Ok(()) => return Ok(file),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {}
            Err(errno) => return Err(Error::io("locking", path)(errno.into())),
        }
        if Instant::now() >= deadline {
            return Err(Error::DpkgLocked {
                path: PathBuf::from(path),
                waited_secs: timeout.as_secs(),
            });
        }
        if !told {
            tracing::info!(path = %path.display(), "waiting for another package manager to release the dpkg lock");
            told = true;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// A write lock on the whole file, without waiting.
fn try_lock(file: &File) -> nix::Result<()> {
    let whole_file = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(file, FcntlArg::F_OFD_SETLK(&whole_file)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock-frontend");
        let first = DpkgLock::acquire(&[&path], Duration::ZERO).await.unwrap();
        let err = DpkgLock::acquire(&[&path], Duration::ZERO)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::DpkgLocked { .. }), "{err}");
        assert!(err.is_transient());
        drop(first);
        DpkgLock::acquire(&[&path], Duration::ZERO).await.unwrap();
    }
}
