//! The remove verb, for garbage collection: apt's simulation of removing one package
//! (what else would go with it), and `apt-get remove` of one package under the same dpkg
//! lock and policy-rc.d guard as an install, so a prerm script neither stops a daemon nor
//! runs beside another package manager. `remove`, not `purge`: conffiles under `/etc`
//! may hold an admin's edits, and apt keeps them (dpkg state `config-files`). Never
//! autoremove: only the named package goes. Layer 1.

use std::collections::BTreeSet;
use std::path::Path;

use std::time::Duration;

use super::apt::{APT_GET_ENV, AptGet, lock_timeout_option};
use super::error::{Error, Result};
use super::gc;
use super::guard::PolicyGuard;
use super::lock::{ARCHIVES_LOCK, DpkgLock, FRONTEND_LOCK};
use super::process;

const APT_GET: &str = "apt-get";

/// How long a removal waits for another package manager (an admin's apt, unattended
/// upgrades) to release the dpkg lock: briefly, since installs of pods wait while a
/// garbage collection pass runs; a busy lock just defers the pass.
pub(crate) const REMOVE_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The options every removal (and its simulation) runs with: no autoremove, whatever the
/// host's apt configuration says.
const NO_AUTOREMOVE: &str = "APT::Get::AutomaticRemove=false";

/// The packages `apt-get remove <package>` would remove, by apt's simulation (no lock, no
/// change).
pub(crate) async fn simulate(package: &str) -> Result<BTreeSet<String>> {
    let args = [
        "remove",
        "-s",
        "-q",
        "-o",
        "Debug::NoLocking=true",
        "-o",
        NO_AUTOREMOVE,
        package,
    ];
    let out = process::run(APT_GET, &args, &[("DEBIAN_FRONTEND", "noninteractive")]).await?;
    if !out.status.success() {
        return Err(Error::RemoveFailed {
            package: package.to_owned(),
            stdout: out.stdout_tail(),
            stderr: out.stderr,
        });
    }
    Ok(gc::simulated_removals(&out.stdout))
}

/// What [`remove_alone`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The package was removed.
    Removed,
    /// It was kept: removing it would also remove these packages (which depend on it).
    Kept { dependents: Vec<String> },
}

/// Removes `package` with `apt-get remove` if apt's simulation, run under the same dpkg
/// lock (so no other package manager changes the answer in between), removes nothing
/// else. The lock, guard and apt-get run in their own task, so a cancelled caller neither
/// kills dpkg halfway nor removes the guard while dpkg runs.
pub(crate) async fn remove_alone(apt_get: &AptGet, package: &str) -> Result<Removal> {
    let policy_rc_d = apt_get.policy_rc_d().to_owned();
    let package = package.to_owned();
    let task = tokio::spawn(async move {
        let _lock = DpkgLock::acquire(
            &[Path::new(FRONTEND_LOCK), Path::new(ARCHIVES_LOCK)],
            REMOVE_LOCK_TIMEOUT,
        )
        .await?;
        if let Err(dependents) = gc::removes_only(&package, &simulate(&package).await?) {
            return Ok(Removal::Kept { dependents });
        }
        let guard = tokio::task::spawn_blocking(move || PolicyGuard::install(&policy_rc_d))
            .await
            .map_err(|source| Error::TaskFailed {
                what: "installing the policy-rc.d guard",
                source,
            })??;
        let lock_timeout = lock_timeout_option();
        let args = [
            "remove",
            "-y",
            "-q",
            "-o",
            "Debug::NoLocking=true",
            "-o",
            NO_AUTOREMOVE,
            "-o",
            &lock_timeout,
            &package,
        ];
        let out = process::run(APT_GET, &args, APT_GET_ENV).await;
        drop(guard);
        let out = out?;
        if !out.status.success() {
            return Err(Error::RemoveFailed {
                package,
                stdout: out.stdout_tail(),
                stderr: out.stderr,
            });
        }
        Ok(Removal::Removed)
    });
    task.await.map_err(|source| Error::TaskFailed {
        what: "apt-get remove",
        source,
    })?
}
