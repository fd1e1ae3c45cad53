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
        message: setup_failure(t.exit, id),
        started_at: Some(Time(t.started_at)),
        finished_at: Some(Time(t.finished_at)),
    }
}

/// What systemd's own exit codes mean (`systemd.exec(5)`, "Process Exit Codes"): systemd
/// exits the child with one of them when setting the process up failed, before the
/// container's program ran; details are in the unit's journal.
fn setup_failure(exit: ExitStatus, id: Option<&str>) -> Option<String> {
    let ExitStatus::Code(code) = exit else {
        return None;
    };
    let what = match code {
        200 => "CHDIR: the workingDir could not be entered",
        203 => "EXEC: the program could not be executed (missing, or not executable)",
        204 => "MEMORY: out of memory while setting the process up",
        208 => "STDIN: standard input could not be set up",
        209 => "STDOUT: standard output could not be set up",
        216 => "GROUP: the group could not be resolved",
        217 => "USER: the user could not be resolved",
        218 => "CAPABILITIES: capabilities could not be set",
        219 => "CGROUP: the process could not join its cgroup",
        226 => "NAMESPACE: the mount namespace (volumes, hardening) could not be set up",
        227 => "NO_NEW_PRIVILEGES: no_new_privs could not be set",
        228 => "SECCOMP: the system call filter could not be applied",
        233 => "RUNTIME_DIRECTORY: the runtime directory could not be created",
        238 => "STATE_DIRECTORY: the state directory could not be created",
        243 => "CREDENTIALS: credentials could not be set up",
        201..=245 => "systemd could not set the process up",
        _ => return None,
    };
    let unit = id
        .and_then(|id| id.strip_prefix("systemd://"))
        .unwrap_or("<unit>");
    Some(format!(
        "exit code {code} is systemd's {what}; see journalctl -u {unit}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemds_setup_exit_codes_are_explained() {
        let id = Some("systemd://systemk.default.web.app.service");
        assert_eq!(
            setup_failure(ExitStatus::Code(216), id).as_deref(),
            Some(
                "exit code 216 is systemd's GROUP: the group could not be resolved; see journalctl -u systemk.default.web.app.service"
            )
        );
        assert!(setup_failure(ExitStatus::Code(244), id).is_some());
        for ordinary in [
            ExitStatus::Code(1),
            ExitStatus::Code(199),
            ExitStatus::Code(255),
            ExitStatus::Signal(9),
        ] {
            assert_eq!(setup_failure(ordinary, id), None, "{ordinary:?}");
        }
    }
}
