//! Container observations → API `ContainerStatus`es, with the fields the kubelet fills
//! (`convertToAPIContainerStatuses` and the prober manager's ready/started flags).

use k8s_openapi::api::core::v1::{
    self as api, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::{app_ready, init_succeeded};
use super::{ContainerObservation, ContainerState, PodPhase, Termination};
use crate::pod::restart::ExitStatus;
use crate::pod::start_failure::setup_step;

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
    let ready = if init && !c.sidecar {
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
        started: Some(c.started && matches!(c.state, ContainerState::Running { .. })),
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
        message: enriched(termination_message(t, id), t.message.as_deref()),
        started_at: Some(Time(t.started_at)),
        finished_at: Some(Time(t.finished_at)),
    }
}

/// The message systemk has for a run, followed by what the container left, joined by
/// ": " as the kubelet appends the termination message to the runtime's.
fn enriched(runtime: Option<String>, container: Option<&str>) -> Option<String> {
    match (runtime, container.filter(|m| !m.is_empty())) {
        (Some(runtime), Some(message)) => Some(format!("{runtime}: {message}")),
        (runtime, message) => runtime.or_else(|| message.map(str::to_owned)),
    }
}

/// The terminated message: for a run that never got its program running, what failed
/// and its last journal lines; for an exit with one of systemd's own codes, what it
/// means (`systemd.exec(5)`, "Process Exit Codes") and where details are.
fn termination_message(t: &Termination, id: Option<&str>) -> Option<String> {
    if let Some(message) = &t.start_error {
        return Some(message.clone());
    }
    let ExitStatus::Code(code) = t.exit else {
        return None;
    };
    let what = setup_step(code)?;
    let unit = id
        .and_then(|id| id.strip_prefix("systemd://"))
        .unwrap_or("<unit>");
    Some(format!(
        "exit code {code} is systemd's {what}; see journalctl -u {unit}"
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn ended(exit: ExitStatus) -> Termination {
        Termination {
            exit,
            oom_killed: false,
            started_at: Timestamp::UNIX_EPOCH,
            finished_at: Timestamp::UNIX_EPOCH,
            start_error: None,
            message: None,
        }
    }

    #[test]
    fn the_containers_message_is_the_terminated_message() {
        let id = Some("systemd://systemk.default.web.app.service");
        let t = Termination {
            message: Some("disk full".into()),
            ..ended(ExitStatus::Code(1))
        };
        assert_eq!(terminated(&t, id).message.as_deref(), Some("disk full"));
        let t = Termination {
            message: Some("no user".into()),
            ..ended(ExitStatus::Code(217))
        };
        let message = terminated(&t, id).message.unwrap();
        assert!(
            message.starts_with("exit code 217 is systemd's USER"),
            "{message}"
        );
        assert!(message.ends_with("; see journalctl -u systemk.default.web.app.service: no user"));
        assert_eq!(terminated(&ended(ExitStatus::Code(1)), id).message, None);
    }

    #[test]
    fn a_start_error_is_the_message() {
        let t = Termination {
            start_error: Some("ExecStartPre=/bin/false exited with status 1".into()),
            ..ended(ExitStatus::Code(1))
        };
        let id = Some("systemd://systemk.default.web.app.service");
        let status = terminated(&t, id);
        assert_eq!(status.reason.as_deref(), Some("StartError"));
        assert_eq!(status.message, t.start_error);
    }

    #[test]
    fn systemds_setup_exit_codes_are_explained() {
        let id = Some("systemd://systemk.default.web.app.service");
        assert_eq!(
            termination_message(&ended(ExitStatus::Code(216)), id).as_deref(),
            Some(
                "exit code 216 is systemd's GROUP: the group could not be resolved; see journalctl -u systemk.default.web.app.service"
            )
        );
        assert!(termination_message(&ended(ExitStatus::Code(244)), id).is_some());
        for ordinary in [
            ExitStatus::Code(1),
            ExitStatus::Code(199),
            ExitStatus::Code(255),
            ExitStatus::Signal(9),
        ] {
            assert_eq!(
                termination_message(&ended(ordinary), id),
                None,
                "{ordinary:?}"
            );
        }
    }
}
