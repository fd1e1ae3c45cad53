//! Describing an installed Debian package as an [`Installed`]: its dpkg file list, the
//! service units in it and the state directories it owns (from the file list and its
//! tmpfiles.d files). Shared by the apt and https backends. Layer 1.

use std::path::Path;

use super::dpkg;
use super::error::Result;
use super::manager::Installed;
use super::vendor;

impl Installed {
    /// Describes an installed package from its dpkg file list.
    pub(crate) async fn of_package(
        package: &str,
        version: String,
        image_id: String,
        newly_installed: bool,
    ) -> Result<Self> {
        let files = dpkg::file_list(package).await?;
        let mut candidates = vendor::state_dir_candidates(&files);
        for config in vendor::tmpfiles_configs(&files) {
            match read_small(&config).await {
                Ok(text) => candidates.extend(vendor::tmpfiles_state_dirs(&text)),
                // Not fatal: the directory just stays read-only for the unit.
                Err(error) => {
                    tracing::warn!(package, path = %config.display(), %error, "cannot read the package's tmpfiles.d file");
                }
            }
        }
        candidates.sort();
        candidates.dedup();
        let mut writable_dirs = Vec::new();
        for dir in candidates {
            // symlink_metadata: a symlink is not a directory systemk may bind writable.
            if tokio::fs::symlink_metadata(&dir)
                .await
                .is_ok_and(|m| m.is_dir())
            {
                writable_dirs.push(dir);
            }
        }
        Ok(Self {
            package: Some(package.to_owned()),
            version: Some(version),
            image_id,
            newly_installed,
            service_units: vendor::service_units(&files),
            writable_dirs,
        })
    }
}

/// Largest tmpfiles.d file read (64 KiB): real ones are a few lines.
const MAX_TMPFILES_BYTES: u64 = 64 * 1024;

/// The start of a small text file.
async fn read_small(path: &Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    tokio::fs::File::open(path)
        .await?
        .take(MAX_TMPFILES_BYTES)
        .read_to_string(&mut text)
        .await?;
    Ok(text)
}
