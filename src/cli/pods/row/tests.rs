use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;

const NOW: i64 = 1_800_000_000;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn running(ready: bool) -> ContainerStatus {
    ContainerStatus {
        name: "app".into(),
        ready,
        state: Some(ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn waiting(reason: &str) -> ContainerStatus {
    ContainerStatus {
        name: "app".into(),
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: None,
            }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn terminated(exit_code: i32, reason: Option<&str>) -> ContainerStatus {
    ContainerStatus {
        name: "init".into(),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                reason: reason.map(str::to_owned),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn pod(phase: &str, init: Vec<ContainerStatus>, app: Vec<ContainerStatus>) -> Pod {
    let spec_containers = |statuses: &[ContainerStatus]| {
        statuses
            .iter()
            .map(|s| k8s_openapi::api::core::v1::Container {
                name: s.name.clone(),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            init_containers: (!init.is_empty()).then(|| spec_containers(&init)),
            containers: spec_containers(&app),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            start_time: Some(Time(at(NOW - 192))),
            init_container_statuses: (!init.is_empty()).then_some(init),
            container_statuses: Some(app),
            ..PodStatus::default()
        }),
    }
}

fn row(pod: &Pod) -> PodRow {
    pod_row(pod, at(NOW))
}

#[test]
fn running_pod_shows_ready_count_and_phase() {
    let row = row(&pod("Running", vec![], vec![running(true), running(false)]));
    assert_eq!(
        (row.ready.as_str(), row.status.as_str(), row.age.as_str()),
        ("1/2", "Running", "3m12s")
    );
}

#[test]
fn waiting_reason_wins_over_phase() {
    let row = row(&pod("Pending", vec![], vec![waiting("ErrImagePull")]));
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("0/1", "ErrImagePull")
    );
}

#[test]
fn init_progress_counts_finished_init_containers() {
    let init = vec![terminated(0, Some("Completed")), waiting("PodInitializing")];
    let row = row(&pod("Pending", init, vec![waiting("PodInitializing")]));
    assert_eq!(row.status, "Init:1/2");
}

#[test]
fn failed_init_container_shows_its_reason() {
    let row = row(&pod("Pending", vec![terminated(1, Some("Error"))], vec![]));
    assert_eq!(row.status, "Init:Error");
    let row = row_of_init_exit_without_reason();
    assert_eq!(row.status, "Init:ExitCode:3");
}

fn row_of_init_exit_without_reason() -> PodRow {
    row(&pod("Pending", vec![terminated(3, None)], vec![]))
}

#[test]
fn crash_looping_init_container_shows_init_reason() {
    let row = row(&pod("Pending", vec![waiting("CrashLoopBackOff")], vec![]));
    assert_eq!(row.status, "Init:CrashLoopBackOff");
}

#[test]
fn completed_container_beside_a_running_one_reads_running_when_ready() {
    let mut done = terminated(0, Some("Completed"));
    done.name = "job".into();
    let mut p = pod("Running", vec![], vec![done, running(true)]);
    assert_eq!(row(&p).status, "NotReady");
    p.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
        type_: "Ready".into(),
        status: "True".into(),
        ..PodCondition::default()
    }]);
    assert_eq!(row(&p).status, "Running");
}

#[test]
fn restarts_show_when_the_last_one_ended() {
    let mut app = running(true);
    app.restart_count = 3;
    app.last_state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            finished_at: Some(Time(at(NOW - 125))),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    });
    assert_eq!(
        row(&pod("Running", vec![], vec![app])).restarts,
        "3 (2m5s ago)"
    );
    assert_eq!(
        row(&pod("Running", vec![], vec![running(true)])).restarts,
        "0"
    );
}

#[test]
fn deleted_pod_is_terminating_until_terminal() {
    let mut p = pod("Running", vec![], vec![running(true)]);
    p.metadata.deletion_timestamp = Some(Time(at(NOW)));
    assert_eq!(row(&p).status, "Terminating");
}

#[test]
fn ages_read_like_kubectl() {
    let cases = [
        (-5, "<invalid>"),
        (-1, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (192, "3m12s"),
        (14 * 60 + 5, "14m"),
        (2 * 3600, "120m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (20 * 3600, "20h"),
        (4 * 86400, "4d"),
        (4 * 86400 + 3 * 3600, "4d3h"),
        (30 * 86400, "30d"),
        ((2 * 365 + 45) * 86400, "2y45d"),
        (9 * 365 * 86400, "9y"),
    ];
    for (seconds, text) in cases {
        assert_eq!(human_duration(seconds), text, "{seconds}s");
    }
}

#[test]
fn table_aligns_columns_three_spaces_apart() {
    let rows = [PodRow {
        namespace: "kube-system".into(),
        name: "a".into(),
        ready: "1/1".into(),
        status: "Running".into(),
        restarts: "0".into(),
        age: "5s".into(),
    }];
    assert_eq!(
        table(&rows),
        "NAMESPACE     NAME   READY   STATUS    RESTARTS   AGE\n\
         kube-system   a      1/1     Running   0          5s\n"
    );
}

#[test]
fn sidecars_count_in_ready_and_restarts_as_kubectl_counts_them() {
    let mut proxy = running(true);
    proxy.name = "proxy".into();
    proxy.started = Some(true);
    proxy.restart_count = 2;
    let mut p = pod("Running", vec![proxy], vec![running(true)]);
    let spec = p.spec.as_mut().unwrap();
    spec.init_containers.as_mut().unwrap()[0].restart_policy = Some("Always".into());
    p.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
        type_: "Initialized".into(),
        status: "True".into(),
        ..PodCondition::default()
    }]);
    let shown = row(&p);
    assert_eq!(
        (
            shown.ready.as_str(),
            shown.status.as_str(),
            shown.restarts.as_str()
        ),
        ("2/2", "Running", "2")
    );
    // Not started yet: the pod is still initialising.
    let status = p.status.as_mut().unwrap();
    status.init_container_statuses.as_mut().unwrap()[0].started = Some(false);
    status.conditions = None;
    assert_eq!(row(&p).status, "Init:0/1");
}
