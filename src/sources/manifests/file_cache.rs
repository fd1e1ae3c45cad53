//! The pods of each manifest file as last read, so that reading the directory again after
//! an event parses only the files that changed: one pod dropped into a directory of a
//! thousand costs one parse, not a thousand. A file is read again when its metadata
//! (device, inode, size, modification and change times, of the link's target for a
//! symlink) differ from the last read, or when an inotify event named it
//! ([`FileCache::forget`]): timestamps are only as fine as the kernel's clock tick, so two
//! writes of the same size within one tick look alike, but each write ends with an event.
//! Files that failed to read or parse are not kept: they are read again every time.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

/// What a file's metadata says of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stamp {
    pub(super) fn of(meta: &Metadata) -> Self {
        Self {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The pods of the manifest files read before, by path.
#[derive(Debug, Default)]
pub struct FileCache {
    files: HashMap<PathBuf, (Stamp, Vec<Arc<Pod>>)>,
}

impl FileCache {
    /// The pods of `path` if it was read before and still has this `stamp`.
    pub(super) fn get(&self, path: &Path, stamp: Stamp) -> Option<Vec<Arc<Pod>>> {
        self.files
            .get(path)
            .filter(|(kept, _)| *kept == stamp)
            .map(|(_, pods)| pods.clone())
    }

    pub(super) fn insert(&mut self, path: &Path, stamp: Stamp, pods: Vec<Arc<Pod>>) {
        self.files.insert(path.to_owned(), (stamp, pods));
    }

    /// Drops every file that is not among `files` (gone, or no longer a manifest).
    pub(super) fn keep_only(&mut self, files: &[(PathBuf, Stamp)]) {
        if self.files.len() > files.len() || self.files.keys().any(|path| !listed(files, path)) {
            self.files.retain(|path, _| listed(files, path));
        }
    }

    /// Reads `path` again next time, whatever its metadata says.
    pub(crate) fn forget(&mut self, path: &Path) {
        self.files.remove(path);
    }

    /// Reads every file again next time.
    pub(crate) fn clear(&mut self) {
        self.files.clear();
    }
}

/// Whether `path` is among `files`, which are sorted by path.
fn listed(files: &[(PathBuf, Stamp)], path: &Path) -> bool {
    files
        .binary_search_by(|(listed, _)| listed.as_path().cmp(path))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::{FileCache, load_dir};
    use std::sync::Arc;

    fn pod(name: &str, image: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n\
             spec:\n  containers:\n  - name: c\n    image: {image}\n"
        )
    }

    fn image(pod: &k8s_openapi::api::core::v1::Pod) -> &str {
        pod.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref()
            .unwrap()
    }

    #[test]
    fn unchanged_files_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = FileCache::default();
        std::fs::write(dir.path().join("a.yaml"), pod("a", "/bin/a")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), pod("b", "/bin/b")).unwrap();
        let first = load_dir(dir.path(), "n", &mut cache);
        std::fs::write(dir.path().join("c.yaml"), pod("c", "/bin/c")).unwrap();
        let second = load_dir(dir.path(), "n", &mut cache);
        assert_eq!(second.pods.len(), 3);
        // The same allocations: a and b were not parsed again.
        assert!(Arc::ptr_eq(&first.pods[0], &second.pods[0]));
        assert!(Arc::ptr_eq(&first.pods[1], &second.pods[1]));
    }

    #[test]
    fn a_rewrite_is_read_even_when_its_metadata_looks_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        let mut cache = FileCache::default();
        std::fs::write(&path, pod("a", "/bin/x")).unwrap();
        let times = std::fs::metadata(&path).unwrap();
        assert_eq!(
            image(&load_dir(dir.path(), "n", &mut cache).pods[0]),
            "/bin/x"
        );
        // Same size, and the modification time put back: only the change time differs.
        std::fs::write(&path, pod("a", "/bin/y")).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(times.modified().unwrap()).unwrap();
        assert_eq!(
            image(&load_dir(dir.path(), "n", &mut cache).pods[0]),
            "/bin/y"
        );
        // What the watcher does for every event naming the file.
        std::fs::write(&path, pod("a", "/bin/z")).unwrap();
        cache.forget(&path);
        assert_eq!(
            image(&load_dir(dir.path(), "n", &mut cache).pods[0]),
            "/bin/z"
        );
    }

    #[test]
    fn removed_and_broken_files_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = FileCache::default();
        std::fs::write(dir.path().join("a.yaml"), pod("a", "/bin/a")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), "kind: [").unwrap();
        let read = load_dir(dir.path(), "n", &mut cache);
        assert_eq!((read.pods.len(), read.errors.len()), (1, 1));
        assert_eq!(cache.files.len(), 1);
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        let read = load_dir(dir.path(), "n", &mut cache);
        assert_eq!((read.pods.len(), read.errors.len()), (0, 1));
        assert!(cache.files.is_empty());
    }
}
