//! Stopping a pod past its `activeDeadlineSeconds` (see [`crate::pod::deadline`]): its
//! running containers are stopped within their grace period and each stop is recorded as
//! the container's exit, so its status shows it terminated. Layer 4.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::hooks::pre_stop;
use super::{is_running, restarts_of};
use crate::clock::now;
use crate::pod::blocking::off_runtime;
use crate::pod::container_unit::stop_order;
use crate::pod::context::Context;
use crate::pod::deadline;
use crate::pod::error::Result;
use crate::pod::observe::observe_unit;
use crate::pod::progress::EventKind;
use crate::pod::records;
use crate::pod::state::PodState;
use crate::systemd::{ActiveState, UnitStatus};

/// systemd's `ExecMainCode` of a main process killed by a signal (`CLD_KILLED`).
const KILLED: i32 = 2;
/// SIGTERM, the stop signal of pod units.
const SIGTERM: i32 = 15;

/// Stops the running containers of `pod`, which ran past its active deadline, telling
/// of it once as the kubelet does; returns whether it stopped any.
pub(super) async fn stop_past_deadline(
    ctx: &Context,
    uid: &str,
    pod: &Arc<Pod>,
    state: &mut PodState,
    statuses: &HashMap<String, UnitStatus>,
) -> Result<bool> {
    if state.run_mut().exceed_deadline() {
        tracing::info!(
            pod_uid = uid,
            "pod ran past its active deadline; stopping it"
        );
        state.event(
            pod,
            EventKind::Normal,
            deadline::REASON,
            deadline::MESSAGE.to_owned(),
        );
    }
    let timeout = super::stop::stop_timeout(Some(pod));
    let mut stopped_any = false;
    // App containers first, sidecars last, as on deletion.
    for container in stop_order(pod) {
        let Some(before) = statuses.get(&container.container.name) else {
            continue;
        };
        if !is_running(before) {
            continue;
        }
        stopped_any = true;
        state.event(
            pod,
            EventKind::Normal,
            "Killing",
            format!("Stopping unit {}", before.name),
        );
        let grace = super::stop::grace_of(Some(pod));
        let left = pre_stop(ctx, pod, state, container.container, &before.name, grace).await;
        let timeout = left + timeout.saturating_sub(grace);
        if let Err(err) = ctx.systemd.stop(&before.name, timeout).await {
            tracing::warn!(unit = %before.name, error = %crate::error_chain::Chain(&err), "stopping a unit past its pod's deadline failed");
            continue;
        }
        let after = stopped_status(ctx, before).await;
        let restarts = restarts_of(ctx, uid, pod, container, state);
        if observe_unit(restarts, &after) {
            let (dirs, pod_uid, record) = (ctx.dirs.clone(), uid.to_owned(), restarts.clone());
            off_runtime(&ctx.dirs.records_dir(uid), move || {
                records::save(&dirs, &pod_uid, &record)
            })
            .await?;
        }
    }
    Ok(stopped_any)
}

/// How the run `before` ended: as systemd reports it, or — when systemd already unloaded
/// the stopped unit and forgot its last run — as a stop by SIGTERM now.
async fn stopped_status(ctx: &Context, before: &UnitStatus) -> UnitStatus {
    if let Ok(after) = ctx.systemd.status(&before.name).await
        && after.exec_main_start_us == before.exec_main_start_us
        && !is_running(&after)
    {
        return after;
    }
    let now_us = now().as_microsecond();
    UnitStatus {
        active_state: ActiveState::Inactive,
        sub_state: "dead".to_owned(),
        main_pid: 0,
        exec_main_code: KILLED,
        exec_main_status: SIGTERM,
        exec_main_exit_us: u64::try_from(now_us).unwrap_or_default(),
        ..before.clone()
    }
}
