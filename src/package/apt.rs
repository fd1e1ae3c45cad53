//! The apt verb: installing from the apt sources (or a local `.deb` with its dependencies)
//! non-interactively, one install at a time, with the dpkg frontend lock held by systemk
//! and only then the policy-rc.d guard in place. `apt-get update` runs only when the
//! package lists are older than the configured age (`--apt-lists-max-age`) and a package
//! or version is not found, or an `Always` image asks for the newest candidate. apt never
//! removes a package (`--no-remove`) and downgrades only packages systemk installed itself
//! (the record); otherwise it fails with its own reason. Layer 1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use super::dpkg;
use super::error::{Error, Result};
use super::guard::{DENIED, PolicyGuard};
use super::lists::{lists_refreshed_at, lists_stale, parse_candidate};
use super::lock::{ARCHIVES_LOCK, DpkgLock, FRONTEND_LOCK};
use super::manager::{Installed, PackageManager};
use super::process;
use super::record;

/// How long apt waits for another dpkg user (unattended-upgrades, an admin) to release the
/// lock before giving up: long enough for a large upgrade to finish.
pub(crate) const DPKG_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

const APT_GET: &str = "apt-get";

/// apt-get's environment under systemk's lock: no questions, and dpkg told that its
/// frontend lock is held by the caller (systemk took it, see `lock.rs`).
pub(crate) const APT_GET_ENV: &[(&str, &str)] = &[
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("DPKG_FRONTEND_LOCKED", "true"),
];
const APT_CACHE: &str = "apt-cache";

/// Runs apt-get for every package manager that installs packages. Installs are serialised.
#[derive(Debug)]
pub(crate) struct AptGet {
    serial: Mutex<()>,
    policy_rc_d: PathBuf,
    /// The record of packages systemk installed; `None` keeps none (nothing is systemk's).
    record: Option<PathBuf>,
    /// apt's lists directory, whose `*Release` files tell the lists' age.
    lists_dir: PathBuf,
    /// Lists younger than this are not refreshed.
    lists_max_age: Duration,
}

impl AptGet {
    /// An apt-get runner that puts its guard at `policy_rc_d`, keeps the record of its
    /// packages at `record` and refreshes the lists in `lists_dir` when older than
    /// `lists_max_age`.
    pub(crate) fn new(
        policy_rc_d: PathBuf,
        record: Option<PathBuf>,
        lists_dir: PathBuf,
        lists_max_age: Duration,
    ) -> Self {
        Self {
            serial: Mutex::new(()),
            policy_rc_d,
            record,
            lists_dir,
            lists_max_age,
        }
    }

    /// Where the policy-rc.d guard goes while apt runs.
    pub(crate) fn policy_rc_d(&self) -> &Path {
        &self.policy_rc_d
    }

    /// The record of packages systemk installed, if it keeps one.
    pub(crate) fn record(&self) -> Option<&Path> {
        self.record.as_deref()
    }

    /// Held for the whole check-then-install sequence of one image.
    pub(crate) async fn serialize(&self) -> MutexGuard<'_, ()> {
        self.serial.lock().await
    }

    /// Whether the apt sources know `spec` (`name` or `name=version`), by apt-cache's exit status.
    async fn is_available(&self, spec: &str) -> Result<bool> {
        let out = process::run(APT_CACHE, &["show", "-q", spec], &[]).await?;
        // With a version that does not exist apt-cache prints an error but exits 0.
        Ok(out.status.success() && !out.stdout.trim().is_empty())
    }

    /// The candidate version apt would install for `name` (`apt-cache policy`); `None`
    /// when the sources have none.
    async fn candidate(&self, name: &str) -> Result<Option<String>> {
        let out = process::run(APT_CACHE, &["policy", "-q", name], &[]).await?;
        if !out.status.success() {
            return Err(Error::QueryFailed {
                package: name.to_owned(),
                program: APT_CACHE,
                stderr: out.stderr,
            });
        }
        Ok(parse_candidate(&out.stdout))
    }

    /// Refreshes the package lists when they are older than the configured age, so
    /// neither a pod retrying an unknown package nor many `Always` pods hit the mirrors
    /// each time. Returns whether it ran `apt-get update`.
    async fn update(&self, package: &str) -> Result<bool> {
        self.update_if(package, false).await
    }

    /// Refreshes the package lists; unless `force`, only when they are older than the
    /// configured age.
    async fn update_if(&self, package: &str, force: bool) -> Result<bool> {
        let dir = self.lists_dir.clone();
        let refreshed = tokio::task::spawn_blocking(move || lists_refreshed_at(&dir))
            .await
            .map_err(|source| Error::TaskFailed {
                what: "reading the age of the apt lists",
                source,
            })?;
        if !force && !lists_stale(refreshed, crate::clock::now(), self.lists_max_age) {
            tracing::debug!(
                package,
                max_age_secs = self.lists_max_age.as_secs(),
                "package lists are fresh enough, not refreshing them"
            );
            return Ok(false);
        }
        tracing::info!(package, "refreshing the apt package lists");
        let lock_timeout = lock_timeout_option();
        let args = ["update", "-q", "-o", &lock_timeout];
        let out = process::run(APT_GET, &args, &[("DEBIAN_FRONTEND", "noninteractive")]).await?;
        if !out.status.success() {
            return Err(Error::InstallFailed {
                package: package.to_owned(),
                stdout: out.stdout_tail(),
                stderr: out.stderr,
            });
        }
        Ok(true)
    }

    /// Installs `target` (`name`, `name=version`, or an absolute `.deb` path) with its
    /// dependencies. The lock, guard and apt-get run in their own task, so a caller that
    /// is cancelled neither kills dpkg halfway nor removes the guard while dpkg still runs.
    pub(crate) async fn install(&self, package: &str, target: &str) -> Result<()> {
        let (policy_rc_d, record, package, target) = (
            self.policy_rc_d.clone(),
            self.record.clone(),
            package.to_owned(),
            target.to_owned(),
        );
        let task = tokio::spawn(async move {
            // The guard must never be in place while another package manager runs.
            let _lock = DpkgLock::acquire(
                &[Path::new(FRONTEND_LOCK), Path::new(ARCHIVES_LOCK)],
                DPKG_LOCK_TIMEOUT,
            )
            .await?;
            let recorded = match &record {
                Some(path) => load_record(path.clone()).await?,
                None => Default::default(),
            };
            let before = dpkg::installed_packages().await?;
            let allow_downgrades =
                recorded.contains(&package) && downgrades_only(&target, &recorded).await?;
            let guard_path = policy_rc_d.clone();
            let guard = tokio::task::spawn_blocking(move || PolicyGuard::install(&guard_path))
                .await
                .map_err(|source| Error::TaskFailed {
                    what: "installing the policy-rc.d guard",
                    source,
                })??;
            let mut args = vec![
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                // Conflicts fail with apt's reason instead of removing host packages.
                "--no-remove",
                // systemk holds the frontend lock; apt would wait for it forever.
                "-o",
                "Debug::NoLocking=true",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
            ];
            if allow_downgrades {
                args.push("--allow-downgrades");
            }
            args.push(&target);
            tracing::info!(package, target, allow_downgrades, "installing");
            let out = process::run(APT_GET, &args, APT_GET_ENV).await;
            drop(guard);
            if let Some(path) = record {
                let after = dpkg::installed_packages().await?;
                save_record(path, record::updated(&recorded, &before, &after)).await?;
            }
            let out = out?;
            if !out.status.success() {
                return Err(Error::InstallFailed {
                    package,
                    stdout: out.stdout_tail(),
                    stderr: out.stderr,
                });
            }
            log_denials(&package, &out.stdout);
            log_denials(&package, &out.stderr);
            tracing::debug!(package, stderr = out.stderr, "apt-get finished");
            Ok(())
        });
        task.await.map_err(|source| Error::TaskFailed {
            what: "apt-get install",
            source,
        })?
    }

    /// Like [`Self::install`], but after a failure refreshes the package lists once and
    /// tries again: stale lists make apt fetch files the mirror no longer has.
    pub(crate) async fn install_refreshing(
        &self,
        package: &str,
        target: &str,
        refreshed: bool,
    ) -> Result<()> {
        match self.install(package, target).await {
            Err(error @ Error::InstallFailed { .. }) if !refreshed => {
                tracing::warn!(package, %error, "install failed, retrying after apt-get update");
                // Whatever their age: apt fetched files the mirror no longer has.
                self.update_if(package, true).await?;
                self.install(package, target).await
            }
            other => other,
        }
    }
}

/// The version dpkg lists after apt-get reported success.
pub(crate) async fn installed_after_apt(package: &str) -> Result<String> {
    dpkg::installed_version(package)
        .await?
        .ok_or_else(|| Error::InstallFailed {
            package: package.to_owned(),
            stderr: "apt-get succeeded but dpkg does not list the package as installed".into(),
            stdout: String::new(),
        })
}

pub(crate) async fn load_record(path: PathBuf) -> Result<std::collections::BTreeSet<String>> {
    tokio::task::spawn_blocking(move || record::load(&path))
        .await
        .map_err(|source| Error::TaskFailed {
            what: "reading the package record",
            source,
        })?
}

pub(crate) async fn save_record(
    path: PathBuf,
    packages: std::collections::BTreeSet<String>,
) -> Result<()> {
    tokio::task::spawn_blocking(move || record::save(&path, &packages))
        .await
        .map_err(|source| Error::TaskFailed {
            what: "writing the package record",
            source,
        })?
}

/// Whether every package installing `target` would downgrade is in `recorded`, by
/// apt's simulation (no lock, no change).
async fn downgrades_only(
    target: &str,
    recorded: &std::collections::BTreeSet<String>,
) -> Result<bool> {
    let args = [
        "install",
        "-s",
        "-q",
        "--no-install-recommends",
        "--no-remove",
        "--allow-downgrades",
        "-o",
        "Debug::NoLocking=true",
        target,
    ];
    let out = process::run(APT_GET, &args, &[("DEBIAN_FRONTEND", "noninteractive")]).await?;
    Ok(downgraded(&out.stdout)
        .iter()
        .all(|name| recorded.contains(name)))
}

/// The packages apt lists under "The following packages will be DOWNGRADED:".
fn downgraded(stdout: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in stdout.lines() {
        if line.starts_with("The following packages will be DOWNGRADED") {
            inside = true;
        } else if inside && line.starts_with(' ') {
            names.extend(line.split_whitespace().map(str::to_owned));
        } else {
            inside = false;
        }
    }
    names
}

/// Makes apt wait for the dpkg and apt locks instead of failing at once.
pub(crate) fn lock_timeout_option() -> String {
    format!("DPkg::Lock::Timeout={}", DPKG_LOCK_TIMEOUT.as_secs())
}

/// Reports each daemon action the guard refused. Maintainer scripts run on dpkg's pty,
/// which apt copies to its stdout, so the guard's message can be in either stream.
fn log_denials(package: &str, output: &str) {
    for line in output.lines() {
        if let Some(action) = line.split_once(DENIED).map(|(_, action)| action.trim()) {
            tracing::info!(
                package,
                action,
                "kept a maintainer script from starting or stopping a daemon"
            );
        }
    }
}

/// A package from the apt sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptPackage {
    /// Debian package name.
    pub name: String,
    /// Exact version, if pinned.
    pub version: Option<String>,
}

/// Installs packages from the apt sources.
#[derive(Debug, Clone)]
pub struct Apt {
    apt_get: Arc<AptGet>,
}

impl Apt {
    pub(crate) fn new(apt_get: Arc<AptGet>) -> Self {
        Self { apt_get }
    }
}

/// The installed version if it satisfies the pin (any version when unpinned).
fn matching(installed: Option<String>, pin: Option<&str>) -> Option<String> {
    installed.filter(|v| pin.is_none_or(|pin| pin == v))
}

impl Apt {
    /// Makes `image` present; with `newest` (pull policy `Always`) an unpinned package is
    /// brought to the newest candidate of lists no older than the configured age.
    pub(crate) async fn ensure(&self, image: &AptPackage, newest: bool) -> Result<Installed> {
        let name = image.name.as_str();
        let _serial = self.apt_get.serialize().await;
        let before = dpkg::installed_version(name).await?;
        let mut refreshed = false;
        let wanted = match (&image.version, newest) {
            (Some(version), _) => Some(version.clone()),
            (None, true) => {
                refreshed = self.apt_get.update(name).await?;
                self.apt_get.candidate(name).await?
            }
            (None, false) => None,
        };
        if let Some(version) = matching(before.clone(), wanted.as_deref()) {
            tracing::info!(package = name, version, "already installed");
            return Installed::of_package(
                name,
                version.clone(),
                format!("{name}={version}"),
                false,
            )
            .await;
        }
        let spec = match &wanted {
            Some(version) => format!("{name}={version}"),
            None => name.to_owned(),
        };
        tracing::info!(package = name, spec, "resolving");
        if !self.apt_get.is_available(&spec).await? {
            refreshed |= self.apt_get.update(name).await?;
            if !self.apt_get.is_available(&spec).await? {
                return Err(Error::PackageNotFound {
                    package: name.to_owned(),
                    version: image.version.clone(),
                });
            }
        }
        self.apt_get
            .install_refreshing(name, &spec, refreshed)
            .await?;
        let version = installed_after_apt(name).await?;
        tracing::info!(package = name, version, before, "installed");
        Installed::of_package(
            name,
            version.clone(),
            format!("{name}={version}"),
            before.is_none(),
        )
        .await
    }
}

impl PackageManager for Apt {
    type Image = AptPackage;

    async fn install(&self, image: &AptPackage) -> Result<Installed> {
        self.ensure(image, false).await
    }

    async fn query(&self, image: &AptPackage) -> Result<Option<Installed>> {
        let name = image.name.as_str();
        match matching(
            dpkg::installed_version(name).await?,
            image.version.as_deref(),
        ) {
            Some(version) => {
                Installed::of_package(name, version.clone(), format!("{name}={version}"), false)
                    .await
                    .map(Some)
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downgraded_list_read_from_apt_output() {
        let out = "Reading package lists...\nThe following packages will be DOWNGRADED:\n  \
                   foo libfoo1\n  bar\nThe following NEW packages will be installed:\n  new\n\
                   0 upgraded, 1 newly installed, 3 downgraded\n";
        assert_eq!(downgraded(out), ["foo", "libfoo1", "bar"]);
        assert!(downgraded("0 upgraded\n").is_empty());
    }

    #[test]
    fn unpinned_accepts_any_installed_version() {
        assert_eq!(matching(Some("1.0".into()), None), Some("1.0".into()));
    }

    #[test]
    fn pinned_needs_exactly_that_version() {
        assert_eq!(
            matching(Some("1.0".into()), Some("1.0")),
            Some("1.0".into())
        );
        assert_eq!(matching(Some("1.0".into()), Some("2.0")), None);
        assert_eq!(matching(None, Some("2.0")), None);
    }
}
