//! The pass of an evicted pod (marked by the eviction monitor, `eviction::marker`): as
//! the kubelet after `evictPod`, its containers are killed (a 2 s grace, the kubelet's
//! minimum for hard evictions) and never started again, its emptyDir volumes are deleted
//! so the disk they filled is free again, an `Evicted` Warning event is sent once, and its
//! status is `Failed` with reason `Evicted`, the eviction message and the
//! `DisruptionTarget` condition (`TerminationByKubelet`) the kubelet adds. The pod object
//! stays until someone deletes it (its controller makes a replacement). Layer 4.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Pass, compute_status, observe};
use crate::clock::now;
use crate::pod::blocking::off_runtime;
use crate::pod::container_unit::{containers, unit_name};
use crate::pod::context::Context;
use crate::pod::dirs::remove_tree;
use crate::pod::error::{Error, Result};
use crate::pod::eviction::marker;
use crate::pod::observe::is_running;
use crate::pod::progress::EventKind;
use crate::pod::state::PodState;
use crate::unit::empty_dir_path;

/// The kubelet's eviction reason (pkg/kubelet/eviction `Reason`).
pub const EVICTED_REASON: &str = "Evicted";
/// How long an evicted container gets between SIGTERM and SIGKILL: the kubelet's
/// `minimumGracePeriodInSeconds`, which a hard eviction's grace override of 0 becomes.
pub const EVICTION_GRACE: Duration = Duration::from_secs(2);

/// Converges an evicted pod: nothing runs, its emptyDirs are gone, its status says why.
pub(super) async fn evicted(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
    message: String,
) -> Result<Pass> {
    let statuses = observe(ctx, uid, pod, state).await?;
    for container in containers(pod) {
        let running = statuses
            .get(&container.container.name)
            .is_some_and(is_running);
        if running && let Ok(name) = unit_name(pod, container.container) {
            ctx.systemd.stop(&name, EVICTION_GRACE).await?;
        }
    }
    let pod_dir = ctx.dirs.pod_dir(uid);
    let empty_dirs: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|spec| spec.volumes.iter().flatten())
        .filter(|volume| volume.empty_dir.is_some())
        .map(|volume| empty_dir_path(&pod_dir, &volume.name))
        .collect();
    let (dirs, pod_uid, kept) = (ctx.dirs.clone(), uid.to_owned(), message.clone());
    off_runtime(&pod_dir.clone(), move || {
        for dir in &empty_dirs {
            remove_tree(dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
        }
        // Now that the volumes are gone there is room for it.
        marker::persist(&dirs, &pod_uid, &kept).map_err(|source| Error::Io {
            path: dirs.pod_dir(&pod_uid),
            source,
        })
    })
    .await?;
    if state.announce_eviction() {
        tracing::warn!(pod_uid = uid, message = %message, "pod evicted");
        state.event(pod, EventKind::Warning, EVICTED_REASON, message.clone());
    }
    let statuses = observe(ctx, uid, pod, state).await?;
    let mut status = compute_status(ctx, uid, pod, state, &statuses, now());
    status.phase = Some("Failed".to_owned());
    status.reason = Some(EVICTED_REASON.to_owned());
    status.message = Some(message.clone());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if !conditions.iter().any(|c| c.type_ == "DisruptionTarget") {
        let since = state
            .status()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionTarget"))
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now()));
        conditions.push(PodCondition {
            type_: "DisruptionTarget".to_owned(),
            status: "True".to_owned(),
            reason: Some("TerminationByKubelet".to_owned()),
            message: Some(message),
            last_transition_time: Some(since),
            ..PodCondition::default()
        });
    }
    let status_changed = state.status() != Some(&status);
    if status_changed {
        let mut with_status = Pod::clone(pod);
        with_status.status = Some(status.clone());
        ctx.dirs.save_pod_async(uid, with_status).await?;
    }
    state.run_mut().set_status(status);
    Ok(Pass {
        wake: None,
        status_changed,
    })
}
