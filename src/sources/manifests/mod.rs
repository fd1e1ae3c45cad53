//! Static pods: the Pods in the manifest files of one directory (the kubelet's
//! `--pod-manifest-path`), read whole and watched with inotify. Layer 5; it describes desired
//! pods and never touches systemd.
//!
//! Which files count: `*.yaml`, `*.yml` and `*.json` directly in the directory (no
//! recursion). Symlinks are followed when read, but only changes in the directory itself
//! are watched: editing a link's target elsewhere is seen at the next change here. Hidden files (`.x.yaml`, `.#x.yaml`, `.x.yaml.swp`)
//! and backups (`x.yaml~`) are ignored, so editors and `write to .tmp, then rename` never
//! expose a half-written manifest. Files are read in name order, so when two files define
//! the same namespace/name the first by name wins and the other is reported.
//!
//! A file is applied whole or not at all: a file that fails to read, parse or validate
//! contributes no pods (and so stops the pods it defined before) and is reported; it never
//! affects other files.
//!
//! After the first read, an event re-reads only the files it may have changed
//! (`file_cache.rs`): the work of one pod dropped in does not grow with the directory.

mod file_cache;
mod parse;
mod validate;
mod watch;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::sources::Error;

pub use file_cache::FileCache;
use file_cache::Stamp;
pub use parse::{Document, documents, static_pod};
pub use watch::watch;

/// Annotation naming the manifest file (within the directory) a static pod came from, so
/// logs and `systemk pods` can point at it.
pub const MANIFEST_FILE_ANNOTATION: &str = "systemk.io/manifest-file";

/// Largest manifest file read, in bytes (1 MiB): far above any real pod, and it bounds the
/// memory a stray file can take.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The result of reading a manifest directory once.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Every valid pod, files in name order and pods in file order.
    pub pods: Vec<Arc<Pod>>,
    /// One error per file that was left out, or one for the directory itself.
    pub errors: Vec<Error>,
}

/// Reads every static pod in `dir` for the node `node_name`, reading again only the
/// files `cache` does not hold as they are now (see [`FileCache`]). Blocking: call it
/// under `spawn_blocking` from async code.
pub fn load_dir(dir: &Path, node_name: &str, cache: &mut FileCache) -> Manifests {
    let mut manifests = Manifests::default();
    let files = match manifest_files(dir) {
        Ok(files) => files,
        Err(source) => {
            manifests.errors.push(Error::ReadDir {
                dir: dir.to_owned(),
                source,
            });
            cache.clear();
            return manifests;
        }
    };
    cache.keep_only(&files);
    let mut first_file: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for (path, stamp) in files {
        let pods = match cache.get(&path, stamp) {
            Some(pods) => Ok(pods),
            None => load_file(&path, node_name).map(|pods| {
                let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
                cache.insert(&path, stamp, pods.clone());
                pods
            }),
        };
        match pods.and_then(|pods| claim_names(&mut first_file, &path, pods)) {
            Ok(pods) => manifests.pods.extend(pods),
            Err(error) => manifests.errors.push(error),
        }
    }
    manifests
}

/// Whether a directory entry with this name is a manifest (see the module doc).
pub(crate) fn is_manifest_name(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let extension = Path::new(name).extension().and_then(|ext| ext.to_str());
    !name.starts_with('.')
        && !name.ends_with('~')
        && matches!(extension, Some("yaml" | "yml" | "json"))
}

/// The regular files in `dir` with a manifest name, sorted by name, each with what its
/// metadata says of its content.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, Stamp)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !is_manifest_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // metadata() follows symlinks: a link to a manifest counts, a directory does not.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push((path, Stamp::of(&meta))),
            Ok(_) => {
                tracing::debug!(path = %path.display(), "skipping a manifest name that is not a file")
            }
            // Removed between listing and stat: it is simply gone.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(path = %path.display(), %error, "cannot stat a manifest"),
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Reads the static pods of one manifest file for the node `node_name`, refusing files
/// over [`MAX_MANIFEST_BYTES`]. Blocking.
pub fn load_file(path: &Path, node_name: &str) -> Result<Vec<Pod>, Error> {
    let text = read_file(path)?;
    parse::parse_manifest(&text, path, node_name)
}

/// The text of one manifest file, refusing files over [`MAX_MANIFEST_BYTES`]. Blocking.
pub fn read_file(path: &Path) -> Result<String, Error> {
    let read_error = |source| Error::ReadFile {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let size = file
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_error)? as u64;
    if size > MAX_MANIFEST_BYTES {
        let size = std::fs::metadata(path).map_or(size, |meta| meta.len());
        return Err(Error::FileTooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    Ok(text)
}

/// Records the namespace/name of each pod of `path`, or rejects the whole file when one is
/// already taken by an earlier file or earlier in the same file.
fn claim_names(
    first_file: &mut BTreeMap<(String, String), PathBuf>,
    path: &Path,
    pods: Vec<Arc<Pod>>,
) -> Result<Vec<Arc<Pod>>, Error> {
    let mut claimed = Vec::with_capacity(pods.len());
    for pod in &pods {
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        let first = if claimed.contains(&key) {
            Some(path.to_owned())
        } else {
            first_file.get(&key).cloned()
        };
        if let Some(first) = first {
            return Err(Error::DuplicatePod {
                path: path.to_owned(),
                namespace: key.0,
                name: key.1,
                first,
            });
        }
        claimed.push(key);
    }
    for key in claimed {
        first_file.insert(key, path.to_owned());
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/manifests")
            .join(name)
    }

    fn names(manifests: &Manifests) -> Vec<String> {
        manifests
            .pods
            .iter()
            .map(|pod| {
                format!(
                    "{}/{}",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    pod.metadata.name.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }

    fn error_for<'a>(manifests: &'a Manifests, file: &str) -> &'a Error {
        manifests
            .errors
            .iter()
            .find(|error| error.to_string().contains(file))
            .unwrap_or_else(|| panic!("no error for {file}: {:#?}", manifests.errors))
    }

    #[test]
    fn mixed_directory_yields_every_valid_pod_in_order() {
        let manifests = load_dir(&fixture("mixed"), "node1", &mut FileCache::default());
        assert_eq!(
            names(&manifests),
            [
                "default/web-node1",
                "kube-system/first-node1",
                "kube-system/second-node1",
                "kube-system/dns-node1",
            ]
        );
    }

    #[test]
    fn invalid_files_are_reported_one_error_each() {
        let manifests = load_dir(&fixture("mixed"), "node1", &mut FileCache::default());
        assert_eq!(manifests.errors.len(), 4, "{:#?}", manifests.errors);
        match error_for(&manifests, "40-broken.yaml") {
            Error::Syntax { line, .. } => assert_eq!(*line, Some(6)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        match error_for(&manifests, "50-duplicate.yml") {
            Error::DuplicatePod { name, first, .. } => {
                assert_eq!(name, "web-node1");
                assert!(first.ends_with("10-web.yaml"));
            }
            other => panic!("expected a duplicate, got {other:?}"),
        }
        assert_eq!(
            error_for(&manifests, "60-bad-name.yaml").reason(),
            "InvalidPod"
        );
        assert_eq!(
            error_for(&manifests, "70-wrong-type.yaml").reason(),
            "InvalidPod"
        );
    }

    #[test]
    fn numbers_in_resources_are_quantities() {
        let manifests = load_dir(&fixture("mixed"), "node1", &mut FileCache::default());
        let web = &manifests.pods[0];
        let container = &web.spec.as_ref().unwrap().containers[0];
        let limits = container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap();
        assert_eq!(limits["cpu"].0, "1");
        assert_eq!(limits["memory"].0, "64Mi");
    }

    #[test]
    fn missing_directory_is_one_transient_error() {
        let manifests = load_dir(
            &fixture("does-not-exist"),
            "node1",
            &mut FileCache::default(),
        );
        assert!(manifests.pods.is_empty());
        assert_eq!(manifests.errors.len(), 1);
        assert!(manifests.errors[0].is_transient());
    }

    #[test]
    fn too_large_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let padding = "#".repeat(MAX_MANIFEST_BYTES as usize + 1);
        std::fs::write(dir.path().join("big.yaml"), padding).unwrap();
        let manifests = load_dir(dir.path(), "node1", &mut FileCache::default());
        assert_eq!(manifests.errors[0].reason(), "ManifestTooLarge");
        assert!(!manifests.errors[0].to_string().contains(&"#".repeat(10)));
    }

    #[test]
    fn manifest_names() {
        for name in ["a.yaml", "a.yml", "a.json", "0.yaml"] {
            assert!(is_manifest_name(name.as_ref()), "{name}");
        }
        for name in [
            ".a.yaml",
            ".#a.yaml",
            "a.yaml~",
            ".a.yaml.swp",
            "a.yaml.tmp",
            "a",
            "4913",
        ] {
            assert!(!is_manifest_name(name.as_ref()), "{name}");
        }
    }
}
