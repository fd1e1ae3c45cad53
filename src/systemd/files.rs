//! Unit files on disk: written atomically ([`crate::atomic_file`], so systemd never reads a
//! half-written unit), removed, listed and read back. Only files named after a
//! [`UnitName`] or a [`SliceName`] are touched, so a pod can never name a file outside
//! `dir`.

use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use crate::atomic_file::{self, Durability};
use crate::unit::{KubernetesMeta, SliceName, UNIT_PREFIX, UnitFile, UnitName};

/// Unit files are world-readable like every file in `/etc/systemd/system`; secrets never
/// go into them.
const UNIT_FILE_MODE: u32 = 0o644;

/// Writes `content` as `dir/<name>` atomically. The temporary file's leading dot and
/// `.tmp` suffix (no unit type) keep systemd from ever loading it.
pub(super) async fn write(dir: &Path, name: &UnitName, content: &str) -> Result<()> {
    write_named(dir, name.as_str(), content).await
}

/// Writes `content` as `dir/<file_name>` atomically; `file_name` is a validated
/// [`UnitName`] or [`SliceName`], never a string straight from a pod.
pub(super) async fn write_named(dir: &Path, file_name: &str, content: &str) -> Result<()> {
    let path = dir.join(file_name);
    let (target, content) = (path.clone(), content.to_owned());
    // No fsync, as before: a unit file is rewritten from the pod on every pass.
    let written = tokio::task::spawn_blocking(move || {
        atomic_file::write(
            &target,
            content.as_bytes(),
            UNIT_FILE_MODE,
            Durability::Unsynced,
        )
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    written.map_err(|source| Error::Io {
        operation: "write unit file",
        path,
        source,
    })
}

/// Deletes `dir/<name>`; a file that is already gone is fine.
pub(super) async fn remove(dir: &Path, name: &UnitName) -> Result<()> {
    remove_named(dir, name.as_str()).await.map(drop)
}

/// Deletes `dir/<file_name>` ([`write_named`]'s names); a file already gone is fine.
/// Whether there was one.
pub(super) async fn remove_named(dir: &Path, file_name: &str) -> Result<bool> {
    let path = dir.join(file_name);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => Ok(true),
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Io {
            operation: "remove unit file",
            path,
            source,
        }),
    }
}

/// The systemk unit files in `dir`; a missing `dir` holds none.
pub(super) async fn list(dir: &Path) -> Result<Vec<UnitName>> {
    let names = file_names(dir, "list unit files in").await?;
    Ok(names
        .into_iter()
        .filter(|name| name.starts_with(UNIT_PREFIX))
        .filter_map(|name| name.parse::<UnitName>().ok())
        .collect())
}

/// The pod slices in `dir` ([`SliceName::parse_pod`]), with their pods' UIDs; a missing
/// `dir` holds none.
pub(super) async fn list_pod_slices(dir: &Path) -> Result<Vec<(SliceName, String)>> {
    let names = file_names(dir, "list slices in").await?;
    Ok(names
        .iter()
        .filter_map(|name| SliceName::parse_pod(name))
        .collect())
}

/// The UTF-8 file names in `dir`; a missing `dir` holds none.
async fn file_names(dir: &Path, operation: &'static str) -> Result<Vec<String>> {
    let io = |source| Error::Io {
        operation,
        path: dir.to_owned(),
        source,
    };
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io(source)),
    };
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(io)? {
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// The `[X-Kubernetes]` metadata of the unit file at `path`; `None` when there is no file.
pub(super) async fn read_meta(path: PathBuf) -> Result<Option<KubernetesMeta>> {
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                operation: "read unit file",
                path,
                source,
            });
        }
    };
    UnitFile::parse(&text)
        .and_then(|unit| KubernetesMeta::from_unit(&unit))
        .map(Some)
        .map_err(|source| Error::UnitFile { path, source })
}
