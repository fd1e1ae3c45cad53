//! Unit files on disk: written atomically ([`crate::atomic_file`], so systemd never reads a
//! half-written unit), removed, listed and read back. Only files named after a
//! [`UnitName`] or a [`SliceName`] are touched, so a pod can never name a file outside
//! `dir`.

use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use crate::atomic_file::{self, Durability};
use crate::unit::{BOOT_TARGET, KubernetesMeta, SliceName, UNIT_PREFIX, UnitFile, UnitName};

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

/// Enables `dir/<name>` as `systemctl enable` would for its `WantedBy=` [`BOOT_TARGET`]:
/// the link `dir/<BOOT_TARGET>.wants/<name>` to the unit file, replacing any link of that
/// name. Made here, not by `EnableUnitFiles`: PID 1 reads every unit file in the
/// directory for that call (4 ms with 100 units, 31 ms with 1000, on a pod's way to its
/// start), where a link is a few microseconds. Like `EnableUnitFiles`, no reload: the link
/// matters at the next boot.
pub(super) async fn link_wanted(dir: &Path, name: &UnitName) -> Result<()> {
    let wants = wants_dir(dir);
    let (unit, link) = (dir.join(name.as_str()), wants.join(name.as_str()));
    let staged = wants.join(format!(".{name}.tmp"));
    let path = link.clone();
    let linked = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&wants)?;
        match std::fs::remove_file(&staged) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        std::os::unix::fs::symlink(&unit, &staged)?;
        std::fs::rename(&staged, &link)
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    linked.map_err(|source| Error::Io {
        operation: "enable unit",
        path,
        source,
    })
}

/// Removes what [`link_wanted`] made; a link already gone is fine.
pub(super) async fn unlink_wanted(dir: &Path, name: &UnitName) -> Result<()> {
    let path = wants_dir(dir).join(name.as_str());
    match tokio::fs::remove_file(&path).await {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            operation: "disable unit",
            path,
            source,
        }),
        _ => Ok(()),
    }
}

fn wants_dir(dir: &Path) -> PathBuf {
    dir.join(format!("{BOOT_TARGET}.wants"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_name() -> UnitName {
        "systemk.default.web.main.service".parse().unwrap()
    }

    #[tokio::test]
    async fn a_unit_is_enabled_by_a_link_to_its_file_and_disabled_by_removing_it() {
        let dir = tempfile::tempdir().unwrap();
        let name = unit_name();
        link_wanted(dir.path(), &name).await.unwrap();
        let link = dir.path().join("multi-user.target.wants").join(name.as_str());
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            dir.path().join(name.as_str())
        );
        unlink_wanted(dir.path(), &name).await.unwrap();
        assert!(!link.is_symlink());
        unlink_wanted(dir.path(), &name).await.unwrap();
    }

    #[tokio::test]
    async fn a_link_of_the_same_name_to_another_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let name = unit_name();
        let wants = dir.path().join("multi-user.target.wants");
        std::fs::create_dir(&wants).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", wants.join(name.as_str())).unwrap();
        link_wanted(dir.path(), &name).await.unwrap();
        assert_eq!(
            std::fs::read_link(wants.join(name.as_str())).unwrap(),
            dir.path().join(name.as_str())
        );
        let left: Vec<_> = std::fs::read_dir(&wants).unwrap().collect();
        assert_eq!(left.len(), 1, "no staged link is left behind");
    }

    #[tokio::test]
    async fn a_directory_in_the_links_place_is_an_error_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let name = unit_name();
        let squatter = dir.path().join("multi-user.target.wants").join(name.as_str());
        std::fs::create_dir_all(squatter.join("inside")).unwrap();
        let error = link_wanted(dir.path(), &name).await.unwrap_err();
        assert!(error.to_string().contains("enable unit"), "{error}");
        assert!(squatter.join("inside").is_dir(), "nothing inside it was touched");
    }
}
