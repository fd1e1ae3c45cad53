//! The pods on this machine as of now, for readers other than the reconciler (`systemk
//! pods`): each pod's status as the reconciler last saved it in `pod.json`, refreshed with
//! what systemd reports about its units now, by the same rules the reconciler computes
//! status with. It needs no running agent. A pod whose `pod.json` is missing (only its
//! units are left) is rebuilt from the units' `[X-Kubernetes]` sections.
//!
//! Never writes: restart records are read and brought up to date in memory only. Layer 4;
//! reading `pod.json` and the restart records is the only I/O, the rest is pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::container_unit::containers;
use super::dirs::PodDirs;
use super::error::Result;
use super::observe::observe_unit;
use super::probe::Probed;
use super::records;
use super::restart::{ContainerRestarts, RestartPolicy};
use super::status::{self, ContainerSeen, PodSeen, Problem, WaitingReason};
use crate::systemd::ManagedUnit;

/// Every pod that has a saved status or a unit, with its status as of `now`, ordered by
/// UID. `units` are the systemk units systemd knows (`Systemd::list_managed`).
pub fn live_pods(dirs: &PodDirs, units: Vec<ManagedUnit>, now: Timestamp) -> Result<Vec<Pod>> {
    let mut by_uid: BTreeMap<String, Vec<ManagedUnit>> = BTreeMap::new();
    for unit in units {
        by_uid
            .entry(unit.meta.pod_uid.clone())
            .or_default()
            .push(unit);
    }
    let uids: BTreeSet<String> = dirs
        .list()?
        .into_iter()
        .chain(by_uid.keys().cloned())
        .collect();
    let mut pods = Vec::with_capacity(uids.len());
    for uid in uids {
        let units = by_uid.remove(&uid).unwrap_or_default();
        let Some(mut pod) = dirs.load_pod(&uid).or_else(|| pod_from_units(&units)) else {
            continue;
        };
        let restarts: HashMap<String, ContainerRestarts> = containers(&pod)
            .iter()
            .filter_map(|c| {
                let name = &c.container.name;
                records::load(dirs, &uid, name).map(|restarts| (name.clone(), restarts))
            })
            .collect();
        pod.status = Some(refreshed_status(&pod, &uid, &units, &restarts, now));
        pods.push(pod);
    }
    Ok(pods)
}

/// A pod rebuilt from the metadata its units carry: names, UID, containers with their
/// images and restart policy. Enough for a status; `None` without units.
pub fn pod_from_units(units: &[ManagedUnit]) -> Option<Pod> {
    let first = &units.first()?.meta;
    let mut metas: Vec<_> = units.iter().map(|unit| &unit.meta).collect();
    metas.sort_by_key(|meta| (!meta.init_container, meta.container_index));
    let container = |meta: &&crate::unit::KubernetesMeta| Container {
        name: meta.container.clone(),
        image: Some(meta.image.clone()),
        ..Container::default()
    };
    let init: Vec<Container> = metas
        .iter()
        .filter(|m| m.init_container)
        .map(container)
        .collect();
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(first.pod_name.clone()),
            namespace: Some(first.namespace.clone()),
            uid: Some(first.pod_uid.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: metas
                .iter()
                .filter(|m| !m.init_container)
                .map(container)
                .collect(),
            init_containers: (!init.is_empty()).then_some(init),
            restart_policy: Some(first.restart_policy.as_str().to_owned()),
            ..PodSpec::default()
        }),
        status: None,
    })
}

/// The status the reconciler would compute for `pod` now: its saved status (in
/// `pod.status`) is the previous status, `units` say what runs, `restarts` are the
/// containers' restart records as last saved. Containers without a unit keep the waiting
/// reason the reconciler saved (e.g. `ErrImagePull`).
pub fn refreshed_status(
    pod: &Pod,
    uid: &str,
    units: &[ManagedUnit],
    restarts: &HashMap<String, ContainerRestarts>,
    now: Timestamp,
) -> PodStatus {
    let previous = pod.status.as_ref();
    let policy = RestartPolicy::of_pod(pod);
    let all = containers(pod);
    // Owned first (restart machines brought up to date, problems read back), so the
    // builder can borrow them.
    let mut known: Vec<Known<'_>> = Vec::with_capacity(all.len());
    for c in &all {
        let name = c.container.name.as_str();
        let unit = units
            .iter()
            .find(|unit| unit.meta.container == name && unit.meta.init_container == c.init);
        let saved = saved_status(previous, name, c.init);
        let mut machine =
            ContainerRestarts::resumed(name, policy, c.role(), restarts.get(name).cloned());
        if let Some(unit) = unit {
            observe_unit(&mut machine, &unit.status);
        }
        let image_id = unit
            .map(|unit| unit.meta.image_id.as_str())
            .or(saved.map(|s| s.image_id.as_str()))
            .unwrap_or_default();
        known.push(Known {
            name,
            image_id,
            machine,
            unit,
            problem: saved.and_then(saved_problem),
            probed: last_probed(c.container, saved),
        });
    }
    let host_ips: Vec<IpAddr> = previous
        .and_then(|s| s.host_ips.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ip| ip.ip.parse::<IpAddr>().ok())
        .collect();
    let seen = PodSeen {
        uid,
        previous,
        start_time: previous.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
        host_ips: &host_ips,
        containers: known
            .iter()
            .map(|k| {
                let seen = ContainerSeen {
                    image_id: k.image_id,
                    restarts: Some(&k.machine),
                    unit: k.unit.map(|unit| &unit.status),
                    problem: k.problem.as_ref(),
                    probed: k.probed,
                };
                (k.name, seen)
            })
            .collect(),
    };
    status::build(pod, &seen, now)
}

/// What `systemk pods` knows of one container.
struct Known<'a> {
    name: &'a str,
    image_id: &'a str,
    machine: ContainerRestarts,
    unit: Option<&'a ManagedUnit>,
    problem: Option<Problem>,
    probed: Probed,
}

/// Probes run in the agent only: what they reported last is in the status it saved.
fn last_probed(container: &Container, saved: Option<&ContainerStatus>) -> Probed {
    let last = |has: bool, result: Option<bool>| has.then_some(result);
    Probed {
        readiness: last(container.readiness_probe.is_some(), saved.map(|s| s.ready)),
        startup: last(
            container.startup_probe.is_some(),
            saved.and_then(|s| s.started),
        ),
    }
}

fn saved_status<'a>(
    previous: Option<&'a PodStatus>,
    name: &str,
    init: bool,
) -> Option<&'a ContainerStatus> {
    let statuses = if init {
        previous?.init_container_statuses.as_ref()
    } else {
        previous?.container_statuses.as_ref()
    };
    statuses?.iter().find(|status| status.name == name)
}

/// A waiting reason the reconciler saved because the container could not be prepared.
fn saved_problem(status: &ContainerStatus) -> Option<Problem> {
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let reason = WaitingReason::from_api(waiting.reason.as_deref()?)?;
    if !reason.is_failure() {
        return None;
    }
    Some(Problem {
        reason,
        message: waiting.message.clone().unwrap_or_default(),
        // Shown only: the reconciler that saved it decides about retries.
        transient: false,
    })
}

#[cfg(test)]
mod tests;
