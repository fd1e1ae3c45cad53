//! Static pods: the Pods in the manifest files of one directory (the kubelet's
//! `--pod-manifest-path`), read whole and watched with inotify. Layer 5; it describes desired
//! pods and never touches systemd.
//!
//! Which files count: `*.yaml`, `*.yml` and `*.json` directly in the directory (no
//! recursion). Symlinks are followed when read, but only changes in the directory itself
//! are watched: editing a link's target elsewhere is seen when the link itself changes, or
//! when the directory is read whole again (a new watch, lost events). Hidden files (`.x.yaml`, `.#x.yaml`, `.x.yaml.swp`)
//! and backups (`x.yaml~`) are ignored, so editors and `write to .tmp, then rename` never
//! expose a half-written manifest. Files are read in name order, so when two files define
//! the same namespace/name the first by name wins and the other is reported.
//!
//! A file is applied whole or not at all: a file that fails to read, parse or validate
//! contributes no pods (and so stops the pods it defined before) and is reported; it never
//! affects other files.
//!
//! After the first read, an event re-reads only the file it names and sends only the pods
//! that changed (`files.rs`): the work of one pod dropped in does not grow with the
//! directory.

mod files;
mod parse;
mod validate;
mod watch;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::sources::Error;

pub use files::ManifestFiles;
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

/// Reads every static pod in `dir` for the node `node_name`, once. Blocking: call it
/// under `spawn_blocking` from async code.
pub fn load_dir(dir: &Path, node_name: &str) -> Manifests {
    let mut files = ManifestFiles::new(dir.to_owned(), node_name.to_owned());
    if let Err(error) = files.read_all() {
        return Manifests {
            pods: Vec::new(),
            errors: vec![error],
        };
    }
    files.into_manifests()
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
        let manifests = load_dir(&fixture("mixed"), "node1");
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
        let manifests = load_dir(&fixture("mixed"), "node1");
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
        let manifests = load_dir(&fixture("mixed"), "node1");
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
        let manifests = load_dir(&fixture("does-not-exist"), "node1");
        assert!(manifests.pods.is_empty());
        assert_eq!(manifests.errors.len(), 1);
        assert!(manifests.errors[0].is_transient());
    }

    #[test]
    fn too_large_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let padding = "#".repeat(MAX_MANIFEST_BYTES as usize + 1);
        std::fs::write(dir.path().join("big.yaml"), padding).unwrap();
        let manifests = load_dir(dir.path(), "node1");
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
