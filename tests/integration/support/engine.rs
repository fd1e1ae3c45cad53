//! Driving one pod through the real engine: a `systemk::pod::Context` with the real
//! installer, the sandbox's systemd over D-Bus, pod directories in a fresh state dir and a
//! fresh runtime dir under the sandbox's private `/run`, and unit files in its private `/etc/systemd/system`.
//! [`PodRun`] runs reconcile passes until a condition holds and always cleans up: through
//! `systemk::pod::cleanup` at the end (which leaves no unit, slice or directory of the
//! pod), or from its drop guard when the test failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use systemk::package::{Installer, InstallerConfig};
use systemk::pod::{
    Context, EVENT_CAPACITY, Pass, PodDirs, PodState, Progress, ProgressReceiver, cleanup,
    progress_channel, reconcile,
};
use systemk::systemd::{Systemd, UnitStatus};
use systemk::unit::{NodeInfo, NodeSecurity, SystemUsers, UnitName};
use tempfile::TempDir;

use super::{require_sandbox, wait_for};

/// systemd's unit directory for the administrator; private to the sandbox.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The node name units are built with (`HOSTNAME` of every container).
pub const NODE_HOSTNAME: &str = "systemk-itest-node";

/// Long enough for a slow machine to start a unit, short enough to fail fast.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Long enough for apt to wait for another test run's dpkg lock and install a package.
pub const INSTALL_DEADLINE: Duration = Duration::from_secs(600);

/// The engine's context over a fresh state directory and `.deb` cache.
pub struct Engine {
    ctx: Context,
    /// Removed when the engine is dropped, after every pod's cleanup.
    _state_dir: TempDir,
    /// The engine's `--runtime-dir` (a tmpfs, as `/run/systemk` is); removed with it.
    _runtime_dir: TempDir,
    cache_dir: TempDir,
}

impl Engine {
    /// A context whose installer trusts `extra_ca_pem` besides the system roots.
    pub async fn new(extra_ca_pem: Option<&str>) -> Self {
        Self::with_installer(extra_ca_pem, |_| {}).await
    }

    /// Like [`Engine::new`], with the installer's configuration changed by `adjust`.
    pub async fn with_installer(
        extra_ca_pem: Option<&str>,
        adjust: impl FnOnce(&mut InstallerConfig),
    ) -> Self {
        // Under the sandbox's private /run: units have PrivateTmp=yes, so bind sources
        // below /tmp would not be the test's /tmp.
        Self::build(extra_ca_pem, adjust, Path::new("/run")).await
    }

    /// Like [`Engine::new`], with the state directory on disk under `/var/lib` (the host's,
    /// as `/var/lib/systemk` is), so that it outlives a reboot: a systemd booted with a
    /// fresh `/run` finds the pods' directories its units bind.
    pub async fn persistent() -> Self {
        Self::build(None, |_| {}, Path::new("/var/lib")).await
    }

    async fn build(
        extra_ca_pem: Option<&str>,
        adjust: impl FnOnce(&mut InstallerConfig),
        state_parent: &Path,
    ) -> Self {
        require_sandbox();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state_dir = tempfile::Builder::new()
            .prefix("systemk-itest.")
            .tempdir_in(state_parent)
            .unwrap();
        let runtime_dir = tempfile::Builder::new()
            .prefix("systemk-itest-run.")
            .tempdir_in("/run")
            .unwrap();
        let cache_dir = tempfile::Builder::new()
            .prefix("systemk-itest-debs.")
            .tempdir_in("/run")
            .unwrap();
        let mut config = InstallerConfig {
            deb_cache_dir: cache_dir.path().to_owned(),
            extra_root_certs_pem: extra_ca_pem
                .map(|pem| vec![pem.as_bytes().to_vec()])
                .unwrap_or_default(),
            ..InstallerConfig::default()
        };
        adjust(&mut config);
        let installer = Installer::new(config).unwrap();
        let ctx = Context {
            installer,
            systemd: Systemd::connect().await.unwrap(),
            dirs: PodDirs::new(state_dir.path(), runtime_dir.path()),
            unit_dir: PathBuf::from(UNIT_DIR),
            node: NodeInfo {
                hostname: NODE_HOSTNAME.to_owned(),
                internal_ip: "127.0.0.1".to_owned(),
                external_ip: String::new(),
            },
            host_ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            users: Arc::new(SystemUsers),
            objects: None,
            kubernetes_service: None,
            allocatable: Default::default(),
            security: Arc::new(NodeSecurity {
                hidden_paths: vec![state_dir.path().to_str().unwrap().to_owned()],
                restricted_gids: systemk::config::restricted_gids(
                    &systemk::config::DEFAULT_RESTRICTED_GROUPS
                        .split(',')
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                    std::path::Path::new("/dev"),
                ),
                apparmor: false,
            }),
            // The engine runs passes directly; admission is the reconciler loop's.
            node_view: tokio::sync::watch::channel(Default::default()).1,
            metrics: Default::default(),
            installing: Default::default(),
        };
        Self {
            ctx,
            _state_dir: state_dir,
            _runtime_dir: runtime_dir,
            cache_dir,
        }
    }

    /// The context every pass uses.
    pub fn ctx(&self) -> &Context {
        &self.ctx
    }

    /// The `.deb` cache of the installer.
    pub fn cache_dir(&self) -> &Path {
        self.cache_dir.path()
    }

    /// Starts driving `pod` (which must carry a namespace, a name and a UID).
    pub fn run(&self, pod: Pod) -> PodRun {
        let uid = pod.metadata.uid.clone().expect("test pods carry a UID");
        let (probe_wakes, probe_woken) = tokio::sync::mpsc::channel(64);
        let mut state = PodState::default();
        state.wake_probes_through(probe_wakes);
        let (events, told) = progress_channel(EVENT_CAPACITY);
        state.report_events_to(events);
        PodRun {
            ctx: self.ctx.clone(),
            uid,
            pod: Arc::new(pod),
            state: tokio::sync::Mutex::new(state),
            probe_woken: std::sync::Mutex::new(probe_woken),
            told: std::sync::Mutex::new(told),
            cleaned: false,
        }
    }
}

/// One pod driven through reconcile passes.
pub struct PodRun {
    ctx: Context,
    uid: String,
    pod: Arc<Pod>,
    state: tokio::sync::Mutex<PodState>,
    /// Probes' wakes: the test runs passes itself, so they are only drained.
    probe_woken: std::sync::Mutex<tokio::sync::mpsc::Receiver<UnitName>>,
    /// The pod's events, as the reconciler would report them.
    told: std::sync::Mutex<ProgressReceiver>,
    cleaned: bool,
}

impl PodRun {
    /// One reconcile pass; returns the status it computed.
    pub async fn pass(&self) -> PodStatus {
        self.pass_report().await.1
    }

    /// One reconcile pass; returns what it found (when it wants the next pass) and the
    /// status it computed.
    pub async fn pass_report(&self) -> (Pass, PodStatus) {
        if let Ok(mut woken) = self.probe_woken.lock() {
            while woken.try_recv().is_ok() {}
        }
        let mut state = self.state.lock().await;
        let pass = reconcile(&self.ctx, &self.uid, &self.pod, &mut state)
            .await
            .unwrap_or_else(|err| panic!("reconcile pass of pod {}: {err}", self.uid));
        let status = state.status().cloned().expect("a pass computes a status");
        (pass, status)
    }

    /// Runs passes until `check` accepts the status, failing after `deadline`.
    pub async fn until<T>(
        &self,
        deadline: Duration,
        what: &str,
        check: impl Fn(&PodStatus) -> Option<T>,
    ) -> T {
        let (this, check) = (self, &check);
        wait_for(
            deadline,
            what,
            move || async move { check(&this.pass().await) },
        )
        .await
    }

    /// The events told since the last call: (reason, message).
    pub fn events(&self) -> Vec<(&'static str, String)> {
        let mut events = Vec::new();
        if let Ok(mut told) = self.told.lock() {
            while let Some(progress) = told.try_recv() {
                if let Progress::Event {
                    reason, message, ..
                } = progress
                {
                    events.push((reason, message));
                }
            }
        }
        events
    }

    /// The unit names of the pod now.
    pub async fn units(&self) -> Vec<UnitName> {
        self.state.lock().await.units().iter().cloned().collect()
    }

    /// The unit of `container` (an app or init container).
    pub fn unit_name(&self, container: &str) -> UnitName {
        let spec = self.pod.spec.as_ref().expect("test pods have a spec");
        let container = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == container)
            .expect("the container is in the pod");
        systemk::pod::unit_name(&self.pod, container).unwrap()
    }

    /// The unit file of `container` on disk.
    pub fn unit_path(&self, container: &str) -> PathBuf {
        Path::new(UNIT_DIR).join(self.unit_name(container).as_str())
    }

    /// What systemd reports about the unit of `container`.
    pub async fn unit_status(&self, container: &str) -> UnitStatus {
        self.ctx
            .systemd
            .status(&self.unit_name(container))
            .await
            .unwrap()
    }

    /// Runs passes until `container` is running, then returns its main process once it
    /// executes the container's program (not systemd's fork before `execve`).
    pub async fn running_pid(&self, deadline: Duration, container: &str) -> u32 {
        self.until(deadline, &format!("{container} to run"), |status| {
            container_status(status, container)?
                .state
                .as_ref()?
                .running
                .as_ref()
                .map(|_| ())
        })
        .await;
        wait_for(
            DEADLINE,
            &format!("{container}'s program to run"),
            || async {
                let pid = self.unit_status(container).await.main_pid;
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
                (pid != 0 && !exe.starts_with("/usr/lib/systemd")).then_some(pid)
            },
        )
        .await
    }

    /// The pod's emptyDir `volume` on the host.
    pub fn empty_dir(&self, volume: &str) -> PathBuf {
        systemk::unit::empty_dir_path(&self.ctx.dirs.pod_dir(&self.uid), volume)
    }

    /// The directory bound on `/run` for `container`, on the host.
    pub fn run_dir(&self, container: &str) -> PathBuf {
        systemk::unit::run_dir_path(&self.ctx.dirs.pod_dir(&self.uid), container)
    }

    /// Cleans up through the engine and checks that nothing of the pod is left.
    pub async fn finish(mut self) {
        let names = self.units().await;
        let pod_dir = self.ctx.dirs.pod_dir(&self.uid);
        let runtime_pod_dir = self.ctx.dirs.runtime_pod_dir(&self.uid);
        cleanup(&self.ctx, &self.uid, self.state.get_mut())
            .await
            .unwrap();
        self.cleaned = true;
        for name in names {
            let path = Path::new(UNIT_DIR).join(name.as_str());
            assert!(!path.exists(), "{} is left", path.display());
            let link = Path::new(UNIT_DIR)
                .join("multi-user.target.wants")
                .join(name.as_str());
            assert!(!link.is_symlink(), "{} is left", link.display());
        }
        for slice in systemk::unit::SliceName::all_for_pod(&self.uid).unwrap() {
            let path = Path::new(UNIT_DIR).join(slice.as_str());
            assert!(!path.exists(), "{} is left", path.display());
        }
        assert!(!pod_dir.exists(), "{} is left", pod_dir.display());
        assert!(
            !runtime_pod_dir.exists(),
            "{} is left",
            runtime_pod_dir.display()
        );
    }
}

impl Drop for PodRun {
    /// The test failed before [`PodRun::finish`]: show what the pod did, then clean up
    /// on a runtime of its own (the test's runtime is unwinding on this thread).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let mut state = std::mem::take(self.state.get_mut());
        eprintln!(
            "pod {} failed; last status: {}",
            self.uid,
            serde_json::to_string_pretty(&state.status()).unwrap_or_default()
        );
        for name in state.units() {
            let journal = std::process::Command::new("journalctl")
                .args(["--no-pager", "-n", "40", "-u", name.as_str()])
                .output();
            if let Ok(out) = journal {
                eprintln!("{name}:\n{}", String::from_utf8_lossy(&out.stdout));
            }
        }
        let (ctx, uid) = (self.ctx.clone(), self.uid.clone());
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let systemd = Systemd::connect().await.ok()?;
                let ctx = Context { systemd, ..ctx };
                cleanup(&ctx, &uid, &mut state).await.ok()
            })
        })
        .join();
        if !matches!(cleaned, Ok(Some(()))) {
            eprintln!(
                "cleaning up pod {} failed: remove its units by hand",
                self.uid
            );
        }
    }
}

/// The status of init container `container` in `status`.
pub fn init_container_status<'a>(
    status: &'a PodStatus,
    container: &str,
) -> Option<&'a ContainerStatus> {
    status
        .init_container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == container)
}

/// The status of `container` in `status`.
pub fn container_status<'a>(status: &'a PodStatus, container: &str) -> Option<&'a ContainerStatus> {
    status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == container)
}

/// `/proc/<pid>/cmdline` as the process's argv.
pub fn argv(pid: u32) -> Vec<Vec<u8>> {
    nul_separated(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
}

/// `/proc/<pid>/environ` as `NAME=value` entries.
pub fn environ(pid: u32) -> Vec<Vec<u8>> {
    nul_separated(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
}

fn nul_separated(bytes: &[u8]) -> Vec<Vec<u8>> {
    let Some(body) = bytes.strip_suffix(&[0]) else {
        return Vec::new();
    };
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// The real, effective, saved and filesystem ids of a `Uid:` or `Gid:` line of
/// `/proc/<pid>/status`.
pub fn proc_ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// A UID no other test (or earlier run) uses, shaped like the API server's UUIDs.
pub fn unique_uid() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hex = format!("{:08x}{count:08x}{:016x}", std::process::id(), nanos as u64);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
