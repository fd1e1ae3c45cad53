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
use tokio::sync::mpsc;

use super::container_unit::{ContainerRef, UnitContext, container_unit, containers, unit_name};
use super::context::Context;
use super::error::{Error, Result};
use super::init_order::{InitProgress, init_progress};
use super::observe::{ContainerFacts, Problem, container_observation, is_running, observe_unit};
use super::qos::{QosClass, qos_class};
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
    events: Option<mpsc::UnboundedSender<Progress>>,
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

    /// Sends the pod's events (installing, started, killing…) to `progress`.
    pub fn report_events_to(&mut self, progress: mpsc::UnboundedSender<Progress>) {
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
        PrepareDecision::UpToDate => {}
        PrepareDecision::RetryAt(at) => wake = Some(at),
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
    if started {
        // The status shows what runs now, not what ran before the starts.
        statuses = observe(ctx, uid, pod, state).await?;
    }
    let status = compute_status(ctx, uid, pod, state, &statuses, now());
    let status_changed = state.status.as_ref() != Some(&status);
    if status_changed {
        let mut with_status = Pod::clone(pod);
        with_status.status = Some(status.clone());
        ctx.dirs.save_pod(uid, &with_status)?;
    }
    state.status = Some(status);
    Ok(Pass {
        wake,
        status_changed,
    })
}

/// Whether a pass prepares the pod's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrepareDecision {
    /// The units were prepared from this very pod.
    UpToDate,
    /// Preparing this pod failed; the retry is due then.
    RetryAt(Timestamp),
    /// The pod is new or changed, or its retry is due.
    Prepare,
}

/// Decides whether to prepare `pod`, given the pod its units were last fully prepared
/// from and the last preparation that left problems (with its retry time). Pure.
fn prepare_decision(
    applied: Option<&Arc<Pod>>,
    failed: Option<&(Arc<Pod>, Timestamp)>,
    pod: &Arc<Pod>,
    now: Timestamp,
) -> PrepareDecision {
    if applied.is_some_and(|applied| applied == pod) {
        return PrepareDecision::UpToDate;
    }
    match failed {
        Some((failed, retry_at)) if failed == pod && now < *retry_at => {
            PrepareDecision::RetryAt(*retry_at)
        }
        _ => PrepareDecision::Prepare,
    }
}

/// Stops a pod whose deletion was requested (`deletionTimestamp`): like [`cleanup`], within
/// the grace period the deletion asked for. Its source still lists it until the API
/// object is gone, so the pod stays desired but must not run.
pub async fn terminate(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
) -> Result<()> {
    state.applied = Some(pod.clone());
    cleanup(ctx, uid, state).await
}

/// Stops every unit of a pod that is no longer desired (each within its grace period),
/// removes the units and the pod's directory.
pub async fn cleanup(ctx: &Context, uid: &str, state: &mut PodState) -> Result<()> {
    let names: Vec<UnitName> = state.units.iter().cloned().collect();
    if !names.is_empty() {
        let timeout = match state.applied.as_deref() {
            Some(pod) => stop_timeout(Some(pod)),
            // Adopted at start (the manifest went away while systemk was down): the
            // units still say what grace their pod gave.
            None => written_grace(&ctx.unit_dir, &names).await + STOP_MARGIN,
        };
        if let Some(pod) = state.applied.clone() {
            for name in &names {
                state.event(
                    &pod,
                    EventKind::Normal,
                    "Killing",
                    format!("Stopping unit {name}"),
                );
            }
        }
        let stops = names.iter().map(|name| ctx.systemd.stop(name, timeout));
        for (name, stopped) in names.iter().zip(futures::future::join_all(stops).await) {
            if let Err(err) = stopped {
                tracing::warn!(unit = %name, error = %err, "stopping a removed pod's unit failed");
            }
        }
        ctx.systemd.remove(&ctx.unit_dir, &names).await?;
        tracing::info!(
            pod_uid = uid,
            units = names.len(),
            "removed the units of a pod"
        );
    }
    state.units.clear();
    ctx.dirs.remove(uid)?;
    Ok(())
}

/// Installs images and (re)writes the units whose content changed, in one batch; units
/// of containers that left the spec are removed; changed running units are stopped so
/// the start logic brings them back with the new spec.
async fn prepare(ctx: &Context, uid: &str, pod: &Arc<Pod>, state: &mut PodState) -> Result<()> {
    state.problems.clear();
    if let Err(err) = ctx.dirs.prepare(pod, uid) {
        for container in containers(pod) {
            state
                .problems
                .insert(container.container.name.clone(), problem(&err));
        }
        state.failed_prepares = state.failed_prepares.saturating_add(1);
        return Ok(());
    }
    let pod_dir = ctx.dirs.pod_dir(uid);
    let mut wanted = BTreeSet::new();
    let mut to_write: Vec<(UnitName, String)> = Vec::new();
    let mut changed = Vec::new();
    for container in containers(pod) {
        let name = unit_name(pod, container.container)?;
        match prepare_container(ctx, pod, container, &pod_dir, state).await {
            Ok((unit, image_id)) => {
                state
                    .image_ids
                    .insert(container.container.name.clone(), image_id);
                let rendered = unit.render();
                if existing_spec_hash(&ctx.unit_dir, &name).await != spec_hash_of(&unit) {
                    if state.units.contains(&name) {
                        changed.push((name.clone(), container.container.name.clone()));
                    }
                    to_write.push((name.clone(), rendered));
                }
                wanted.insert(name);
            }
            Err(err) => {
                tracing::warn!(pod_uid = uid, container = %container.container.name, error = %err, "cannot prepare a container");
                state.event(pod, EventKind::Warning, "Failed", format!("Error: {err}"));
                state
                    .problems
                    .insert(container.container.name.clone(), problem(&err));
                // Keep a unit that exists: a failing re-install must not stop what runs.
                if state.units.contains(&name) {
                    wanted.insert(name);
                }
            }
        }
    }
    let stale: Vec<UnitName> = state.units.difference(&wanted).cloned().collect();
    if !stale.is_empty() {
        let grace = grace_of(Some(pod));
        for name in &stale {
            ctx.systemd.stop(name, grace + STOP_MARGIN).await?;
        }
        ctx.systemd.remove(&ctx.unit_dir, &stale).await?;
    }
    for (name, container) in &changed {
        tracing::info!(unit = %name, "container spec changed: restarting it");
        ctx.systemd
            .stop(name, grace_of(Some(pod)) + STOP_MARGIN)
            .await?;
        state.restarts.remove(container);
        records::remove(&ctx.dirs, uid, container)?;
    }
    if !to_write.is_empty() {
        ctx.systemd.write_units(&ctx.unit_dir, &to_write).await?;
        for (name, _) in &to_write {
            state.event(
                pod,
                EventKind::Normal,
                "Created",
                format!("Created unit {name}"),
            );
        }
        let app_units: Vec<UnitName> = containers(pod)
            .into_iter()
            .filter(|c| !c.init)
            .filter_map(|c| unit_name(pod, c.container).ok())
            .filter(|name| to_write.iter().any(|(written, _)| written == name))
            .collect();
        if !app_units.is_empty() {
            ctx.systemd.enable(&app_units).await?;
        }
    }
    state.units = wanted;
    if state.problems.is_empty() {
        state.applied = Some(pod.clone());
        state.failed_prepares = 0;
    } else {
        state.failed_prepares = state.failed_prepares.saturating_add(1);
    }
    Ok(())
}

/// Installs the container's image, turns its vendor units off when systemk installed
/// the package just now, and builds its unit.
async fn prepare_container(
    ctx: &Context,
    pod: &Arc<Pod>,
    container: ContainerRef<'_>,
    pod_dir: &Path,
    state: &PodState,
) -> Result<(UnitFile, String)> {
    let image: ImageRef = container
        .container
        .image
        .as_deref()
        .unwrap_or_default()
        .parse()?;
    state.event(
        pod,
        EventKind::Normal,
        "Pulling",
        format!("Installing image \"{image}\""),
    );
    let installed = ctx.installer.install(&image).await?;
    let outcome = if installed.newly_installed {
        "Installed"
    } else {
        "Already installed:"
    };
    state.event(
        pod,
        EventKind::Normal,
        "Pulled",
        format!("{outcome} image \"{image}\" as {}", installed.image_id),
    );
    if installed.newly_installed && !installed.service_units.is_empty() {
        let vendor: Vec<String> = installed
            .service_units
            .iter()
            .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
            .collect();
        tracing::info!(package = ?installed.package, units = ?vendor, "disabling the vendor units of a package systemk installed");
        ctx.systemd.disable_vendor(&vendor).await?;
    }
    let context = UnitContext {
        node: &ctx.node,
        pod_dir,
        users: ctx.users.as_ref(),
    };
    let unit = container_unit(pod, container, Some(&installed), context)?;
    Ok((unit, installed.image_id))
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
            records::save(&ctx.dirs, uid, restarts)?;
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
        qos_class: pod
            .spec
            .as_ref()
            .and_then(|spec| qos_class(spec).ok())
            .unwrap_or(QosClass::BestEffort),
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

/// How long a stop of a pod's unit may take before systemk SIGKILLs it. A deletion that
/// asked for its own grace (`kubectl delete --grace-period`) gets exactly that: the unit's
/// `TimeoutStopSec` carries the spec's grace, so systemk's kill is the escalation. Otherwise
/// systemd escalates at the spec's grace and the margin only bounds the wait for it.
fn stop_timeout(pod: Option<&Pod>) -> Duration {
    match pod.and_then(|pod| pod.metadata.deletion_grace_period_seconds) {
        Some(seconds) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
        None => grace_of(pod) + STOP_MARGIN,
    }
}

/// The spec's grace between SIGTERM and SIGKILL.
fn grace_of(pod: Option<&Pod>) -> Duration {
    let seconds = pod
        .and_then(|pod| pod.spec.as_ref())
        .and_then(|spec| spec.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

fn problem(err: &Error) -> Problem {
    let reason = match err {
        Error::Image(_) => WaitingReason::ErrImagePull,
        _ => WaitingReason::CreateContainerConfigError,
    };
    Problem {
        reason,
        message: err.to_string(),
    }
}

/// The longest stop timeout the unit files of `names` give: the grace period they were
/// written with ([`grace_of`] when none can be read).
async fn written_grace(unit_dir: &Path, names: &[UnitName]) -> Duration {
    let mut longest = None;
    for name in names {
        let timeout = read_unit(unit_dir, name).await.and_then(|unit| {
            unit.get("Service", "TimeoutStopSec")
                .and_then(parse_seconds)
        });
        longest = longest.max(timeout);
    }
    longest.unwrap_or_else(|| grace_of(None))
}

/// A `TimeoutStopSec=` as the unit builder writes it (`<seconds>s`).
fn parse_seconds(value: &str) -> Option<Duration> {
    value
        .strip_suffix('s')?
        .parse()
        .ok()
        .map(Duration::from_secs)
}

async fn read_unit(unit_dir: &Path, name: &UnitName) -> Option<UnitFile> {
    let text = tokio::fs::read_to_string(unit_dir.join(name.as_str()))
        .await
        .ok()?;
    UnitFile::parse(&text).ok()
}

async fn existing_spec_hash(unit_dir: &Path, name: &UnitName) -> Option<String> {
    let unit = read_unit(unit_dir, name).await?;
    KubernetesMeta::from_unit(&unit)
        .ok()
        .map(|meta| meta.spec_hash)
}

fn spec_hash_of(unit: &UnitFile) -> Option<String> {
    KubernetesMeta::from_unit(unit)
        .ok()
        .map(|meta| meta.spec_hash)
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

#[cfg(test)]
mod tests;
