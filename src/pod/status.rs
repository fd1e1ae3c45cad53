//! Pod status as the kubelet computes it (`generateAPIPodStatus`, `getPhase`,
//! pkg/kubelet/kubelet_pods.go; conditions from pkg/kubelet/status/generate.go), from plain
//! observations the reconciler gathers from systemd and its restart state machines.
//! [`build`] is the one entry: pod + what is known of it → `PodStatus`, for the reconciler
//! and for `systemk pods` alike.
//!
//! Pure: no D-Bus, no clock (`now` is passed in), no API calls. Layer 4. Every container
//! observation must be present, so the phase is never `Unknown`. Sidecars (restartable
//! init containers) follow the kubelet's rules: they count as running containers, never
//! for completion.

mod build;
mod conditions;
mod container;
mod ips;
mod observation;
mod readiness;

pub use build::{ContainerSeen, PodSeen, build};
pub use ips::one_per_family;
pub use observation::{ContainerFacts, Problem, container_observation};
pub use readiness::{ReadinessGates, gate_ready};

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{HostIP, PodIP, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::qos::QosClass;
use super::restart::{Exit, ExitStatus, RestartPolicy};
use super::start_failure::START_ERROR_REASON;
use super::termination_message::cut_to_pod_share;

/// Why a container is not running yet; the reasons the kubelet reports
/// (pkg/kubelet/images/types.go, pkg/kubelet/container/sync_result.go,
/// pkg/kubelet/kuberuntime/kuberuntime_container.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingReason {
    /// Its unit is being prepared (package install, unit file).
    ContainerCreating,
    /// The pod's init containers have not all succeeded yet.
    PodInitializing,
    /// It exited and waits for its restart back-off.
    CrashLoopBackOff,
    /// The image reference cannot be parsed; nothing is retried until the spec changes.
    InvalidImageName,
    /// Its image (package) could not be installed, in the pass that tried.
    ErrImagePull,
    /// Installing its image failed and waits for its retry back-off.
    ImagePullBackOff,
    /// `imagePullPolicy: Never` and its package is not installed; waits for the pod to change.
    ErrImageNeverPull,
    /// Its configuration (env, volumes, command) could not be turned into a unit.
    CreateContainerConfigError,
    /// Its unit could not be written or loaded (systemd, files, a vendor unit).
    CreateContainerError,
    /// systemd refused to start its unit.
    RunContainerError,
}

impl WaitingReason {
    /// Every reason, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::ContainerCreating,
        Self::PodInitializing,
        Self::CrashLoopBackOff,
        Self::InvalidImageName,
        Self::ErrImagePull,
        Self::ImagePullBackOff,
        Self::ErrImageNeverPull,
        Self::CreateContainerConfigError,
        Self::CreateContainerError,
        Self::RunContainerError,
    ];

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainerCreating => "ContainerCreating",
            Self::PodInitializing => "PodInitializing",
            Self::CrashLoopBackOff => "CrashLoopBackOff",
            Self::InvalidImageName => "InvalidImageName",
            Self::ErrImagePull => "ErrImagePull",
            Self::ImagePullBackOff => "ImagePullBackOff",
            Self::ErrImageNeverPull => "ErrImageNeverPull",
            Self::CreateContainerConfigError => "CreateContainerConfigError",
            Self::CreateContainerError => "CreateContainerError",
            Self::RunContainerError => "RunContainerError",
        }
    }

    /// Whether the container waits because something failed, not because its turn has
    /// not come (creating, initializing, restart back-off).
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Self::ContainerCreating | Self::PodInitializing | Self::CrashLoopBackOff
        )
    }

    /// The reason spelled `text`, as found in a saved status.
    pub fn from_api(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == text)
    }
}

/// One finished run of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// How it ended.
    pub exit: ExitStatus,
    /// Whether the kernel's OOM killer ended it (systemd `Result=oom-kill`), when the
    /// host can tell.
    pub oom_killed: bool,
    /// When the run started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// When the run never got the program running: what failed and the last journal
    /// lines of that start, bounded (`pod::start_failure`).
    pub start_error: Option<String>,
    /// What the container left as its termination message (`terminationMessagePath`, or
    /// its log under `FallbackToLogsOnError`), see `pod::termination_message`.
    pub message: Option<String>,
}

impl Termination {
    /// A run the restart state machine recorded.
    pub fn from_exit(exit: Exit, oom_killed: bool) -> Self {
        Self {
            exit: exit.status,
            oom_killed,
            started_at: exit.started_at,
            finished_at: exit.finished_at,
            start_error: None,
            message: None,
        }
    }

    /// The terminated reason the kubelet shows: `OOMKilled`, `StartError` (the runtime
    /// could not start the program), `Completed` or `Error`.
    pub fn reason(&self) -> &'static str {
        if self.start_error.is_some() {
            START_ERROR_REASON
        } else if self.oom_killed {
            "OOMKilled"
        } else if self.exit.succeeded() {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// What a container is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Not running, for this reason.
    Waiting {
        /// Why.
        reason: WaitingReason,
        /// Details for humans, e.g. the install error.
        message: Option<String>,
    },
    /// Running since `started_at`.
    Running {
        /// When the current run started.
        started_at: Timestamp,
    },
    /// Ended, and will not run again unless the reconciler starts it.
    Terminated(Termination),
}

impl ContainerState {
    /// The kubelet's state for a container that does not exist yet: `PodInitializing`
    /// when the pod has init containers, else `ContainerCreating`.
    pub fn not_created(pod_has_init_containers: bool) -> Self {
        let reason = if pod_has_init_containers {
            WaitingReason::PodInitializing
        } else {
            WaitingReason::ContainerCreating
        };
        Self::Waiting {
            reason,
            message: None,
        }
    }
}

/// What the reconciler knows about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerObservation {
    /// The container's name in the spec.
    pub name: String,
    /// The image reference as written in the spec.
    pub image: String,
    /// What the image resolved to (`<package>=<version>`, `sha256:<hex>`); empty when
    /// not installed yet, as the API has it.
    pub image_id: String,
    /// `systemd://<unit name>` once the unit exists.
    pub container_id: Option<String>,
    /// What it is doing now. A container waiting for its restart back-off is `Waiting`
    /// with `CrashLoopBackOff`, its run in `last_termination`, as the kubelet shows it.
    pub state: ContainerState,
    /// The run before the current state, if any.
    pub last_termination: Option<Termination>,
    /// How many times it was restarted.
    pub restart_count: u32,
    /// Whether it serves; only counts while running: its unit is `active` (see
    /// [`super::observe::is_serving`]) and its startup and readiness probes passed.
    /// Ignored for init containers other than sidecars, which are ready once they
    /// exited with 0.
    pub ready: bool,
    /// Whether it runs and its startup probe, if any, passed (the status's `started`).
    pub started: bool,
    /// Whether it is a sidecar (an init container with `restartPolicy: Always`): its
    /// `ready` is its readiness, as an app container's.
    pub sidecar: bool,
}

impl ContainerObservation {
    /// Whether it ever ran (kubelet `HasAnyRegularContainerStarted` for one container).
    fn has_started(&self) -> bool {
        !matches!(self.state, ContainerState::Waiting { .. }) || self.last_termination.is_some()
    }
}

/// What the reconciler knows about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodObservation {
    /// The pod's restart policy.
    pub restart_policy: RestartPolicy,
    /// Init containers, in spec order.
    pub init_containers: Vec<ContainerObservation>,
    /// App containers, in spec order.
    pub containers: Vec<ContainerObservation>,
    /// When systemk first acted on the pod; `now` is used when unknown and no earlier
    /// status has one.
    pub start_time: Option<Timestamp>,
    /// The node's addresses, primary (internal) first; pods use the host network, so
    /// these are the pod's addresses too. The status keeps the first of each IP family.
    pub host_ips: Vec<IpAddr>,
    /// From [`super::qos::qos_class`].
    pub qos_class: QosClass,
    /// The pod is being deleted: once nothing runs, its phase becomes terminal whatever
    /// the restart policy. (The kubelet still skips this for static pods, a gap it tracks
    /// as kubernetes#116484; systemk treats both kinds alike.)
    pub deleted: bool,
    /// `spec.readinessGates` and the conditions known to check them against.
    pub readiness_gates: ReadinessGates,
}

/// A pod phase; never `Unknown`, since every container is observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Not all containers have started.
    Pending,
    /// Running, or restarting per the restart policy.
    Running,
    /// Every container exited with 0 and none will restart.
    Succeeded,
    /// Every container ended, at least one failed, and none will restart.
    Failed,
}

impl PodPhase {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }

    /// A terminal phase as the API spells it; `None` for any other phase.
    fn terminal_from_api(phase: &str) -> Option<Self> {
        match phase {
            "Succeeded" => Some(Self::Succeeded),
            "Failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The phase by the kubelet's `getPhase` rules: a regular init container that has not
/// succeeded keeps the pod pending; a sidecar counts as running while it runs (pending
/// until it started) and is ignored once it ran and ended, so it never holds the pod back
/// from completing.
pub fn pod_phase(pod: &PodObservation) -> PodPhase {
    let failed = |t: &Termination| !t.exit.succeeded();
    let (mut pending_init, mut failed_init, mut pending_sidecars) = (0, 0, 0);
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for sidecar in pod.init_containers.iter().filter(|c| c.sidecar) {
        match (&sidecar.state, &sidecar.last_termination) {
            (ContainerState::Running { .. }, _) => {
                running += 1;
                pending_sidecars += usize::from(!sidecar.started);
            }
            (ContainerState::Waiting { .. }, None) => {
                pending_sidecars += 1;
                waiting += 1;
            }
            (ContainerState::Terminated(_) | ContainerState::Waiting { .. }, _) => {}
        }
    }
    for init in pod.init_containers.iter().filter(|c| !c.sidecar) {
        match (&init.state, &init.last_termination) {
            (ContainerState::Running { .. }, _) | (ContainerState::Waiting { .. }, None) => {
                pending_init += 1;
            }
            (ContainerState::Terminated(t), _) | (ContainerState::Waiting { .. }, Some(t)) => {
                failed_init += usize::from(failed(t));
            }
        }
    }
    for app in &pod.containers {
        match (&app.state, &app.last_termination) {
            (ContainerState::Running { .. }, _) => running += 1,
            (ContainerState::Terminated(t), _) => {
                stopped += 1;
                succeeded += usize::from(!failed(t));
            }
            (ContainerState::Waiting { .. }, Some(_)) => stopped += 1,
            (ContainerState::Waiting { .. }, None) => waiting += 1,
        }
    }
    let any_app_started = pod.containers.iter().any(ContainerObservation::has_started);
    if failed_init > 0 && pod.restart_policy == RestartPolicy::Never {
        return PodPhase::Failed;
    }
    // As the kubelet: a sidecar not started yet keeps the pod pending only until the pod
    // initialised (an app container ran); a later restart of it does not.
    if ((pending_init > 0 || pending_sidecars > 0) && !any_app_started) || waiting > 0 {
        return PodPhase::Pending;
    }
    if running > 0 {
        return PodPhase::Running;
    }
    if stopped == 0 {
        return PodPhase::Pending;
    }
    let all_succeeded = stopped == succeeded;
    match pod.restart_policy {
        _ if pod.deleted && all_succeeded => PodPhase::Succeeded,
        _ if pod.deleted => PodPhase::Failed,
        RestartPolicy::Always => PodPhase::Running,
        _ if all_succeeded => PodPhase::Succeeded,
        RestartPolicy::Never => PodPhase::Failed,
        RestartPolicy::OnFailure => PodPhase::Running,
    }
}

/// The full status the kubelet would post for `pod` at `now`. `previous` is the status
/// posted before: a terminal phase never changes back, `startTime` stays, and a
/// condition keeps its `lastTransitionTime` while its status does not change.
pub fn pod_status(pod: &PodObservation, previous: Option<&PodStatus>, now: Timestamp) -> PodStatus {
    let previous_terminal = previous
        .and_then(|p| p.phase.as_deref())
        .and_then(PodPhase::terminal_from_api);
    let phase = previous_terminal.unwrap_or_else(|| pod_phase(pod));
    let start_time = previous
        .and_then(|p| p.start_time.clone())
        .unwrap_or(Time(pod.start_time.unwrap_or(now)));
    let host_ips: Vec<String> = one_per_family(&pod.host_ips)
        .iter()
        .map(IpAddr::to_string)
        .collect();
    let conditions = conditions::pod_conditions(pod, phase, previous, now);
    let init_statuses = container::container_statuses(&pod.init_containers, true, phase);
    let mut status = PodStatus {
        phase: Some(phase.as_str().to_owned()),
        conditions: Some(conditions),
        host_ip: host_ips.first().cloned(),
        host_ips: (!host_ips.is_empty()).then(|| {
            host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        pod_ip: host_ips.first().cloned(),
        pod_ips: (!host_ips.is_empty())
            .then(|| host_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: Some(start_time),
        qos_class: Some(pod.qos_class.as_str().to_owned()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(container::container_statuses(&pod.containers, false, phase)),
        ..PodStatus::default()
    };
    let containers = pod.init_containers.len() + pod.containers.len();
    cut_to_pod_share(&mut status, containers);
    let previous_ready = previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|list| list.iter().find(|c| c.type_ == "Ready"));
    gate_ready(&status, &pod.readiness_gates, previous_ready, now)
}

/// The kubelet's CrashLoopBackOff message, e.g. `back-off 20s restarting failed
/// container=app pod=web_default(5f3c…)`.
pub fn crash_loop_message(
    delay: Duration,
    container: &str,
    pod_name: &str,
    namespace: &str,
    pod_uid: &str,
) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={pod_name}_{namespace}({pod_uid})",
        go_duration(delay)
    )
}

/// A duration of a second or more as Go's `time.Duration.String` writes it: `10s`,
/// `1m20s`, `5m0s`, `1h0m0s`, `1.5s`.
fn go_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let nanos = duration.subsec_nanos();
    let fraction = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_owned()
    };
    match (hours, minutes) {
        (0, 0) => format!("{seconds}{fraction}s"),
        (0, _) => format!("{minutes}m{seconds}{fraction}s"),
        _ => format!("{hours}h{minutes}m{seconds}{fraction}s"),
    }
}

#[cfg(test)]
mod tests;
