//! Container observations → API `ContainerStatus`es, with the fields the kubelet fills
//! (`convertToAPIContainerStatuses` and the prober manager's ready/started flags).

use k8s_openapi::api::core::v1::{
    self as api, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::{app_ready, init_succeeded};
use super::{ContainerObservation, ContainerState, PodPhase, Termination};

/// Statuses of `containers` (init containers when `init`), in spec order.
pub(super) fn container_statuses(
    containers: &[ContainerObservation],
    init: bool,
    phase: PodPhase,
) -> Vec<ContainerStatus> {
    containers
        .iter()
        .map(|c| container_status(c, init, phase))
        .collect()
}

fn container_status(c: &ContainerObservation, init: bool, phase: PodPhase) -> ContainerStatus {
    let terminal = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
    let ready = if init {
        init_succeeded(c)
    } else {
        // A terminal pod serves nothing, whatever its containers last reported.
        !terminal && app_ready(c)
    };
    let id = c.container_id.as_deref();
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: c.container_id.clone(),
        state: Some(api_state(&c.state, id)),
        // The kubelet always sends `lastState`, empty when there was no earlier run.
        last_state: Some(api::ContainerState {
            terminated: c.last_termination.as_ref().map(|t| terminated(t, id)),
            ..api::ContainerState::default()
        }),
        ready,
        restart_count: i32::try_from(c.restart_count).unwrap_or(i32::MAX),
        started: Some(matches!(c.state, ContainerState::Running { .. })),
        ..ContainerStatus::default()
    }
}

fn api_state(state: &ContainerState, id: Option<&str>) -> api::ContainerState {
    match state {
        ContainerState::Waiting { reason, message } => api::ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.as_str().to_owned()),
                message: message.clone(),
            }),
            ..api::ContainerState::default()
        },
        ContainerState::Running { started_at } => api::ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..api::ContainerState::default()
        },
        ContainerState::Terminated(t) => api::ContainerState {
            terminated: Some(terminated(t, id)),
            ..api::ContainerState::default()
        },
    }
}

fn terminated(t: &Termination, id: Option<&str>) -> ContainerStateTerminated {
    ContainerStateTerminated {
        container_id: id.map(str::to_owned),
        exit_code: t.exit.exit_code(),
        signal: t.exit.signal(),
        reason: Some(t.reason().to_owned()),
        started_at: Some(Time(t.started_at)),
        finished_at: Some(Time(t.finished_at)),
        ..ContainerStateTerminated::default()
    }
}
