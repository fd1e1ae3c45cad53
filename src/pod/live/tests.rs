use k8s_openapi::api::core::v1::{
    ContainerState as ApiState, ContainerStateWaiting, ContainerStatus, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::systemd::{ActiveState, UnitStatus};
use crate::unit::{KubernetesMeta, RestartPolicy as UnitRestartPolicy, UnitName};

const UID: &str = "0f4c7e2a-1b2c-4d5e-8f90-0123456789ab";
const T0: i64 = 1_800_000_000;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn unit(container: &str, init: bool, index: usize, active: bool, exit: Option<i32>) -> ManagedUnit {
    let started_us = u64::try_from(T0).unwrap() * 1_000_000;
    ManagedUnit {
        meta: KubernetesMeta {
            namespace: "default".into(),
            pod_name: "web".into(),
            pod_uid: UID.into(),
            container: container.into(),
            container_index: index,
            init_container: init,
            image: "/bin/sleep".into(),
            image_id: "sha256:ab".into(),
            restart_policy: UnitRestartPolicy::Always,
            spec_hash: String::new(),
        },
        status: UnitStatus {
            name: UnitName::for_container("default", "web", container).unwrap(),
            active_state: if active {
                ActiveState::Active
            } else {
                ActiveState::Failed
            },
            sub_state: String::new(),
            result: "success".into(),
            main_pid: if active { 42 } else { 0 },
            exec_main_code: if exit.is_some() { 1 } else { 0 },
            exec_main_status: exit.unwrap_or(0),
            exec_main_start_us: started_us,
            exec_main_exit_us: exit.map_or(0, |_| started_us + 1_000_000),
            active_enter_us: started_us,
            inactive_enter_us: 0,
            n_restarts: 0,
            inactive_exit_us: 0,
            invocation_id: String::new(),
            control_group: String::new(),
            failed_command: None,
        },
    }
}

fn waiting(name: &str, reason: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        image_id: "sha256:saved".into(),
        state: Some(ApiState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: Some(format!("{reason} details")),
            }),
            ..ApiState::default()
        }),
        ..ContainerStatus::default()
    }
}

/// The pod as `pod.json` holds it: spec from the units' shape, a saved status.
fn saved(units: &[ManagedUnit], statuses: Vec<ContainerStatus>) -> Pod {
    let mut pod = pod_from_units(units).unwrap();
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        start_time: Some(Time(at(T0 - 60))),
        container_statuses: Some(statuses),
        ..PodStatus::default()
    });
    pod
}

fn refresh(pod: &Pod, units: &[ManagedUnit]) -> PodStatus {
    refreshed_status(pod, UID, units, &HashMap::new(), at(T0 + 5))
}

#[test]
fn a_running_unit_replaces_a_saved_waiting_state() {
    let units = [unit("app", false, 0, true, None)];
    let status = refresh(
        &saved(&units, vec![waiting("app", "ContainerCreating")]),
        &units,
    );
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let app = &status.container_statuses.unwrap()[0];
    assert!(app.ready && app.state.as_ref().unwrap().running.is_some());
    assert_eq!(app.image_id, "sha256:ab", "the unit says what runs");
    assert_eq!(
        status.start_time,
        Some(Time(at(T0 - 60))),
        "startTime is kept"
    );
}

#[test]
fn a_container_without_unit_keeps_its_saved_install_error() {
    let units = [unit("app", false, 0, true, None)];
    let mut pod = saved(&units, vec![waiting("app", "ErrImagePull")]);
    let status = refresh(&pod, &[]);
    let app = &status.container_statuses.unwrap()[0];
    let waiting = app.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ErrImagePull"));
    assert_eq!(waiting.message.as_deref(), Some("ErrImagePull details"));
    assert_eq!(app.image_id, "sha256:saved");
    pod.status = None;
    let fresh = refresh(&pod, &[]);
    let reason = fresh.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap()
        .reason;
    assert_eq!(reason.as_deref(), Some("ContainerCreating"));
}

#[test]
fn an_exit_seen_only_now_reads_as_crash_loop() {
    let units = [unit("app", false, 0, false, Some(2))];
    let status = refresh(&saved(&units, vec![]), &units);
    let app = &status.container_statuses.unwrap()[0];
    let waiting = app.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = app
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(last.exit_code, 2);
}

#[test]
fn pods_rebuilt_from_units_order_init_containers_first() {
    let units = [
        unit("app", false, 0, true, None),
        unit("second", true, 1, false, None),
        unit("first", true, 0, false, Some(0)),
    ];
    let pod = pod_from_units(&units).unwrap();
    let spec = pod.spec.unwrap();
    let names = |list: &[Container]| list.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(spec.init_containers.as_deref().unwrap()),
        ["first", "second"]
    );
    assert_eq!(names(&spec.containers), ["app"]);
    assert_eq!(pod.metadata.uid.as_deref(), Some(UID));
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert!(pod_from_units(&[]).is_none());
}

#[test]
fn live_pods_lists_saved_pods_without_units() {
    let state = tempfile::tempdir().unwrap();
    let dirs = PodDirs::new(state.path(), &state.path().join("run"));
    let units = [unit("app", false, 0, true, None)];
    let pod = saved(&units, vec![waiting("app", "ErrImagePull")]);
    dirs.prepare(&pod, UID, &Default::default()).unwrap();
    dirs.save_pod(UID, &pod).unwrap();
    let pods = live_pods(&dirs, Vec::new(), at(T0)).unwrap();
    assert_eq!(pods.len(), 1);
    let status = pods[0].status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let pods = live_pods(&dirs, units.to_vec(), at(T0)).unwrap();
    assert_eq!(pods.len(), 1, "units and pod.json of one UID are one pod");
}
