//! The [`Installer`]: routes an [`ImageRef`] to apt, https `.deb` or path, after the node's
//! image policy allowed it, with the container's [`PullPolicy`], and keeps the registry of
//! which holder uses which package version (`holders`), so no install changes a version
//! another holder needs. The top of the package layer: it imports the backends, and
//! nothing in the layer imports it. Layer 1.
//!
//! Two locks, so that a pod whose image is being installed (minutes, or as long as
//! another package manager holds dpkg) holds up no other pod's pass: `installs` is held
//! across a check, its install and the claim (and across a garbage collection), so no
//! two of them interleave; `holders` is a plain mutex held only to read or change the
//! registry, never across an await. Forgetting holds (a pod gone, a container removed)
//! takes only `holders`: that only frees versions, so a check made under `installs`
//! meanwhile stays safe.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::apt::{Apt, AptGet, AptPackage};
use super::collect::{Collector, GcReport, GcSettings};
use super::dpkg;
use super::error::{Error, Result};
use super::guard::POLICY_RC_D;
use super::holders::{Holder, Holders, Verdict};
use super::https::{DEFAULT_CACHE_DIR, HttpsDeb, HttpsPackage};
use super::image::ImageRef;
use super::lists::{APT_LISTS_DIR, DEFAULT_LISTS_MAX_AGE};
use super::manager::{Installed, PackageManager};
use super::path::PathImage;
use super::policy::ImagePolicy;
use super::pull::PullPolicy;

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
    /// apt's lists directory, whose age decides whether `apt-get update` runs.
    pub apt_lists_dir: PathBuf,
    /// Lists younger than this are not refreshed (`--apt-lists-max-age`).
    pub apt_lists_max_age: Duration,
}

impl Default for InstallerConfig {
    fn default() -> Self {
        Self {
            deb_cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            extra_root_certs_pem: Vec::new(),
            policy_rc_d: PathBuf::from(POLICY_RC_D),
            policy: ImagePolicy::default(),
            packages_record: None,
            apt_lists_dir: PathBuf::from(APT_LISTS_DIR),
            apt_lists_max_age: DEFAULT_LISTS_MAX_AGE,
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
    /// Held across a check, its install and the claim, and across a collection.
    installs: Arc<tokio::sync::Mutex<()>>,
    /// Who uses which package version.
    holders: Arc<Mutex<Holders>>,
    /// Removes what no holder uses any more; remembers since when.
    collector: Collector,
}

impl Installer {
    /// An installer with `config`. Needs a process-wide rustls crypto provider installed.
    pub fn new(config: InstallerConfig) -> Result<Self> {
        let apt_get = Arc::new(AptGet::new(
            config.policy_rc_d,
            config.packages_record,
            config.apt_lists_dir,
            config.apt_lists_max_age,
        ));
        Ok(Self {
            apt: Apt::new(apt_get.clone()),
            collector: Collector::new(apt_get.clone(), config.deb_cache_dir.clone()),
            https: HttpsDeb::new(apt_get, config.deb_cache_dir, &config.extra_root_certs_pem)?,
            path: PathImage,
            policy: config.policy,
            installs: Arc::default(),
            holders: Arc::default(),
        })
    }

    /// A warning about an image the node allows but cannot verify (an unpinned https
    /// image), for a Warning event.
    pub fn warning(&self, image: &ImageRef) -> Option<String> {
        self.policy.warning(image)
    }

    /// Makes `image` present as `pull` asks and describes it, for `holder`, which then
    /// holds the package at the version installed; refuses images the node's policy
    /// does not allow, and versions that would change a package under another holder.
    /// Path images install nothing: the policy does not apply to them.
    pub async fn install(
        &self,
        image: &ImageRef,
        pull: PullPolicy,
        holder: &Holder,
    ) -> Result<Installed> {
        self.policy.check(image)?;
        let never = || Error::NeverPull {
            image: image.to_string(),
        };
        match image {
            ImageRef::Apt { name, version } => {
                let _installs = self.installs.lock().await;
                let verdict = self.holders().check(holder, name, version.as_deref());
                let pin = admit(verdict, name, version.as_deref()).await?;
                let package = AptPackage {
                    name: name.clone(),
                    version: pin,
                };
                let installed = match pull {
                    PullPolicy::Never => self.apt.query(&package).await?.ok_or_else(never)?,
                    PullPolicy::IfNotPresent => self.apt.ensure(&package, false).await?,
                    PullPolicy::Always => self.apt.ensure(&package, true).await?,
                };
                claim(&mut self.holders(), holder, &installed, version.is_some());
                Ok(installed)
            }
            ImageRef::Https { url, name, sha256 } => {
                let package = HttpsPackage {
                    url: url.clone(),
                    name: name.clone(),
                    sha256: sha256.clone(),
                };
                if pull == PullPolicy::Never {
                    let installed = self.https.query(&package).await?.ok_or_else(never)?;
                    let _installs = self.installs.lock().await;
                    claim(&mut self.holders(), holder, &installed, true);
                    return Ok(installed);
                }
                // Downloads run outside the install lock; only installs wait for it.
                let fetched = self
                    .https
                    .fetch(&package, pull == PullPolicy::Always)
                    .await?;
                let _installs = self.installs.lock().await;
                let verdict = self.holders().check(holder, name, Some(fetched.version()));
                admit(verdict, name, Some(fetched.version())).await?;
                let installed = self.https.install_fetched(&package, fetched).await?;
                claim(&mut self.holders(), holder, &installed, true);
                Ok(installed)
            }
            ImageRef::Path(path) => self.path.install(path).await,
        }
    }

    /// Rebuilds `holder`'s hold from what its unit says (`image`, and the `image_id` it
    /// was prepared with), when systemk adopts the units of an earlier run: before any
    /// pod is prepared again, so none can change a version a running pod uses.
    pub async fn adopt(&self, holder: &Holder, image: &ImageRef, image_id: &str) {
        let (package, version, pinned) = match image {
            ImageRef::Apt { name, version } => {
                let Some((_, held)) = image_id.split_once('=') else {
                    return;
                };
                (name, held.to_owned(), version.is_some())
            }
            ImageRef::Https { name, .. } => match dpkg::installed_version(name).await {
                Ok(Some(version)) => (name, version, true),
                _ => return,
            },
            ImageRef::Path(_) => return,
        };
        let _installs = self.installs.lock().await;
        self.holders().claim(holder, package, &version, pinned);
    }

    /// Forgets every hold of `owner` (its pod is gone); the grace of the packages no
    /// one holds any more starts now.
    pub fn release(&self, owner: &str) {
        let mut holders = self.holders();
        let before = holders.packages();
        holders.release(owner);
        self.collector
            .used_until_now(before.difference(&holders.packages()).cloned());
    }

    /// Forgets the holds of `owner`'s holders not in `slots` (containers that left it).
    pub fn retain_slots(&self, owner: &str, slots: &[&str]) {
        let mut holders = self.holders();
        let before = holders.packages();
        holders.retain_slots(owner, slots);
        self.collector
            .used_until_now(before.difference(&holders.packages()).cloned());
    }

    /// One garbage collection pass (see `collect.rs`): removes the packages systemk
    /// installed that no holder used for `settings`' grace, and trims the `.deb` cache.
    /// No install runs meanwhile.
    pub async fn collect_garbage(&self, settings: &GcSettings) -> Result<GcReport> {
        let _installs = self.installs.lock().await;
        let held = self.holders().packages();
        self.collector.collect(&held, settings).await
    }

    /// The registry; a panic elsewhere while it was held leaves it as consistent as
    /// each of its own methods does, so a poisoned lock is taken as is.
    fn holders(&self) -> MutexGuard<'_, Holders> {
        self.holders.lock().unwrap_or_else(PoisonError::into_inner)
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

/// The version a holder may have of `package` given the other holders' `verdict`: its
/// pin, the version another holder pinned (for an unpinned request), or a refusal naming
/// the holder in the way.
async fn admit(verdict: Verdict, package: &str, pin: Option<&str>) -> Result<Option<String>> {
    let held = |holder: String, held: String, downgrade| Error::VersionHeld {
        package: package.to_owned(),
        wanted: pin.unwrap_or_default().to_owned(),
        holder,
        held,
        downgrade,
    };
    match (verdict, pin) {
        (Verdict::Free, _) => Ok(pin.map(str::to_owned)),
        (Verdict::UseHeld { version }, _) => Ok(Some(version)),
        (Verdict::Conflict { holder, version }, _) => Err(held(holder, version, false)),
        (Verdict::OnlyUpgrade { holder, version }, Some(wanted)) => {
            if dpkg::is_newer(wanted, &version).await? {
                Ok(Some(wanted.to_owned()))
            } else {
                Err(held(holder, version, true))
            }
        }
        (Verdict::OnlyUpgrade { .. }, None) => Ok(None),
    }
}

/// Records that `holder` uses what was installed.
fn claim(holders: &mut Holders, holder: &Holder, installed: &Installed, pinned: bool) {
    if let (Some(package), Some(version)) = (&installed.package, &installed.version) {
        holders.claim(holder, package, version, pinned);
    }
}
