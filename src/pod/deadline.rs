//! `activeDeadlineSeconds`, as the kubelet's active-deadline handler
//! (pkg/kubelet/active_deadline.go): a pod that has been active on the node for its
//! deadline or longer, counted from its `status.startTime`, fails with reason
//! `DeadlineExceeded` and its containers are stopped. The reconciler wakes the pod when
//! its deadline falls due (a timer, no polling). Pure. Layer 4.

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod, PodStatus};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The kubelet's reason for a pod past its deadline (pod status and event).
pub const REASON: &str = "DeadlineExceeded";
/// The kubelet's message for a pod past its deadline.
pub const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// Where a pod stands against its active deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// No deadline, or no start time to count from yet.
    None,
    /// It falls due at this time.
    At(Timestamp),
    /// It has passed.
    Exceeded,
}

/// Where `pod`, active since `start`, stands at `now`.
pub fn check(pod: &Pod, start: Option<Timestamp>, now: Timestamp) -> Deadline {
    let seconds = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.active_deadline_seconds);
    let (Some(seconds), Some(start)) = (seconds, start) else {
        return Deadline::None;
    };
    match start.checked_add(SignedDuration::from_secs(seconds)) {
        Ok(due) if now >= due => Deadline::Exceeded,
        Ok(due) => Deadline::At(due),
        // Beyond the end of time: never.
        Err(_) => Deadline::None,
    }
}

/// The start the deadline counts from, as the kubelet's: the start time of the status
/// computed last, else the one the pod's object carries (an API pod's, across restarts
/// of systemk), else when systemk first worked on the pod.
pub fn start_of(
    computed: Option<&PodStatus>,
    pod: &Pod,
    first_work: Option<Timestamp>,
) -> Option<Timestamp> {
    let start = |status: Option<&PodStatus>| status?.start_time.as_ref().map(|time| time.0);
    start(computed)
        .or_else(|| start(pod.status.as_ref()))
        .or(first_work)
}

/// `status` as the kubelet shows a pod past its deadline: `Failed`, with its reason and
/// message, and no container waiting to run again: one that waits (a restart back-off
/// after the stop) shows its last termination as its state.
pub fn failed(status: PodStatus) -> PodStatus {
    let stopped = |statuses: Option<Vec<ContainerStatus>>| {
        statuses.map(|statuses| statuses.into_iter().map(stopped).collect())
    };
    PodStatus {
        phase: Some("Failed".to_owned()),
        reason: Some(REASON.to_owned()),
        message: Some(MESSAGE.to_owned()),
        container_statuses: stopped(status.container_statuses),
        init_container_statuses: stopped(status.init_container_statuses),
        ..status
    }
}

fn stopped(mut status: ContainerStatus) -> ContainerStatus {
    let waiting = status.state.as_ref().is_some_and(|s| s.waiting.is_some());
    let ended = status
        .last_state
        .as_ref()
        .is_some_and(|s| s.terminated.is_some());
    if waiting && ended {
        status.state = status.last_state.take();
        status.last_state = Some(ContainerState::default());
    }
    status.ready = false;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn pod(deadline: Option<i64>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"activeDeadlineSeconds": deadline, "containers": []},
        }))
        .unwrap()
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn a_deadline_falls_due_its_seconds_after_the_start() {
        let pod = pod(Some(30));
        assert_eq!(check(&pod, Some(at(100)), at(110)), Deadline::At(at(130)));
        assert_eq!(check(&pod, Some(at(100)), at(130)), Deadline::Exceeded);
        assert_eq!(check(&pod, Some(at(100)), at(500)), Deadline::Exceeded);
    }

    #[test]
    fn without_a_deadline_or_a_start_there_is_nothing_to_enforce() {
        assert_eq!(check(&pod(None), Some(at(0)), at(1000)), Deadline::None);
        assert_eq!(check(&pod(Some(1)), None, at(1000)), Deadline::None);
        assert_eq!(
            check(&pod(Some(i64::MAX)), Some(at(0)), at(1000)),
            Deadline::None
        );
    }

    #[test]
    fn the_start_is_the_computed_status_then_the_objects_then_the_first_work() {
        let status = |second| PodStatus {
            start_time: Some(Time(at(second))),
            ..PodStatus::default()
        };
        let mut api_pod = pod(Some(5));
        api_pod.status = Some(status(20));
        assert_eq!(
            start_of(Some(&status(10)), &api_pod, Some(at(30))),
            Some(at(10))
        );
        assert_eq!(start_of(None, &api_pod, Some(at(30))), Some(at(20)));
        assert_eq!(start_of(None, &pod(Some(5)), Some(at(30))), Some(at(30)));
    }

    #[test]
    fn a_pod_past_its_deadline_fails_with_the_kubelets_reason_and_message() {
        let status = failed(PodStatus {
            phase: Some("Running".to_owned()),
            start_time: Some(Time(at(1))),
            ..PodStatus::default()
        });
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(
            status.message.as_deref(),
            Some("Pod was active on the node longer than the specified deadline")
        );
        assert_eq!(status.start_time, Some(Time(at(1))));
    }

    #[test]
    fn a_container_waiting_to_restart_shows_its_last_termination() {
        let container: ContainerStatus = serde_json::from_value(json!({
            "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 143, "reason": "Error"}},
        }))
        .unwrap();
        let status = failed(PodStatus {
            container_statuses: Some(vec![container]),
            ..PodStatus::default()
        });
        let container = &status.container_statuses.unwrap()[0];
        let terminated = container
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(terminated.exit_code, 143);
        assert_eq!(container.last_state, Some(ContainerState::default()));
    }
}
