//! The mark of an evicted pod: a file `evicted` holding the eviction message, first in
//! the pod's runtime directory (a tmpfs: writable even when the state file system is what
//! ran full), then, once the pod's volumes are gone, in its state directory too, so the
//! pod stays evicted across restarts of systemk and reboots. A pass that finds the mark
//! never starts the pod again; the files go with the pod's directories when it is
//! deleted. Layer 4.

use std::io;
use std::path::Path;

use crate::pod::PodDirs;

/// The file name of the mark.
const MARK: &str = "evicted";

/// Marks the pod `uid` evicted with `message` (in its runtime directory).
pub fn mark(dirs: &PodDirs, uid: &str, message: &str) -> io::Result<()> {
    let dir = dirs.runtime_pod_dir(uid);
    std::fs::create_dir_all(&dir)?;
    write(&dir, message)
}

/// Copies the mark into the pod's state directory, which outlives a reboot.
pub fn persist(dirs: &PodDirs, uid: &str, message: &str) -> io::Result<()> {
    let dir = dirs.pod_dir(uid);
    if dir.join(MARK).exists() {
        return Ok(());
    }
    write(&dir, message)
}

/// The eviction message of the pod `uid`, when it was evicted.
pub fn read(dirs: &PodDirs, uid: &str) -> Option<String> {
    [dirs.runtime_pod_dir(uid), dirs.pod_dir(uid)]
        .iter()
        .find_map(|dir| std::fs::read_to_string(dir.join(MARK)).ok())
}

fn write(dir: &Path, message: &str) -> io::Result<()> {
    crate::atomic_file::write(
        &dir.join(MARK),
        message.as_bytes(),
        0o600,
        crate::atomic_file::Durability::Synced,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_read_from_either_directory() {
        let root = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(&root.path().join("state"), &root.path().join("run"));
        assert_eq!(read(&dirs, "u"), None);
        mark(&dirs, "u", "low on memory").unwrap();
        assert_eq!(read(&dirs, "u").as_deref(), Some("low on memory"));
        std::fs::create_dir_all(dirs.pod_dir("u")).unwrap();
        persist(&dirs, "u", "low on memory").unwrap();
        std::fs::remove_dir_all(dirs.runtime_pod_dir("u")).unwrap();
        assert_eq!(read(&dirs, "u").as_deref(), Some("low on memory"));
    }
}
