//! One reconcile pass over one pod: prepare its units when its spec changed, observe
//! them, start what should run (init containers in order, then app containers, restarts
//! after their back-off), and compute its status. And the cleanup of a pod that is no
//! longer desired. Idempotent and level-triggered: a pass reads systemd and converges,
//! whatever happened before it. Layer 4.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;

use super::blocking::off_runtime;
use super::container_unit::{ContainerRef, UnitContext, container_unit, containers, unit_name};
use super::context::Context;
use super::error::{Error, Result};
use super::init_order::{InitProgress, init_progress};
use super::objects::TokenSpec;
use super::observe::{ContainerFacts, Problem, container_observation, is_running, observe_unit};
use super::progress_channel::ProgressSender;
use super::qos::pod_qos_class;
use super::reconciler::{EventKind, Progress};
use super::records;
use super::restart::{ContainerRestarts, Decision, RestartPolicy};
use super::status::{PodObservation, WaitingReason, pod_status};
use crate::backoff::Backoff;
use crate::package::ImageRef;
use crate::systemd::{JobResult, UnitStatus};
use crate::unit::{KubernetesMeta, UnitFile, UnitName};

/// How long a retry of a pod whose preparation failed waits: 10 s doubling to 5 min,
/// like an image pull back-off.
const PREPARE_RETRY: Backoff = crate::backoff::CONTAINER_RESTART;

/// Extra time given to systemd beyond the grace period when stopping a unit: its own
/// SIGKILL escalation happens at the grace period, this only bounds the wait for it.
const STOP_MARGIN: Duration = Duration::from_secs(10);

/// What the reconciler keeps about a pod between passes.
#[derive(Debug, Default)]
pub struct PodState {
    /// The pod its units were last prepared from, once preparing fully succeeded.
    applied: Option<Arc<Pod>>,
    /// Preparations that failed in a row, for the retry back-off.
    failed_prepares: u32,
    /// The pod the last preparation that left problems worked on, and when it may be
    /// tried again: passes woken by other events before then do not retry it.
    failed_prepare: Option<(Arc<Pod>, Timestamp)>,
    /// Why containers could not be prepared, by container name.
    problems: HashMap<String, Problem>,
    /// What each container's image resolved to.
    image_ids: HashMap<String, String>,
    /// Restart state machines by container name.
    restarts: HashMap<String, ContainerRestarts>,
    /// Units of this pod that exist.
    units: BTreeSet<UnitName>,
    /// When systemk first worked on the pod.
    start_time: Option<Timestamp>,
    /// The status computed last.
    status: Option<PodStatus>,
    /// Where events about the pod go, when someone listens.
    events: Option<ProgressSender>,
    /// The `(uid, gid)` each container's unit runs as (`None`: unknown), for the owner
    /// of volume files.
    identities: HashMap<String, Option<(u32, u32)>>,
    /// Tokens of the pod's projected volumes.
    tokens: HashMap<TokenSpec, HeldToken>,
    /// Volumes whose files could not be written at the last pass, with why.
    volume_failures: VolumeFailures,
}

impl PodState {
    /// The state of a pod whose units already exist (found when systemk starts).
    pub fn adopted(units: impl IntoIterator<Item = UnitName>) -> Self {
        Self {
            units: units.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The units this pod has.
    pub fn units(&self) -> &BTreeSet<UnitName> {
        &self.units
    }

    /// The status computed last.
    pub fn status(&self) -> Option<&PodStatus> {
        self.status.as_ref()
    }

    /// A configMap or secret the pod names changed: a preparation that failed retries at
    /// once instead of after its back-off (the object may be what it lacked).
    pub fn object_changed(&mut self) {
        self.failed_prepare = None;
    }

    /// Sends the pod's events (installing, started, killing…) to `progress`.
    pub fn report_events_to(&mut self, progress: ProgressSender) {
        self.events = Some(progress);
    }

    fn event(&self, pod: &Arc<Pod>, type_: EventKind, reason: &'static str, message: String) {
        if let Some(events) = &self.events {
            // A closed channel means nobody reports events; the pass goes on.
            let _ = events.send(Progress::Event {
                pod: pod.clone(),
                reason,
                message,
                type_,
            });
        }
    }
}

/// What a pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// When the next pass is due (a restart back-off or a retry), if a timer is needed.
    pub wake: Option<Timestamp>,
    /// Whether the pod's status differs from the one computed before.
    pub status_changed: bool,
}

/// Converges `pod`: prepares its units when its spec changed, starts what is due, and
/// computes its status (kept in `<pod dir>/pod.json` for `systemk pods`).
pub async fn reconcile(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
) -> Result<Pass> {
    let mut wake: Option<Timestamp> = None;
    match prepare_decision(
        state.applied.as_ref(),
        state.failed_prepare.as_ref(),
        pod,
        now(),
    ) {
        PrepareDecision::UpToDate => refresh_volumes(ctx, uid, pod, state).await,
        PrepareDecision::RetryAt(at) => {
            wake = Some(at);
            refresh_volumes(ctx, uid, pod, state).await;
        }
        PrepareDecision::Prepare => {
            state.start_time.get_or_insert_with(now);
            prepare(ctx, uid, pod, state).await?;
            state.failed_prepare = None;
            if !state.problems.is_empty() {
                let delay = PREPARE_RETRY.delay(state.failed_prepares.saturating_sub(1));
                wake = later(now(), delay);
                state.failed_prepare = wake.map(|at| (pod.clone(), at));
            }
        }
    }
    let mut statuses = observe(ctx, uid, pod, state).await?;
    let (started, restart_at) = start_due(ctx, pod, state, &statuses, now()).await?;
    wake = earliest(wake, restart_at);
    wake = earliest(wake, volumes_wake(pod, state, now()));
    if started {
        // The status shows what runs now, not what ran before the starts.
        statuses = observe(ctx, uid, pod, state).await?;
    }
    let status = compute_status(ctx, uid, pod, state, &statuses, now());
    let status_changed = state.status.as_ref() != Some(&status);
    if status_changed {
        let mut with_status = Pod::clone(pod);
        with_status.status = Some(status.clone());
        ctx.dirs.save_pod_async(uid, with_status).await?;
    }
    state.status = Some(status);
    Ok(Pass {
        wake,
        status_changed,
    })
}

/// Reads the status of the pod's units and brings the restart machines up to date.
async fn observe(
    ctx: &Context,
    uid: &str,
    pod: &Pod,
    state: &mut PodState,
) -> Result<HashMap<String, UnitStatus>> {
    let statuses = read_statuses(ctx, pod, state).await?;
    for container in containers(pod) {
        let Some(unit) = statuses.get(&container.container.name) else {
            continue;
        };
        let restarts = restarts_of(ctx, uid, pod, container, state);
        if observe_unit(restarts, unit) {
            let (dirs, pod_uid, record) = (ctx.dirs.clone(), uid.to_owned(), restarts.clone());
            off_runtime(&ctx.dirs.records_dir(uid), move || {
                records::save(&dirs, &pod_uid, &record)
            })
            .await?;
        }
    }
    Ok(statuses)
}

/// Starts what should run now; returns whether it started anything and when the next
/// restart is due.
async fn start_due(
    ctx: &Context,
    pod: &Arc<Pod>,
    state: &mut PodState,
    statuses: &HashMap<String, UnitStatus>,
    now: Timestamp,
) -> Result<(bool, Option<Timestamp>)> {
    let all = containers(pod);
    let (init, app): (Vec<_>, Vec<_>) = all.iter().partition(|c| c.init);
    let init_restarts: Vec<ContainerRestarts> = init
        .iter()
        .map(|c: &&ContainerRef<'_>| {
            state
                .restarts
                .get(&c.container.name)
                .cloned()
                .unwrap_or_else(|| fresh(pod, c))
        })
        .collect();
    let mut to_start = Vec::new();
    let mut wake = None;
    match init_progress(&init_restarts, now) {
        InitProgress::Run(index) => to_start.push(*init[index]),
        InitProgress::WaitUntil { until, .. } => wake = Some(until),
        InitProgress::Failed(_) => {}
        InitProgress::Done => {
            for container in app {
                let decision = state
                    .restarts
                    .get(&container.container.name)
                    .map_or(Decision::Run, |restarts| restarts.decide(now));
                match decision {
                    Decision::Run => to_start.push(*container),
                    Decision::RestartAt(at) => {
                        state.event(
                            pod,
                            EventKind::Warning,
                            "BackOff",
                            format!(
                                "Back-off restarting failed container {}",
                                container.container.name
                            ),
                        );
                        wake = earliest(wake, Some(at));
                    }
                    Decision::StayTerminated => {}
                }
            }
        }
    }
    let mut started = false;
    for container in to_start {
        let Some(unit) = statuses.get(&container.container.name) else {
            continue;
        };
        if is_running(unit) {
            continue;
        }
        tracing::info!(unit = %unit.name, "starting container");
        started = true;
        // RestartUnit also starts inactive and failed units, and is the only way to run
        // an `active (exited)` unit (RemainAfterExit=yes) again.
        match ctx.systemd.restart(&unit.name).await {
            Ok(JobResult::Done) => state.event(
                pod,
                EventKind::Normal,
                "Started",
                format!("Started unit {}", unit.name),
            ),
            Ok(result) => state.event(
                pod,
                EventKind::Warning,
                "Failed",
                format!("Unit {} did not start: {result:?}", unit.name),
            ),
            Err(err) => {
                tracing::warn!(unit = %unit.name, error = %err, "starting a container failed");
                state.event(pod, EventKind::Warning, "Failed", format!("Error: {err}"));
                // The unit may be gone or broken behind systemk's back: the next pass
                // prepares the pod again, which writes what is missing.
                state.applied = None;
            }
        }
    }
    Ok((started, wake))
}

fn compute_status(
    ctx: &Context,
    uid: &str,
    pod: &Pod,
    state: &PodState,
    statuses: &HashMap<String, UnitStatus>,
    now: Timestamp,
) -> PodStatus {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let all = containers(pod);
    let has_inits = all.iter().any(|c| c.init);
    let observe = |container: &ContainerRef<'_>| {
        let name = container.container.name.as_str();
        let fallback = fresh(pod, container);
        container_observation(&ContainerFacts {
            name,
            image: container.container.image.as_deref().unwrap_or_default(),
            image_id: state
                .image_ids
                .get(name)
                .map(String::as_str)
                .unwrap_or_default(),
            restarts: state.restarts.get(name).unwrap_or(&fallback),
            unit: statuses.get(name),
            problem: state.problems.get(name),
            pod_has_init_containers: has_inits,
            pod: (pod_name, namespace, uid),
        })
    };
    let observation = PodObservation {
        restart_policy: policy_of(pod),
        init_containers: all.iter().filter(|c| c.init).map(observe).collect(),
        containers: all.iter().filter(|c| !c.init).map(observe).collect(),
        start_time: state.start_time,
        host_ips: ctx.host_ips.clone(),
        qos_class: pod_qos_class(pod),
        deleted: pod.metadata.deletion_timestamp.is_some(),
    };
    pod_status(&observation, state.status.as_ref(), now)
}

/// The status of each container's unit, by container name.
async fn read_statuses(
    ctx: &Context,
    pod: &Pod,
    state: &PodState,
) -> Result<HashMap<String, UnitStatus>> {
    let mut statuses = HashMap::new();
    for container in containers(pod) {
        let Ok(name) = unit_name(pod, container.container) else {
            continue;
        };
        if state.units.contains(&name) {
            statuses.insert(
                container.container.name.clone(),
                ctx.systemd.status(&name).await?,
            );
        }
    }
    Ok(statuses)
}

fn restarts_of<'a>(
    ctx: &Context,
    uid: &str,
    pod: &Pod,
    container: ContainerRef<'_>,
    state: &'a mut PodState,
) -> &'a mut ContainerRestarts {
    state
        .restarts
        .entry(container.container.name.clone())
        .or_insert_with(|| {
            records::load(&ctx.dirs, uid, &container.container.name)
                .filter(|restarts| {
                    restarts.policy() == policy_of(pod).for_container(container.init)
                })
                .unwrap_or_else(|| fresh(pod, &container))
        })
}

fn fresh(pod: &Pod, container: &ContainerRef<'_>) -> ContainerRestarts {
    ContainerRestarts::new(
        container.container.name.clone(),
        policy_of(pod),
        container.init,
    )
}

fn policy_of(pod: &Pod) -> RestartPolicy {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.restart_policy.as_deref());
    // The unit layer refuses unknown policies before any unit exists.
    RestartPolicy::from_spec(policy).unwrap_or(RestartPolicy::Always)
}

async fn read_unit(unit_dir: &Path, name: &UnitName) -> Option<UnitFile> {
    let text = tokio::fs::read_to_string(unit_dir.join(name.as_str()))
        .await
        .ok()?;
    UnitFile::parse(&text).ok()
}

/// The wall clock as the API shows times. jiff is built without `std` here (k8s-openapi's
/// choice), so it has no clock of its own.
pub(crate) fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let micros = i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX);
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::MAX)
}

fn later(now: Timestamp, delay: Duration) -> Option<Timestamp> {
    now.saturating_add(delay).ok()
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

mod prepare;
mod stop;
mod volumes;

use prepare::{PrepareDecision, prepare, prepare_decision};
use stop::grace_of;
pub use stop::{cleanup, terminate};
use volumes::{HeldToken, VolumeFailures, refresh_volumes, volumes_wake};

#[cfg(test)]
mod tests;
