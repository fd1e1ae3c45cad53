//! The package-manager trait, what an install reports ([`Installed`]), and the
//! [`Installer`] that routes an [`ImageRef`] to apt, https `.deb` or path. Layer 1.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::apt::{Apt, AptGet, AptPackage};
use super::dpkg;
use super::error::Result;
use super::guard::POLICY_RC_D;
use super::https::{DEFAULT_CACHE_DIR, HttpsDeb, HttpsPackage};
use super::image::ImageRef;
use super::path::PathImage;
use super::policy::ImagePolicy;
use super::vendor;

/// What is on the host for an image after installing (or finding) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The Debian package; `None` for path images.
    pub package: Option<String>,
    /// The installed version of the package.
    pub version: Option<String>,
    /// `<pkg>=<version>` (apt), `sha256:<hex>` of the `.deb` (https) or of the file (path).
    pub image_id: String,
    /// systemk installed the package in this call: it was not installed before (a pinned
    /// version replacing another installed version does not count). Only then are the
    /// package's vendor units systemk's to disable.
    pub newly_installed: bool,
    /// Non-template `*.service` files from the package's file list.
    pub service_units: Vec<PathBuf>,
    /// Package-owned state directories that exist: `/var/{lib,spool,cache,log}/<x>`, `/run/<x>`,
    /// from the package's file list and the `d`/`D` lines of its tmpfiles.d files.
    pub writable_dirs: Vec<PathBuf>,
}

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

/// One way of getting an image onto the host.
pub trait PackageManager {
    /// The image form this manager handles.
    type Image: ?Sized;

    /// Makes the image present (installing when needed) and describes it.
    fn install(&self, image: &Self::Image) -> impl Future<Output = Result<Installed>> + Send;

    /// Describes the image if it is already present; never installs, needs no root.
    fn query(&self, image: &Self::Image) -> impl Future<Output = Result<Option<Installed>>> + Send;
}

/// Settings of an [`Installer`].
#[derive(Debug, Clone)]
pub struct InstallerConfig {
    /// Where downloaded `.deb` files are kept, by content hash.
    pub deb_cache_dir: PathBuf,
    /// Extra trusted root CA certificates (PEM) for https images, besides the system roots.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    /// Where the policy-rc.d guard is placed; [`POLICY_RC_D`] except in tests of the guard.
    pub policy_rc_d: PathBuf,
    /// Which images the node allows.
    pub policy: ImagePolicy,
    /// The record of packages systemk installed (`<state dir>/packages`); only those may
    /// be downgraded. `None` keeps no record: no package is ever downgraded.
    pub packages_record: Option<PathBuf>,
}

impl Default for InstallerConfig {
    fn default() -> Self {
        Self {
            deb_cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            extra_root_certs_pem: Vec::new(),
            policy_rc_d: PathBuf::from(POLICY_RC_D),
            policy: ImagePolicy::default(),
            packages_record: None,
        }
    }
}

/// Installs any [`ImageRef`]; apt and https installs share one serialised apt-get.
#[derive(Debug, Clone)]
pub struct Installer {
    apt: Apt,
    https: HttpsDeb,
    path: PathImage,
    policy: ImagePolicy,
}

impl Installer {
    /// An installer with `config`. Needs a process-wide rustls crypto provider installed.
    pub fn new(config: InstallerConfig) -> Result<Self> {
        let apt_get = Arc::new(AptGet::new(config.policy_rc_d, config.packages_record));
        Ok(Self {
            apt: Apt::new(apt_get.clone()),
            https: HttpsDeb::new(apt_get, config.deb_cache_dir, &config.extra_root_certs_pem)?,
            path: PathImage,
            policy: config.policy,
        })
    }

    /// A warning about an image the node allows but cannot verify (an unpinned https
    /// image), for a Warning event.
    pub fn warning(&self, image: &ImageRef) -> Option<String> {
        self.policy.warning(image)
    }

    /// Makes `image` present and describes it; refuses images the node's policy does
    /// not allow.
    pub async fn install(&self, image: &ImageRef) -> Result<Installed> {
        self.policy.check(image)?;
        match image {
            ImageRef::Apt { name, version } => {
                self.apt
                    .install(&AptPackage {
                        name: name.clone(),
                        version: version.clone(),
                    })
                    .await
            }
            ImageRef::Https { url, name, sha256 } => {
                self.https
                    .install(&HttpsPackage {
                        url: url.clone(),
                        name: name.clone(),
                        sha256: sha256.clone(),
                    })
                    .await
            }
            ImageRef::Path(path) => self.path.install(path).await,
        }
    }

    /// Describes `image` if it is present; never installs, needs no root.
    pub async fn query(&self, image: &ImageRef) -> Result<Option<Installed>> {
        self.policy.check(image)?;
        match image {
            ImageRef::Apt { name, version } => {
                self.apt
                    .query(&AptPackage {
                        name: name.clone(),
                        version: version.clone(),
                    })
                    .await
            }
            ImageRef::Https { url, name, sha256 } => {
                self.https
                    .query(&HttpsPackage {
                        url: url.clone(),
                        name: name.clone(),
                        sha256: sha256.clone(),
                    })
                    .await
            }
            ImageRef::Path(path) => self.path.query(path).await,
        }
    }
}
