//! Restart records on disk: `<state>/pods/<uid>/containers/<container>.json`, one
//! [`RestartRecord`] each, written atomically (temp file + rename) so a crash never leaves
//! half a record. A record that cannot be read is treated as absent: the container's
//! counters start over, nothing else breaks. Layer 4.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::dirs::PodDirs;
use super::error::{Error, Result};
use super::restart::{ContainerRestarts, Exit, RestartRecord, RestartState};
use crate::atomic_file::{self, Durability};

/// A record's mode: what `File::create` gave it under systemd's default umask (022); the
/// pods directory above it is root-only.
const RECORD_FILE_MODE: u32 = 0o644;

/// The machine kept for `container`, if a readable record exists.
pub fn load(dirs: &PodDirs, uid: &str, container: &str) -> Option<ContainerRestarts> {
    let path = record_path(dirs, uid, container).ok()?;
    let text = fs::read_to_string(&path).ok()?;
    let record: RestartRecord = serde_json::from_str(&text)
        .inspect_err(|error| tracing::warn!(path = %path.display(), %error, "ignoring a damaged restart record"))
        .ok()?;
    ContainerRestarts::from_record(&record).filter(|restarts| restarts.container() == container)
}

/// The run before the current one of `container`, as the kubelet's `lastState.terminated`
/// (what `kubectl logs --previous` shows): kept while the container runs again or waits
/// to; `None` when it never ended, or ended for good (its end is then its current state).
pub fn previous_run(dirs: &PodDirs, uid: &str, container: &str) -> Option<Exit> {
    let restarts = load(dirs, uid, container)?;
    match restarts.state() {
        RestartState::Running { .. } | RestartState::BackingOff { .. } => restarts.last_exit(),
        RestartState::NotStarted | RestartState::Terminated => None,
    }
}

/// Keeps `restarts` for its container.
pub fn save(dirs: &PodDirs, uid: &str, restarts: &ContainerRestarts) -> Result<()> {
    let path = record_path(dirs, uid, restarts.container())?;
    let io_error = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let json =
        serde_json::to_vec(&restarts.to_record()).map_err(|err| io_error(io::Error::other(err)))?;
    atomic_file::write(&path, &json, RECORD_FILE_MODE, Durability::Unsynced).map_err(io_error)
}

/// Forgets the record of `container` (its spec changed: a new container).
pub fn remove(dirs: &PodDirs, uid: &str, container: &str) -> Result<()> {
    let path = record_path(dirs, uid, container)?;
    match fs::remove_file(&path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(Error::Io { path, source: err }),
        _ => Ok(()),
    }
}

fn record_path(dirs: &PodDirs, uid: &str, container: &str) -> Result<PathBuf> {
    super::dirs::check_uid(uid)?;
    let valid = !container.is_empty()
        && container
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(Error::InvalidPod {
            why: format!("container name {container:?} is not a DNS label"),
        });
    }
    Ok(dirs.records_dir(uid).join(format!("{container}.json")))
}
