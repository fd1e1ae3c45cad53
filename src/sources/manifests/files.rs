//! The manifest files of one directory as last read, and what the reconciler was sent of
//! them. The directory is read whole only when the watch starts or may have missed events;
//! after that an inotify event names the file it concerns, only that file is read again,
//! and only the pods that changed are sent: one pod dropped into a directory of a thousand
//! costs one file's work. Which file keeps a namespace/name two files define is decided
//! again only for the files that share it ([`crate::claims`]). Blocking (file reads): the
//! watcher calls it under `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::{Manifests, is_manifest_name, load_file};
use crate::claims::{Claims, Standing};
use crate::error_chain::chain;
use crate::sources::{Error, SourceId, SourceUpdate};

/// A namespace and a name a file's pods claim.
type PodName = (String, String);

/// The files of one manifest directory.
#[derive(Debug)]
pub struct ManifestFiles {
    dir: PathBuf,
    node_name: String,
    /// Every manifest file read, by path: its pods, or why it was left out.
    files: BTreeMap<PathBuf, Result<Vec<Arc<Pod>>, Error>>,
    /// Each readable file's claim on the namespace/names of its pods; the first file by
    /// name keeps a pod name, and a file that loses one is left out whole.
    claims: Claims<PathBuf, PodName>,
    /// Files read, gone, or whose claim may have changed since the last update.
    touched: BTreeSet<PathBuf>,
    /// The pods of each file in the set the reconciler has; `None` before the first update.
    sent: Option<BTreeMap<PathBuf, Vec<Arc<Pod>>>>,
    /// Why each file is left out, as last logged.
    logged: HashMap<PathBuf, String>,
}

impl ManifestFiles {
    /// No file read yet from `dir`, whose pods are for the node `node_name`.
    pub fn new(dir: PathBuf, node_name: String) -> Self {
        ManifestFiles {
            dir,
            node_name,
            files: BTreeMap::new(),
            claims: Claims::default(),
            touched: BTreeSet::new(),
            sent: None,
            logged: HashMap::new(),
        }
    }

    /// Reads every manifest file again. When the directory cannot be listed it holds no
    /// file, and the error says why.
    pub fn read_all(&mut self) -> Result<(), Error> {
        let listed = match manifest_files(&self.dir) {
            Ok(listed) => listed,
            Err(source) => {
                self.forget_all();
                return Err(Error::ReadDir {
                    dir: self.dir.clone(),
                    source,
                });
            }
        };
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|path| listed.binary_search(path).is_err())
            .cloned()
            .collect();
        for path in gone {
            self.forget(path);
        }
        for path in listed {
            self.read(path);
        }
        Ok(())
    }

    /// Reads again the entries `names` of the directory: changed, new or gone.
    pub fn read_names(&mut self, names: impl IntoIterator<Item = OsString>) {
        for name in names {
            let path = self.dir.join(&name);
            if is_manifest_name(&name) && is_file(&path) {
                self.read(path);
            } else {
                self.forget(path);
            }
        }
    }

    /// Holds no file (the directory is gone).
    pub fn forget_all(&mut self) {
        let all: Vec<PathBuf> = self.files.keys().cloned().collect();
        for path in all {
            self.forget(path);
        }
    }

    /// What changed for the reconciler since the last update, logging each file newly
    /// left out: the whole set the first time, then the pods of the files touched since,
    /// when they changed; `None` when nothing did.
    pub fn update(&mut self) -> Option<SourceUpdate> {
        let touched = std::mem::take(&mut self.touched);
        for path in &touched {
            self.log_left_out(path);
        }
        let Some(mut sent) = self.sent.take() else {
            let all: BTreeMap<PathBuf, Vec<Arc<Pod>>> = self
                .files
                .keys()
                .map(|path| (path.clone(), self.contributed(path)))
                .filter(|(_, pods)| !pods.is_empty())
                .collect();
            let pods = all.values().flatten().cloned().collect();
            self.sent = Some(all);
            return Some(SourceUpdate::set(SourceId::File, pods));
        };
        let (mut pods, mut gone) = (Vec::new(), Vec::new());
        for path in touched {
            let now = self.contributed(&path);
            let before = sent.remove(&path).unwrap_or_default();
            for pod in &now {
                let same = before.iter().any(|old| {
                    old.metadata.uid == pod.metadata.uid && (Arc::ptr_eq(old, pod) || old == pod)
                });
                if !same {
                    pods.push(Arc::clone(pod));
                }
            }
            for old in &before {
                if !now.iter().any(|pod| pod.metadata.uid == old.metadata.uid) {
                    gone.push(old.metadata.uid.clone().unwrap_or_default());
                }
            }
            if !now.is_empty() {
                sent.insert(path, now);
            }
        }
        self.sent = Some(sent);
        if pods.is_empty() && gone.is_empty() {
            return None;
        }
        Some(SourceUpdate::changed(SourceId::File, pods, gone))
    }

    /// Every valid pod and every file left out (the directory read once).
    pub(super) fn into_manifests(mut self) -> Manifests {
        let mut manifests = Manifests::default();
        let paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        for path in paths {
            manifests.pods.extend(self.contributed(&path));
            if let Some(error) = self.left_out(&path) {
                manifests.errors.push(error);
            } else if let Some(Err(error)) = self.files.remove(&path) {
                manifests.errors.push(error);
            }
        }
        manifests
    }

    fn read(&mut self, path: PathBuf) {
        let outcome = load_file(&path, &self.node_name)
            .map(|pods| pods.into_iter().map(Arc::new).collect::<Vec<_>>())
            .and_then(|pods| {
                let names = names_of(&path, &pods)?;
                Ok((pods, names))
            });
        let (outcome, claim) = match outcome {
            Ok((pods, names)) => (Ok(pods), Some(names)),
            Err(error) => (Err(error), None),
        };
        self.touched
            .extend(self.claims.update([(path.clone(), claim)]));
        self.touched.insert(path.clone());
        self.files.insert(path, outcome);
    }

    fn forget(&mut self, path: PathBuf) {
        if self.files.remove(&path).is_none() {
            return;
        }
        self.touched
            .extend(self.claims.update([(path.clone(), None)]));
        self.touched.insert(path);
    }

    /// The pods `path` puts in the set: all of its pods while it keeps their names.
    fn contributed(&self, path: &Path) -> Vec<Arc<Pod>> {
        match (self.files.get(path), self.claims.standing(&path.to_owned())) {
            (Some(Ok(pods)), Some(Standing::Holds)) => pods.clone(),
            _ => Vec::new(),
        }
    }

    /// The duplicate that leaves `path` out, if an earlier file keeps one of its names.
    fn left_out(&self, path: &Path) -> Option<Error> {
        match self.claims.standing(&path.to_owned())? {
            Standing::Holds => None,
            Standing::SetAside { key, by } => Some(Error::DuplicatePod {
                path: path.to_owned(),
                namespace: key.0.clone(),
                name: key.1.clone(),
                first: by.clone(),
            }),
        }
    }

    /// Logs why `path` is left out, unless that was logged last time.
    fn log_left_out(&mut self, path: &Path) {
        let why = match self.files.get(path) {
            Some(Err(error)) => Some((error.reason(), chain(error))),
            _ => self
                .left_out(path)
                .map(|error| (error.reason(), chain(&error))),
        };
        let Some((reason, text)) = why else {
            self.logged.remove(path);
            return;
        };
        if self.logged.get(path) != Some(&text) {
            tracing::warn!(reason, error = %text, "static pod manifest left out");
            self.logged.insert(path.to_owned(), text);
        }
    }
}

/// The namespace/names of `pods` of the file `path`; an error when the file defines one
/// twice.
fn names_of(path: &Path, pods: &[Arc<Pod>]) -> Result<Vec<PodName>, Error> {
    let mut names: Vec<PodName> = Vec::with_capacity(pods.len());
    for pod in pods {
        let name = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        if names.contains(&name) {
            return Err(Error::DuplicatePod {
                path: path.to_owned(),
                namespace: name.0,
                name: name.1,
                first: path.to_owned(),
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// Whether `path` is a regular file, following a symlink.
fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file())
}

/// The regular files in `dir` with a manifest name, sorted.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !is_manifest_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // metadata() follows symlinks: a link to a manifest counts, a directory does not.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(path),
            Ok(_) => {
                tracing::debug!(path = %path.display(), "skipping a manifest name that is not a file")
            }
            // Removed between listing and stat: it is simply gone.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(path = %path.display(), %error, "cannot stat a manifest"),
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
