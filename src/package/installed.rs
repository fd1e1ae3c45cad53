//! Describing an installed Debian package as an [`Installed`]: the service units of the
//! packages searched for its vendor unit (see `depends.rs`), what each unit is (an
//! umbrella unit, a template and its existing instances), and the state directories those
//! packages own (from their file lists and tmpfiles.d files). Shared by the apt and https
//! backends. Layer 1.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::dpkg;
use super::error::Result;
use super::instances;
use super::manager::{Installed, VendorUnit};
use super::unit_scan;
use super::vendor;

/// Largest vendor unit file read (64 KiB): real ones are a few hundred bytes.
const MAX_UNIT_BYTES: u64 = 64 * 1024;

impl Installed {
    /// Describes an installed package from its dpkg file list and those of the packages
    /// searched for its vendor unit.
    pub(crate) async fn of_package(
        package: &str,
        version: String,
        image_id: String,
        added: &BTreeSet<String>,
    ) -> Result<Self> {
        let own_files = dpkg::file_list(package).await?;
        let graph = dpkg::package_graph().await?;
        let mut service_units: Vec<VendorUnit> = Vec::new();
        let mut file_lists = vec![own_files.clone()];
        for tier in graph.search_tiers(package) {
            for name in &tier {
                let files = if name == package {
                    own_files.clone()
                } else {
                    match dpkg::file_list(name).await {
                        Ok(files) => files,
                        // A dependency removed meanwhile ships nothing; the search goes on.
                        Err(error) => {
                            tracing::warn!(package, dependency = name, error = %crate::error_chain::Chain(&error), "cannot list a dependency's files");
                            continue;
                        }
                    }
                };
                let units = vendor::service_units(&files);
                if units.is_empty() {
                    continue;
                }
                for path in units {
                    if !service_units
                        .iter()
                        .any(|u| u.path.file_name() == path.file_name())
                    {
                        service_units.push(describe_unit(name, path).await);
                    }
                }
                if name != package {
                    file_lists.push(files);
                }
            }
            // Only the first tier that ships a unit counts (see depends.rs).
            if !service_units.is_empty() {
                break;
            }
        }
        service_units.sort_by_key(VendorUnit::name);
        Ok(Self {
            package: Some(package.to_owned()),
            version: Some(version),
            image_id,
            newly_installed: added.contains(package),
            service_units,
            added_units: starting_units_of(added).await,
            writable_dirs: writable_dirs(package, &file_lists).await,
        })
    }
}

/// The units that start something of the packages in `added`, by name.
async fn starting_units_of(added: &BTreeSet<String>) -> Vec<String> {
    let mut units = Vec::new();
    for package in added {
        match dpkg::file_list(package).await {
            Ok(files) => units.extend(vendor::starting_units(&files)),
            Err(error) => {
                tracing::warn!(package, error = %crate::error_chain::Chain(&error), "cannot list the files of a package systemk installed");
            }
        }
    }
    units.sort();
    units.dedup();
    units
}

/// A unit file of `package`, read to tell umbrella units and templates' instances.
async fn describe_unit(package: &str, path: PathBuf) -> VendorUnit {
    let mut unit = VendorUnit {
        package: package.to_owned(),
        path,
        only_runs_true: false,
        instances: Vec::new(),
    };
    let text = match read_small(&unit.path, MAX_UNIT_BYTES).await {
        Ok(text) => text,
        // Not fatal here: reading it again for the container reports the error.
        Err(error) => {
            tracing::warn!(package, path = %unit.path.display(), %error, "cannot read a vendor unit");
            return unit;
        }
    };
    unit.only_runs_true = unit_scan::only_runs_true(&text);
    if unit.is_template() {
        let (name, paths) = (unit.name(), unit_scan::instance_paths(&text));
        unit.instances =
            tokio::task::spawn_blocking(move || instances::existing_instances(&name, &paths))
                .await
                .unwrap_or_default();
    }
    unit
}

/// The state directories that exist among those the file lists and their tmpfiles.d
/// files name.
async fn writable_dirs(package: &str, file_lists: &[Vec<PathBuf>]) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    for files in file_lists {
        candidates.extend(vendor::state_dir_candidates(files));
        for config in vendor::tmpfiles_configs(files) {
            match read_small(&config, MAX_TMPFILES_BYTES).await {
                Ok(text) => candidates.extend(vendor::tmpfiles_state_dirs(&text)),
                // Not fatal: the directory just stays read-only for the unit.
                Err(error) => {
                    tracing::warn!(package, path = %config.display(), %error, "cannot read the package's tmpfiles.d file");
                }
            }
        }
    }
    candidates.sort();
    candidates.dedup();
    let mut dirs = Vec::new();
    for dir in candidates {
        // symlink_metadata: a symlink is not a directory systemk may bind writable.
        if tokio::fs::symlink_metadata(&dir)
            .await
            .is_ok_and(|m| m.is_dir())
        {
            dirs.push(dir);
        }
    }
    dirs
}

/// Largest tmpfiles.d file read (64 KiB): real ones are a few lines.
const MAX_TMPFILES_BYTES: u64 = 64 * 1024;

/// The start (`limit` bytes) of a small text file.
async fn read_small(path: &Path, limit: u64) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    tokio::fs::File::open(path)
        .await?
        .take(limit)
        .read_to_string(&mut text)
        .await?;
    Ok(text)
}
