//! The [`Installer`]: routes an [`ImageRef`] to apt, https `.deb` or path, after the node's
//! image policy allowed it. The top of the package layer: it imports the backends, and
//! nothing in the layer imports it. Layer 1.

use std::path::PathBuf;
use std::sync::Arc;

use super::apt::{Apt, AptGet, AptPackage};
use super::error::Result;
use super::guard::POLICY_RC_D;
use super::https::{DEFAULT_CACHE_DIR, HttpsDeb, HttpsPackage};
use super::image::ImageRef;
use super::manager::{Installed, PackageManager};
use super::path::PathImage;
use super::policy::ImagePolicy;

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
