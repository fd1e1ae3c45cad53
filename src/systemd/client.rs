//! [`Systemd`]: the client other layers use to load, start, stop, remove and list units.
//! Every job-producing call subscribes to `JobRemoved` before it enqueues the job and
//! waits for that job's result. Unit-file changes are batched: one daemon-reload per call.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use zbus::{Connection, OwnedObjectPath};

use super::dbus_errors::DbusErrors;
use super::enter::probers::Probers;
use super::error::{Error, Result};
use super::files;
use super::jobs::{JobResult, PendingJob};
use super::proxy::ManagerProxy;
use super::reload::Reloader;
use super::status::{self, UnitStatus};
use super::usage::{self, UnitUsage};
use crate::unit::{
    KubernetesMeta, SliceName, UNIT_NAME_MAX, UNIT_PREFIX, UnitName, stdin_socket_name,
};
use prometheus_client::metrics::counter::Counter;

/// Job mode for every job systemk enqueues: replace a conflicting pending job.
const JOB_MODE: &str = "replace";

/// Linux `SIGKILL`, sent when a stop outlasts its timeout.
const SIGKILL: i32 = 9;

/// How long a unit may take to go away after SIGKILL before the stop counts as failed.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// Position of the unit name among `JobRemoved`'s arguments (id, job, unit, result).
const JOB_REMOVED_UNIT_ARG: u8 = 2;

/// systemd's answer to a second `Subscribe` from the same connection.
const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";

/// Unit types a vendor package may ship that `disable_vendor` accepts.
const VENDOR_UNIT_SUFFIXES: &[&str] = &[
    ".service", ".socket", ".timer", ".path", ".target", ".mount",
];

/// A systemk unit with the pod metadata of its unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedUnit {
    /// The `[X-Kubernetes]` section.
    pub meta: KubernetesMeta,
    /// What systemd reports about the unit now.
    pub status: UnitStatus,
}

/// A connection to the system's service manager. Cheap to clone: clones share the bus
/// connection.
#[derive(Clone, Debug)]
pub struct Systemd {
    pub(super) connection: Connection,
    pub(super) manager: ManagerProxy<'static>,
    reloader: Reloader,
    /// daemon-reloads done through this connection and its clones.
    reloads: Counter,
    /// Failed D-Bus calls of this connection and its clones.
    pub(super) dbus_errors: DbusErrors,
    /// The units' resident probers (`run_in_unit`), shared by the clones.
    pub(super) probers: Arc<Probers>,
}

impl Systemd {
    /// Connects to the system bus and subscribes to systemd's signals.
    pub async fn connect() -> Result<Self> {
        let connection = Connection::system()
            .await
            .map_err(|error| Error::from_zbus("connect to the system bus", "", error))?;
        // The manager proxy reads no properties, so it needs no property cache (which
        // would watch every PropertiesChanged of the manager object).
        let manager = ManagerProxy::builder(&connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|error| Error::from_zbus("create manager proxy", "", error))?;
        match manager
            .subscribe()
            .await
            .map_err(|error| Error::from_zbus("Subscribe", "", error))
        {
            Err(error) if error.dbus_name() != Some(ALREADY_SUBSCRIBED) => return Err(error),
            _ => {}
        }
        let reloads = Counter::default();
        let dbus_errors = DbusErrors::default();
        Ok(Self {
            connection,
            reloader: Reloader::spawn(manager.clone(), reloads.clone(), dbus_errors.clone()),
            reloads,
            dbus_errors,
            manager,
            probers: Arc::new(Probers::beside(std::env::current_exe().ok().as_deref())),
        })
    }

    /// This connection with its `run_in_unit` probers running `prober` (a build's
    /// `systemk-prober`, for a process that is not systemk itself).
    pub fn with_prober(mut self, prober: &Path) -> std::io::Result<Self> {
        self.probers = Arc::new(Probers::at(prober)?);
        Ok(self)
    }

    /// How many units have a resident prober serving `run_in_unit`.
    pub fn probers_serving(&self) -> usize {
        self.probers.serving()
    }

    /// The count of daemon-reloads done, for `main` to register (`/metrics`).
    pub fn daemon_reloads(&self) -> Counter {
        self.reloads.clone()
    }

    /// The counts of failed D-Bus calls, for `main` to register (`/metrics`).
    pub fn dbus_errors(&self) -> DbusErrors {
        self.dbus_errors.clone()
    }

    /// Turns a failed call of `operation` on `unit` into this layer's error, counted.
    pub(super) fn failed<'a>(
        &'a self,
        operation: &'static str,
        unit: &'a str,
    ) -> impl FnOnce(zbus::Error) -> Error + 'a {
        move |error| {
            self.dbus_errors
                .record(Error::from_zbus(operation, unit, error))
        }
    }

    /// Writes every unit into `dir` (each atomically), then one daemon-reload if systemd
    /// has loaded one of them before: new units need none (`freshness.rs`).
    pub async fn write_units(&self, dir: &Path, units: &[(UnitName, String)]) -> Result<()> {
        self.write_units_beside(dir, units, &[]).await
    }

    /// [`Systemd::write_units`], where the reload also covers the unit files `touched`
    /// (written or deleted just before, e.g. by [`Systemd::write_stdin_sockets`]).
    pub async fn write_units_beside(
        &self,
        dir: &Path,
        units: &[(UnitName, String)],
        touched: &[String],
    ) -> Result<()> {
        if units.is_empty() && touched.is_empty() {
            return Ok(());
        }
        for (name, content) in units {
            files::write(dir, name, content).await?;
        }
        tracing::debug!(dir = %dir.display(), units = units.len(), "unit files written");
        let names: Vec<&str> = units
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(touched.iter().map(String::as_str))
            .collect();
        self.reload_if_stale(&names).await
    }

    /// Writes or deletes the socket units holding the standard input of the units
    /// `sockets` names (`Some`: its content, `None`: the unit has none), without a
    /// daemon-reload; returns the socket files written or deleted, for
    /// [`Systemd::write_units_beside`] of their services to cover.
    pub async fn write_stdin_sockets(
        &self,
        dir: &Path,
        sockets: &[(UnitName, Option<String>)],
    ) -> Result<Vec<String>> {
        let mut touched = Vec::new();
        for (name, content) in sockets {
            let file = stdin_socket_name(name);
            let changed = match content {
                Some(content) => {
                    files::write_named(dir, &file, content).await?;
                    true
                }
                None => files::remove_named(dir, &file).await?,
            };
            if changed {
                touched.push(file);
            }
        }
        Ok(touched)
    }

    /// Writes systemk's slice units (the root, the QoS slices, a pod's slice) into `dir`,
    /// each only when its content changed, then reloads once if systemd had loaded one of
    /// those: it then applies the new limits to the running slice at once. A new slice is
    /// read from disk when its first unit starts.
    pub async fn write_slices(&self, dir: &Path, slices: &[(SliceName, String)]) -> Result<()> {
        let mut written = Vec::new();
        for (name, content) in slices {
            let path = dir.join(name.as_str());
            if tokio::fs::read_to_string(&path).await.ok().as_deref() == Some(content) {
                continue;
            }
            files::write_named(dir, name.as_str(), content).await?;
            written.push(name.as_str());
        }
        if written.is_empty() {
            return Ok(());
        }
        tracing::info!(dir = %dir.display(), slices = ?written, "slices written");
        self.reload_if_stale(&written).await
    }

    /// Stops pod slices (and with them anything still in them), forgets their failed
    /// state and deletes their files from `dir`; the reload that makes systemd forget
    /// them comes later, coalesced (`reload.rs`). A slice systemd does not know and a file
    /// that is gone are fine.
    pub async fn remove_slices(&self, dir: &Path, names: &[SliceName]) -> Result<()> {
        let mut removed = Vec::new();
        for name in names {
            let path = dir.join(name.as_str());
            let on_disk = tokio::fs::try_exists(&path).await.unwrap_or(true);
            self.stop_unit(name.as_str(), None).await?;
            match self.reset_failed_named(name.as_str()).await {
                Err(error) if !error.is_no_such_unit() => return Err(error),
                _ => {}
            }
            if on_disk {
                files::remove_named(dir, name.as_str()).await?;
                removed.push(name.as_str());
            }
        }
        if removed.is_empty() {
            return Ok(());
        }
        tracing::info!(slices = ?removed, "slices removed");
        self.reloader.owe();
        Ok(())
    }

    /// The pod slices `dir` holds files of, with their pods' UIDs.
    pub async fn list_pod_slices(&self, dir: &Path) -> Result<Vec<(SliceName, String)>> {
        files::list_pod_slices(dir).await
    }

    /// daemon-reload: systemd re-reads every unit file. Concurrent callers share reloads
    /// (see `reload.rs`); each returns after one that started after its call.
    pub async fn reload(&self) -> Result<()> {
        self.reloader.reload().await
    }

    /// Enables units persistently (their `[Install]` links under `/etc`), so they start at
    /// boot without systemk. No reload: the links only matter at the next boot. Links
    /// that point elsewhere are replaced (`force`): a systemk unit name belongs to systemk.
    pub async fn enable(&self, names: &[UnitName]) -> Result<()> {
        let names: Vec<&str> = names.iter().map(UnitName::as_str).collect();
        self.manager
            .enable_unit_files(&names, false, true)
            .await
            .map_err(self.failed("EnableUnitFiles", &names.join(" ")))?;
        Ok(())
    }

    /// Starts a unit and waits for its start job.
    pub async fn start(&self, name: &UnitName) -> Result<JobResult> {
        let mut job = self
            .enqueue("StartUnit", name.as_str(), || {
                self.manager.start_unit(name.as_str(), JOB_MODE)
            })
            .await?;
        job.wait().await
    }

    /// Restarts a unit and waits for its restart job.
    pub async fn restart(&self, name: &UnitName) -> Result<JobResult> {
        let mut job = self
            .enqueue("RestartUnit", name.as_str(), || {
                self.manager.restart_unit(name.as_str(), JOB_MODE)
            })
            .await?;
        job.wait().await
    }

    /// Restarts a unit and waits at most `wait` for its job. `None`: the job still runs
    /// then, as it does until a `Type=notify` unit sends `READY=1` or a `Type=forking`
    /// unit's parent exits; the job goes on in systemd, and its end shows as the unit's
    /// state change (see [`Systemd::subscribe`]).
    pub async fn restart_within(
        &self,
        name: &UnitName,
        wait: Duration,
    ) -> Result<Option<JobResult>> {
        let mut job = self
            .enqueue("RestartUnit", name.as_str(), || {
                self.manager.restart_unit(name.as_str(), JOB_MODE)
            })
            .await?;
        match tokio::time::timeout(wait, job.wait()).await {
            Ok(result) => result.map(Some),
            Err(_elapsed) => Ok(None),
        }
    }

    /// Stops a unit (SIGTERM, as its unit file says) and waits at most `timeout` before
    /// it SIGKILLs every process of the unit. A unit that is not loaded is stopped already.
    pub async fn stop(&self, name: &UnitName, timeout: Duration) -> Result<JobResult> {
        self.stop_unit(name.as_str(), Some(timeout)).await
    }

    /// Clears a failed unit's failed state and its start-rate counter.
    pub async fn reset_failed(&self, name: &UnitName) -> Result<()> {
        self.reset_failed_named(name.as_str()).await
    }

    async fn reset_failed_named(&self, name: &str) -> Result<()> {
        self.manager
            .reset_failed_unit(name)
            .await
            .map_err(self.failed("ResetFailedUnit", name))
    }

    /// Stops, disables and deletes units. systemd forgets them at once unless another
    /// unit still refers to them (a target they were enabled into, loaded by an earlier
    /// reload); then at the reload owed for them, which comes later, coalesced
    /// (`reload.rs`), or first when a unit of the same name is written again
    /// (`freshness.rs`). Stops use each unit's own `TimeoutStopSec`; callers that owe a
    /// grace period call [`Systemd::stop`] first.
    pub async fn remove(&self, dir: &Path, names: &[UnitName]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        for name in names {
            self.stop_unit(name.as_str(), None).await?;
            match self.reset_failed(name).await {
                Err(error) if !error.is_no_such_unit() => return Err(error),
                _ => {}
            }
        }
        let list: Vec<&str> = names.iter().map(UnitName::as_str).collect();
        self.disable(&list).await?;
        for name in names {
            files::remove(dir, name).await?;
            // Its standard input's socket, if it had one, stopped with it (`BindsTo=`).
            files::remove_named(dir, &stdin_socket_name(name)).await?;
        }
        tracing::info!(units = ?list, "units removed");
        self.reloader.owe();
        Ok(())
    }

    /// Stops and disables units a package brought along (e.g. `ssh.service`), so they
    /// stay off after a reboot. `names` are any unit names, validated here.
    pub async fn disable_vendor(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        for name in names {
            check_vendor_unit_name(name)?;
        }
        for name in names {
            self.stop_unit(name, None).await?;
        }
        let list: Vec<&str> = names.iter().map(String::as_str).collect();
        self.disable(&list).await?;
        tracing::info!(units = ?list, "vendor units stopped and disabled");
        self.reload().await
    }

    /// systemd's version (the manager's `Version` property), e.g. `252.22-1~deb12u1`.
    pub async fn version(&self) -> Result<String> {
        self.manager
            .version()
            .await
            .map_err(self.failed("Get Version", ""))
    }

    /// What a unit uses now (`MemoryCurrent`, `TasksCurrent`).
    pub async fn usage(&self, name: &UnitName) -> Result<UnitUsage> {
        let path = self
            .manager
            .load_unit(name.as_str())
            .await
            .map_err(self.failed("LoadUnit", name.as_str()))?;
        usage::read(&self.connection, name, &path)
            .await
            .map_err(|error| self.dbus_errors.record(error))
    }

    /// What systemd reports about a unit; a unit without a file reads as inactive.
    ///
    /// `GetUnit`, not `LoadUnit`: a unit systemd has not loaded reads as loading it would
    /// (inactive, never ran: unloading forgets every earlier run), while loading it to ask
    /// costs PID 1 a read of its file twice, since nothing holds the unit and systemd
    /// unloads it again before the `GetAll`, which loads it anew. A new pod's unit was
    /// loaded three times before it ran; now once, by its start.
    pub async fn status(&self, name: &UnitName) -> Result<UnitStatus> {
        let path = match self.manager.get_unit(name.as_str()).await {
            Ok(path) => path,
            Err(error) => {
                let error = Error::from_zbus("GetUnit", name.as_str(), error);
                if error.is_no_such_unit() {
                    return Ok(UnitStatus::unloaded(name.clone()));
                }
                return Err(self.dbus_errors.record(error));
            }
        };
        status::read(&self.connection, name, &path)
            .await
            .map_err(|error| self.dbus_errors.record(error))
    }

    /// Every systemk unit systemd has loaded or `dir` holds a file for, with its status
    /// and the metadata of its unit file. Units whose file is gone or has no valid
    /// `[X-Kubernetes]` section are skipped with a warning: they cannot be tied to a pod.
    pub async fn list_managed(&self, dir: &Path) -> Result<Vec<ManagedUnit>> {
        let pattern = format!("{UNIT_PREFIX}*");
        let loaded = self
            .manager
            .list_units_by_patterns(&[], &[&pattern])
            .await
            .map_err(self.failed("ListUnitsByPatterns", &pattern))?;
        // Loaded units come with their object path; units only on disk are loaded by name.
        let mut names: BTreeMap<UnitName, Option<OwnedObjectPath>> = BTreeMap::new();
        for row in loaded {
            if let Ok(name) = row.0.parse::<UnitName>() {
                names.insert(name, Some(row.6));
            }
        }
        for name in files::list(dir).await? {
            names.entry(name).or_insert(None);
        }
        let mut managed = Vec::with_capacity(names.len());
        for (name, path) in names {
            match files::read_meta(dir.join(name.as_str())).await {
                Ok(Some(meta)) => {
                    let status = match path {
                        Some(path) => status::read(&self.connection, &name, &path)
                            .await
                            .map_err(|error| self.dbus_errors.record(error))?,
                        None => self.status(&name).await?,
                    };
                    managed.push(ManagedUnit { meta, status });
                }
                // Removed, and systemd still holds it until the reload owed for it.
                Ok(None) => tracing::debug!(unit = %name, "loaded systemk unit has no unit file"),
                Err(error) => tracing::warn!(unit = %name, %error, "skipping unit"),
            }
        }
        Ok(managed)
    }

    /// The units of the pod `namespace`/`pod`, as [`Systemd::list_managed`] shows them,
    /// without asking systemd about any other pod: only the unit files whose name starts
    /// like the pod's are read (not every pod's of the namespace), and only the pod's units
    /// are looked up.
    pub async fn pod_units(
        &self,
        dir: &Path,
        namespace: &str,
        pod: &str,
    ) -> Result<Vec<ManagedUnit>> {
        let prefix = UnitName::pod_prefix(namespace, pod);
        let mut units = Vec::new();
        for name in files::list(dir).await? {
            if !name.as_str().starts_with(&prefix) {
                continue;
            }
            match files::read_meta(dir.join(name.as_str())).await {
                Ok(Some(meta)) if meta.namespace == namespace && meta.pod_name == pod => {
                    let status = self.status(&name).await?;
                    units.push(ManagedUnit { meta, status });
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(unit = %name, %error, "skipping unit"),
            }
        }
        Ok(units)
    }

    async fn disable(&self, names: &[&str]) -> Result<()> {
        self.manager
            .disable_unit_files(names, false)
            .await
            .map_err(self.failed("DisableUnitFiles", &names.join(" ")))?;
        Ok(())
    }

    /// Stops `name`; with a timeout, SIGKILLs the unit when the stop job outlasts it.
    async fn stop_unit(&self, name: &str, timeout: Option<Duration>) -> Result<JobResult> {
        let enqueued = self.enqueue("StopUnit", name, || self.manager.stop_unit(name, JOB_MODE));
        let mut job = match enqueued.await {
            Err(error) if error.is_no_such_unit() => return Ok(JobResult::Done),
            other => other?,
        };
        let Some(timeout) = timeout else {
            return job.wait().await;
        };
        if let Ok(result) = tokio::time::timeout(timeout, job.wait()).await {
            return result;
        }
        tracing::warn!(unit = name, ?timeout, "stop timed out, sending SIGKILL");
        self.manager
            .kill_unit(name, "all", SIGKILL)
            .await
            .map_err(self.failed("KillUnit", name))?;
        tokio::time::timeout(KILL_GRACE, job.wait())
            .await
            .unwrap_or_else(|_| {
                Err(Error::StopTimedOut {
                    unit: name.to_owned(),
                    waited: timeout + KILL_GRACE,
                })
            })
    }

    /// Subscribes to `JobRemoved` of this unit, then enqueues the job `call` makes. The
    /// match rule filters on the unit name (argument 2), so the signal queue only holds
    /// this unit's jobs: zbus stops reading the shared connection while a queue is full,
    /// and this one is not polled while the method call is in flight.
    async fn enqueue<F, Fut>(
        &self,
        operation: &'static str,
        name: &str,
        call: F,
    ) -> Result<PendingJob>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = zbus::Result<OwnedObjectPath>>,
    {
        let removed = self
            .manager
            .receive_job_removed_with_args(&[(JOB_REMOVED_UNIT_ARG, name)])
            .await
            .map_err(self.failed("watch JobRemoved for", name))?;
        let path = call().await.map_err(self.failed(operation, name))?;
        Ok(PendingJob::new(operation, name, removed, path))
    }
}

/// Vendor unit names come from package file lists: check them before they reach systemd.
fn check_vendor_unit_name(name: &str) -> Result<()> {
    let why = if name.is_empty() || name.len() > UNIT_NAME_MAX {
        Some("it must be 1 to 255 characters long")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":_.-@\\".contains(&b))
    {
        Some("only A-Z a-z 0-9 : _ . - @ \\ are allowed")
    } else if name.starts_with('.') || name.starts_with('-') {
        Some("it must not start with '.' or '-'")
    } else if !VENDOR_UNIT_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        Some("it must end in .service, .socket, .timer, .path, .target or .mount")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidUnitName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_from_packages_pass() {
        for name in [
            "ssh.service",
            "uptimed.service",
            "systemd-fsck@dev-sda1.service",
            "x.socket",
        ] {
            assert!(check_vendor_unit_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn vendor_names_that_are_no_units_fail() {
        for name in [
            "",
            "ssh",
            "../ssh.service",
            "a b.service",
            "-x.service",
            "x.service\n",
        ] {
            assert!(check_vendor_unit_name(name).is_err(), "{name:?}");
        }
    }
}
