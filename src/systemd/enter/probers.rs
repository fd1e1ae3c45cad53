//! The registry of the units' resident probers ([`super::prober`]): for each unit, the
//! prober serving the current run of its main process, or the mark that none can. A run is
//! named by a pidfd on its main process, so a recycled pid is never taken for it. Layer 3.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::io::unix::AsyncFd;

use super::pidfd;

/// Where the Debian package installs the prober.
const INSTALLED: &str = "/usr/libexec/systemk/systemk-prober";
/// Its name beside the `systemk` binary (a build tree).
const BESIDE: &str = "systemk-prober";

/// The slots by unit name.
pub(super) type Units = Mutex<HashMap<String, Slot>>;

/// The probers of one systemd connection (and its clones), by unit.
#[derive(Default)]
pub(crate) struct Probers {
    /// `systemk-prober`, opened `O_PATH` when systemk started: executed by fd inside the
    /// container's view, where its path may not exist; `None` when there is none.
    executable: Option<OwnedFd>,
    units: Arc<Units>,
    next_generation: AtomicU64,
}

/// What a unit has for the current run of its main process.
pub(super) enum Slot {
    /// A prober serves the run.
    Serving(Arc<Prober>),
    /// No prober could start for this run: its commands go the direct way.
    Unavailable(Run),
}

/// One run of a unit's main process, held by a pidfd: while it is alive, the pid is its.
pub(super) struct Run {
    pub(super) main_pid: u32,
    pub(super) main_process: OwnedFd,
}

impl Run {
    /// The same run, held by a second pidfd.
    pub(super) fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            main_pid: self.main_pid,
            main_process: self.main_process.try_clone()?,
        })
    }

    fn is(&self, main_pid: u32) -> bool {
        self.main_pid == main_pid && pidfd::pidfd_alive(&self.main_process)
    }
}

pub(super) struct Prober {
    pub(super) run: Run,
    pub(super) generation: u64,
    pub(super) socket: AsyncFd<OwnedFd>,
    /// The main process's environment when the prober started: each command's.
    pub(super) environment: Vec<(OsString, OsString)>,
    /// Held for one request and its reply: a second command at once goes the direct way.
    pub(super) busy: tokio::sync::Mutex<()>,
    /// The id of the next request.
    pub(super) next_id: AtomicU32,
    /// The task that owns the prober's process and forgets the prober when it ends.
    pub(super) owner: tokio::task::AbortHandle,
    /// A stop of the unit kills every process in its cgroup, the prober and the main
    /// process included ([`super::settings::Settings::stop_kills_every_process`]): while
    /// the main process runs, the unit has not been stopped since the prober started, so
    /// the run it serves is the current one.
    pub(super) ends_with_its_run: bool,
}

impl Drop for Prober {
    fn drop(&mut self) {
        // The owner's `Child` kills and reaps the process as it is dropped.
        self.owner.abort();
    }
}

impl Probers {
    /// The probers of a systemk whose executable is `systemk_binary`: `systemk-prober`
    /// beside it, or where the package installs it.
    pub(crate) fn beside(systemk_binary: Option<&Path>) -> Self {
        let beside = systemk_binary
            .and_then(Path::parent)
            .map(|dir| dir.join(BESIDE));
        let executable = beside
            .iter()
            .map(AsRef::as_ref)
            .chain([Path::new(INSTALLED)])
            .find_map(|path| open_executable(path).ok());
        if executable.is_none() {
            tracing::debug!(
                "no {BESIDE} beside systemk or at {INSTALLED}: every exec probe enters its container anew"
            );
        }
        Self::with_executable(executable)
    }

    /// The probers run `path`.
    pub(crate) fn at(path: &Path) -> io::Result<Self> {
        Ok(Self::with_executable(Some(open_executable(path)?)))
    }

    fn with_executable(executable: Option<OwnedFd>) -> Self {
        Self {
            executable,
            ..Self::default()
        }
    }

    fn units(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        lock(&self.units)
    }

    /// How many probers are serving.
    pub(crate) fn serving(&self) -> usize {
        self.units()
            .values()
            .filter(|slot| matches!(slot, Slot::Serving(_)))
            .count()
    }
}

impl std::fmt::Debug for Probers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probers")
            .field("executable", &self.executable)
            .field("serving", &self.serving())
            .finish()
    }
}

fn lock(units: &Units) -> MutexGuard<'_, HashMap<String, Slot>> {
    units
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn open_executable(path: &Path) -> io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)?;
    Ok(file.into())
}

/// What [`Probers::current`] found.
pub(super) enum Current {
    Serving(Arc<Prober>),
    Unavailable,
    Missing,
}

impl Probers {
    /// The unit's slot for the run `main_pid`; a slot of another run is dropped (a prober
    /// with it, killed).
    pub(super) fn current(&self, unit: &str, main_pid: u32) -> Current {
        let mut units = self.units();
        match units.get(unit) {
            Some(Slot::Serving(prober)) if prober.run.is(main_pid) => {
                Current::Serving(prober.clone())
            }
            Some(Slot::Unavailable(run)) if run.is(main_pid) => Current::Unavailable,
            Some(_) => {
                units.remove(unit);
                Current::Missing
            }
            None => Current::Missing,
        }
    }

    /// The unit's prober, when it is known to serve the current run without asking
    /// systemd for the unit's `MainPID`: it [ends with its run](Prober::ends_with_its_run)
    /// and the main process it serves is running.
    pub(super) fn serving_current_run(&self, unit: &str) -> Option<Arc<Prober>> {
        match self.units().get(unit) {
            Some(Slot::Serving(prober))
                if prober.ends_with_its_run && pidfd::pidfd_running(&prober.run.main_process) =>
            {
                Some(prober.clone())
            }
            _ => None,
        }
    }

    /// Files the unit's slot for its current run. Runs that ended are forgotten whenever
    /// one is filed: what is left is live.
    pub(super) fn file(&self, unit: &str, slot: Slot) {
        let mut units = self.units();
        units.retain(|_, slot| match slot {
            Slot::Serving(prober) => pidfd::pidfd_alive(&prober.run.main_process),
            Slot::Unavailable(run) => pidfd::pidfd_alive(&run.main_process),
        });
        units.insert(unit.to_owned(), slot);
    }

    /// Forgets the unit's prober `generation` (killing it, once no request holds it).
    pub(super) fn forget(&self, unit: &str, generation: u64) {
        forget_in(&self.units, unit, generation);
    }

    /// The registry, for the task that owns a prober's process to forget it by.
    pub(super) fn registry(&self) -> Weak<Units> {
        Arc::downgrade(&self.units)
    }

    /// The next prober's generation.
    pub(super) fn generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// `systemk-prober`, when there is one.
    pub(super) fn executable(&self) -> Option<&OwnedFd> {
        self.executable.as_ref()
    }
}

/// [`Probers::forget`] through the registry itself.
pub(super) fn forget_in(units: &Units, unit: &str, generation: u64) {
    let mut units = lock(units);
    if matches!(units.get(unit), Some(Slot::Serving(p)) if p.generation == generation) {
        units.remove(unit);
    }
}
