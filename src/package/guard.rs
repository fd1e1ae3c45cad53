//! The no-daemon-start guard: while systemk runs apt, `/usr/sbin/policy-rc.d` is systemk's
//! own script that denies every action (exit 101), so maintainer scripts cannot start,
//! restart or stop daemons. Debian 12's `invoke-rc.d` and `deb-systemd-invoke` only look
//! at that fixed path (no environment override), so the guard has to be placed there.
//! A policy-rc.d already on the host is never relied on and never lost: it is hard-linked
//! aside, replaced atomically, and renamed back when the guard drops — also on error and on
//! cancellation. An exclusive `flock` on the directory keeps two systemk processes from
//! interleaving. Layer 1; blocking file operations, call [`PolicyGuard::install`] under
//! `spawn_blocking`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::error::{Error, Result};
use crate::atomic_file::{self, Durability};

/// Where invoke-rc.d and deb-systemd-invoke look (Debian policy, "invoke-rc.d" interface).
pub const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// The script is executable by invoke-rc.d, like any policy-rc.d.
const SCRIPT_MODE: u32 = 0o755;

/// Marks the script as systemk's, so a copy left by a crash is recognised and replaced.
const MARKER: &str = "systemk-policy-rc.d-guard";

/// What the guard prints before the service and action it refused.
pub(crate) const DENIED: &str = "systemk policy-rc.d: denied";

/// The guard's text. It reports each denial on stderr, which lands in apt's output.
fn script() -> String {
    format!(
        "#!/bin/sh\n# {MARKER}: systemk is installing packages; no daemon may be started.\n\
         echo \"{DENIED} $*\" >&2\nexit 101\n"
    )
}

/// systemk's policy-rc.d, in place until dropped.
pub(crate) struct PolicyGuard {
    path: PathBuf,
    saved: PathBuf,
    _lock: Flock<File>,
}

impl PolicyGuard {
    /// Waits for other systemk processes' guards, then puts systemk's script at `path`.
    pub(crate) fn install(path: &Path) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let dir_handle = File::open(dir).map_err(Error::io("opening", dir))?;
        let lock = Flock::lock(dir_handle, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::io("locking", dir)(errno.into()))?;
        let mut saved = path.as_os_str().to_owned();
        saved.push(".systemk-saved");
        // From here on Drop restores whatever state the steps below reached.
        let guard = Self {
            path: path.to_owned(),
            saved: PathBuf::from(saved),
            _lock: lock,
        };
        guard.save_foreign()?;
        guard.put_script()?;
        tracing::debug!(path = %guard.path.display(), "policy-rc.d guard in place");
        Ok(guard)
    }

    /// Keeps a policy-rc.d that is not systemk's under the saved name. An existing saved
    /// copy means a crashed run already did this, and is the host's original.
    fn save_foreign(&self) -> Result<()> {
        if fs::symlink_metadata(&self.saved).is_ok() {
            return Ok(());
        }
        match fs::read(&self.path) {
            Ok(text) if is_ours(&text) => Ok(()),
            Ok(_) => {
                fs::hard_link(&self.path, &self.saved).map_err(Error::io("saving", &self.path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("reading", &self.path)(e)),
        }
    }

    /// Writes the script beside its place and renames it there, so the path never holds
    /// a half-written file and a host policy-rc.d is replaced without a gap.
    fn put_script(&self) -> Result<()> {
        atomic_file::write(
            &self.path,
            script().as_bytes(),
            SCRIPT_MODE,
            Durability::Synced,
        )
        .map_err(Error::io("writing", &self.path))
    }
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        let restored = if fs::symlink_metadata(&self.saved).is_ok() {
            fs::rename(&self.saved, &self.path)
        } else {
            match fs::remove_file(&self.path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        match restored {
            Ok(()) => tracing::debug!(path = %self.path.display(), "policy-rc.d guard removed"),
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "cannot remove the policy-rc.d guard")
            }
        }
    }
}

fn is_ours(text: &[u8]) -> bool {
    text.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn guard_is_removed_when_none_existed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy-rc.d");
        let guard = PolicyGuard::install(&path).unwrap();
        assert!(is_ours(&fs::read(&path).unwrap()));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
        drop(guard);
        assert!(!path.exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }

    #[test]
    fn host_script_is_replaced_then_restored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy-rc.d");
        fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        let guard = PolicyGuard::install(&path).unwrap();
        assert!(is_ours(&fs::read(&path).unwrap()));
        drop(guard);
        assert_eq!(fs::read_to_string(&path).unwrap(), "#!/bin/sh\nexit 0\n");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "saved copy gone"
        );
    }

    #[test]
    fn host_symlink_is_restored_as_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("declarative-policy");
        fs::write(&target, "#!/bin/sh\nexit 0\n").unwrap();
        let path = dir.path().join("policy-rc.d");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        drop(PolicyGuard::install(&path).unwrap());
        assert_eq!(fs::read_link(&path).unwrap(), target);
        assert_eq!(fs::read_to_string(&target).unwrap(), "#!/bin/sh\nexit 0\n");
    }

    #[test]
    fn leftover_of_a_crash_restores_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy-rc.d");
        fs::write(&path, script()).unwrap();
        fs::write(dir.path().join("policy-rc.d.systemk-saved"), "original").unwrap();
        drop(PolicyGuard::install(&path).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "original");
    }

    #[test]
    fn leftover_without_original_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy-rc.d");
        fs::write(&path, script()).unwrap();
        drop(PolicyGuard::install(&path).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn script_denies_every_action() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy-rc.d");
        let _guard = PolicyGuard::install(&path).unwrap();
        // Another test thread forking while the script was open for writing holds it open
        // until its exec: the kernel then refuses to run it (ETXTBSY) for a moment.
        let status = (0..50)
            .find_map(|_| {
                match std::process::Command::new(&path)
                    .args(["uptimed", "start"])
                    .output()
                {
                    Err(err) if err.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        None
                    }
                    other => Some(other),
                }
            })
            .expect("the script stayed busy")
            .unwrap();
        assert_eq!(status.status.code(), Some(101));
        assert!(String::from_utf8_lossy(&status.stderr).contains("denied uptimed start"));
    }
}
