//! Garbage collection's effects: removing packages systemk installed that no holder used
//! for the grace (choices in `gc`, removal in `remove`), forgetting record entries of
//! packages someone else removed, and trimming the `.deb` cache to its bound, least
//! recently used first. The [`Installer`](super::Installer) calls it with its holders'
//! lock held, so no install of systemk runs meanwhile; removals also take the dpkg lock.
//! Every removal is logged with what and why. Layer 1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::apt::{AptGet, load_record, save_record};
use super::dpkg;
use super::error::{Error, Result};
use super::gc::{self, CachedFile, LastUsed};
use super::record;
use super::remove::{Removal, remove_alone};

/// Cached `.deb` files used this recently are kept even over the bound: an install may be
/// about to read the file it just downloaded or took from the cache.
pub(crate) const CACHE_RECENT_USE: Duration = Duration::from_secs(600);

/// What garbage collection may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcSettings {
    /// Packages systemk installed are removed once no container used them for this long
    /// (`--image-minimum-gc-age`); `None` removes no package.
    pub unused_package_age: Option<Duration>,
    /// The `.deb` cache is trimmed to this many bytes (`--deb-cache-max-size`).
    pub deb_cache_max_bytes: u64,
}

/// What one garbage collection pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Packages removed.
    pub removed: Vec<String>,
    /// Candidates kept because removing them would remove the packages listed with them.
    pub kept: Vec<(String, Vec<String>)>,
    /// Record entries dropped: someone else removed these packages.
    pub forgotten: Vec<String>,
    /// `.deb` cache files deleted (file names).
    pub trimmed: Vec<String>,
}

/// Collects garbage for an installer: remembers when each package was last used.
#[derive(Debug, Clone)]
pub(crate) struct Collector {
    apt_get: Arc<AptGet>,
    cache_dir: PathBuf,
    /// When each recorded package was last seen in use; a sync mutex, never held across
    /// an await.
    last_used: Arc<Mutex<LastUsed>>,
}

impl Collector {
    pub(crate) fn new(apt_get: Arc<AptGet>, cache_dir: PathBuf) -> Self {
        Self {
            apt_get,
            cache_dir,
            last_used: Arc::default(),
        }
    }

    /// Notes that `packages` were in use until now (their holders just let go).
    pub(crate) fn used_until_now(&self, packages: impl IntoIterator<Item = String>) {
        let now = crate::clock::now();
        if let Ok(mut last_used) = self.last_used.lock() {
            for package in packages {
                last_used.insert(package, now);
            }
        }
    }

    /// One pass; `held` are the packages some holder uses. The caller holds the holders'
    /// lock, so none is claimed meanwhile.
    pub(crate) async fn collect(
        &self,
        held: &BTreeSet<String>,
        settings: &GcSettings,
    ) -> Result<GcReport> {
        let mut report = GcReport::default();
        if let Some(record_path) = self.apt_get.record() {
            let _serial = self.apt_get.serialize().await;
            self.collect_packages(record_path, held, settings, &mut report)
                .await?;
        }
        let (dir, max) = (self.cache_dir.clone(), settings.deb_cache_max_bytes);
        let now = crate::clock::now();
        report.trimmed = tokio::task::spawn_blocking(move || trim_cache(&dir, max, now))
            .await
            .map_err(|source| Error::TaskFailed {
                what: "trimming the .deb cache",
                source,
            })??;
        Ok(report)
    }

    async fn collect_packages(
        &self,
        record_path: &Path,
        held: &BTreeSet<String>,
        settings: &GcSettings,
        report: &mut GcReport,
    ) -> Result<()> {
        let mut recorded = load_record(record_path.to_owned()).await?;
        let mut installed = dpkg::installed_packages().await?;
        report.forgotten = recorded.difference(&installed).cloned().collect();
        if !report.forgotten.is_empty() {
            for package in &report.forgotten {
                tracing::info!(
                    package,
                    "forgetting a package systemk installed: someone else removed it"
                );
            }
            recorded.retain(|name| installed.contains(name));
            save_record(record_path.to_owned(), recorded.clone()).await?;
        }
        let now = crate::clock::now();
        let last_used = {
            let mut last_used = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
            gc::refresh_last_used(&mut last_used, &recorded, held, now);
            last_used.clone()
        };
        let Some(grace) = settings.unused_package_age else {
            return Ok(());
        };
        // Rounds: removing an image package can free the dependencies systemk installed
        // with it, which the next round removes.
        loop {
            let candidates = gc::candidates(&recorded, &installed, held, &last_used, now, grace);
            let (mut removed_any, mut deferred) = (false, false);
            report.kept.clear();
            for package in candidates {
                match remove_alone(&self.apt_get, &package).await {
                    Ok(Removal::Removed) => {
                        let unused_secs = last_used
                            .get(&package)
                            .map(|used| now.duration_since(*used).as_secs())
                            .unwrap_or_default();
                        tracing::info!(
                            package,
                            unused_secs,
                            "removed a package systemk installed and no pod used for the grace (--image-minimum-gc-age)"
                        );
                        report.removed.push(package);
                        removed_any = true;
                    }
                    Ok(Removal::Kept { dependents }) => {
                        tracing::debug!(
                            package,
                            ?dependents,
                            "keeping an unused package: other installed packages depend on it"
                        );
                        report.kept.push((package, dependents));
                    }
                    Err(error @ Error::DpkgLocked { .. }) => {
                        tracing::info!(package, error = %crate::error_chain::Chain(&error), "another package manager is running; removing unused packages at the next pass");
                        deferred = true;
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(package, error = %crate::error_chain::Chain(&error), "cannot remove an unused package; trying again at the next pass");
                    }
                }
            }
            if removed_any {
                let after = dpkg::installed_packages().await?;
                recorded = record::updated(&recorded, &installed, &after);
                save_record(record_path.to_owned(), recorded.clone()).await?;
                installed = after;
            }
            if !removed_any || deferred {
                return Ok(());
            }
        }
    }
}

/// Deletes the least recently used `<sha256>.deb` files of `dir` until the rest fit in
/// `max_bytes`, then the URL index entries whose file is gone; returns the deleted files'
/// names. Blocking.
fn trim_cache(dir: &Path, max_bytes: u64, now: Timestamp) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing", dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // In-flight downloads are hidden `.tmp` files: never touched here.
        if name.starts_with('.') || !name.ends_with(".deb") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let used = meta
            .modified()
            .ok()
            .and_then(|t| Timestamp::try_from(t).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        if meta.is_file() {
            files.push(CachedFile {
                name,
                bytes: meta.len(),
                used,
            });
        }
    }
    let trim = gc::cache_to_trim(&files, max_bytes, now, CACHE_RECENT_USE);
    let mut trimmed = Vec::new();
    for name in trim {
        let path = dir.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), max_bytes, "deleted a cached .deb, least recently used, to keep the cache under --deb-cache-max-size");
                trimmed.push(name);
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot delete a cached .deb")
            }
        }
    }
    drop_dangling_url_entries(&dir.join("urls"), dir);
    Ok(trimmed)
}

/// Deletes URL index entries (`urls/<sha256 of URL>`, content the file's sha256) whose
/// `.deb` is no longer in the cache.
fn drop_dangling_url_entries(urls: &Path, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(urls) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(sha256) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let sha256 = sha256.trim();
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid || !dir.join(format!("{sha256}.deb")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_recent_files_hidden_files_and_live_url_entries() {
        let dir = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        let day = Duration::from_secs(86_400);
        let (old, new) = ("a".repeat(64), "b".repeat(64));
        for (sha, age) in [(&old, 2 * day), (&new, day)] {
            let path = dir.path().join(format!("{sha}.deb"));
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(now - age).unwrap();
        }
        std::fs::write(dir.path().join(".download.tmp"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir(dir.path().join("urls")).unwrap();
        std::fs::write(dir.path().join("urls/x"), &old).unwrap();
        std::fs::write(dir.path().join("urls/y"), &new).unwrap();

        let trimmed = trim_cache(dir.path(), 150, crate::clock::now()).unwrap();
        assert_eq!(trimmed, [format!("{old}.deb")]);
        assert!(dir.path().join(format!("{new}.deb")).exists());
        assert!(dir.path().join(".download.tmp").exists());
        assert!(!dir.path().join("urls/x").exists(), "its file is gone");
        assert!(dir.path().join("urls/y").exists());
        assert!(
            trim_cache(&dir.path().join("missing"), 0, crate::clock::now())
                .unwrap()
                .is_empty()
        );
    }
}
