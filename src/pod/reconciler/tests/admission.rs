//! Admission in the bookkeeping: once per pod, oldest first, pods found on the machine
//! first; a refused pod gets the kubelet's Failed status and event and never a pass but
//! its termination.

use k8s_openapi::api::core::v1::ContainerPort;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::pod::admission::NodeView;
use crate::pod::progress::EventKind;

/// `default/<name>` with its container listening on `port`, created at `created`.
fn serving(name: &str, uid: &str, port: i32, created: i64) -> Arc<Pod> {
    let mut pod = Pod::clone(&pod(name, uid));
    pod.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    pod.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
        container_port: port,
        ..ContainerPort::default()
    }]);
    Arc::new(pod)
}

fn refusals(progress: &mut ProgressReceiver) -> Vec<(String, String, String)> {
    sent(progress)
        .into_iter()
        .filter_map(|sent| match sent {
            Progress::Status(pod) => {
                let status = pod.status.clone().unwrap_or_default();
                Some((
                    pod.metadata.name.clone().unwrap_or_default(),
                    status.phase.unwrap_or_default(),
                    status.reason.unwrap_or_default(),
                ))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_younger_of_two_pods_on_one_port_is_refused_and_never_gets_a_pass() {
    let (mut book, mut progress) = book(&[SourceId::Api]);
    let older = serving("older", "uid-older", 8080, 10);
    let younger = serving("younger", "uid-younger", 8080, 20);
    book.apply(set(SourceId::Api, &[&younger, &older]));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-older"]);
    let sent_now = sent(&mut progress);
    let event = sent_now
        .iter()
        .find_map(|sent| match sent {
            Progress::Event {
                reason,
                message,
                type_,
                ..
            } => Some((*reason, message.clone(), *type_)),
            _ => None,
        })
        .expect("an event for the refused pod");
    assert_eq!(event.0, "NodePorts");
    assert_eq!(event.2, EventKind::Warning);
    assert!(event.1.contains("held by pod default/older"), "{}", event.1);
    let status = sent_now
        .iter()
        .find_map(|sent| match sent {
            Progress::Status(pod) => pod.status.clone(),
            _ => None,
        })
        .expect("a status for the refused pod");
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    assert_eq!(status.reason.as_deref(), Some("NodePorts"));
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .starts_with("Pod was rejected: Predicate NodePorts failed"),
        "{status:?}"
    );
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    // A change of the refused pod decides nothing again.
    book.apply(set(SourceId::Api, &[&older, &younger]));
    let mut changed = Pod::clone(&younger);
    changed.metadata.labels = Some([("a".to_owned(), "b".to_owned())].into());
    book.apply(set(SourceId::Api, &[&older, &Arc::new(changed)]));
    assert!(book.dispatch_admitted().is_empty());
    assert!(refusals(&mut progress).is_empty());
    assert_eq!(book.queued(), 0, "a refused pod is not work");
}

#[test]
fn a_pod_found_running_on_the_machine_is_admitted_first_without_checks() {
    let (mut book, mut progress) = book(&[SourceId::Api]);
    let running = serving("running", "uid-running", 8080, 50);
    let newer = serving("newer", "uid-newer", 8080, 10);
    book.adopt([("uid-running".to_owned(), vec![unit("running")])]);
    book.apply(set(SourceId::Api, &[&running, &newer]));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-running"]);
    assert_eq!(
        refusals(&mut progress),
        [(
            "newer".to_owned(),
            "Failed".to_owned(),
            "NodePorts".to_owned()
        )]
    );
}

#[test]
fn a_refused_pod_being_deleted_gets_its_termination_pass() {
    let (mut book, _progress) = book(&[SourceId::Api]);
    let older = serving("older", "uid-older", 8080, 10);
    let younger = serving("younger", "uid-younger", 8080, 20);
    book.apply(set(SourceId::Api, &[&older, &younger]));
    book.dispatch_admitted();
    let mut deleting = Pod::clone(&younger);
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(30).unwrap()));
    book.apply(set(SourceId::Api, &[&older, &Arc::new(deleting)]));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-younger"]);
}

#[test]
fn a_pod_whose_object_says_it_finished_is_not_run_again() {
    let (mut book, mut progress) = book(&[SourceId::Api]);
    let mut finished = Pod::clone(&pod("done", "uid-done"));
    finished.status = Some(PodStatus {
        phase: Some("Failed".to_owned()),
        ..PodStatus::default()
    });
    book.apply(set(SourceId::Api, &[&Arc::new(finished)]));
    assert!(book.dispatch_admitted().is_empty());
    assert!(
        refusals(&mut progress).is_empty(),
        "its status stays as it is"
    );
}

#[test]
fn api_pods_wait_for_the_node_object_static_pods_do_not() {
    let (mut book, _progress) = book(&[SourceId::File, SourceId::Api]);
    let from_file = pod("static", "uid-static");
    let from_api = pod("api", "uid-api");
    book.apply(set(SourceId::File, &[&from_file]));
    book.apply(set(SourceId::Api, &[&from_api]));
    let unknown = NodeView {
        from_api: false,
        ..roomy_node()
    };
    book.admit_new(&unknown, Timestamp::UNIX_EPOCH);
    assert_eq!(uids(&book.dispatch(0)), ["uid-static"]);
    assert_eq!(
        book.queued(),
        0,
        "the API pod waits for the Node, not the reconciler"
    );
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-api"]);
}

#[test]
fn pods_over_max_pods_are_refused_counting_only_unfinished_ones() {
    let (mut book, mut progress) = book(&[SourceId::Api]);
    let one_pod = NodeView {
        allocatable: crate::pod::admission::Allocatable {
            pods: 1,
            ..Default::default()
        },
        ..roomy_node()
    };
    let first = pod("first", "uid-1");
    book.apply(set(SourceId::Api, &[&first]));
    book.admit_new(&one_pod, Timestamp::UNIX_EPOCH);
    let pass = book.dispatch(0).pop().expect("a pass for the first");
    let mut state = pass.state;
    let mut status = PodStatus {
        phase: Some("Succeeded".to_owned()),
        ..PodStatus::default()
    };
    // Still running: a second pod is out of pods.
    let second = pod("second", "uid-2");
    book.apply(set(SourceId::Api, &[&first, &second]));
    book.admit_new(&one_pod, Timestamp::UNIX_EPOCH);
    assert_eq!(
        refusals(&mut progress),
        [(
            "second".to_owned(),
            "Failed".to_owned(),
            "OutOfpods".to_owned()
        )]
    );
    // Once the first finished, a third fits.
    state.run_mut().set_status(std::mem::take(&mut status));
    book.finished(pass.uid, state, ran(), Instant::now());
    let third = pod("third", "uid-3");
    book.apply(set(SourceId::Api, &[&first, &second, &third]));
    book.admit_new(&one_pod, Timestamp::UNIX_EPOCH);
    assert!(refusals(&mut progress).is_empty());
    assert_eq!(uids(&book.dispatch(0)), ["uid-3"]);
}

fn events(progress: &mut ProgressReceiver) -> Vec<(&'static str, String)> {
    sent(progress)
        .into_iter()
        .filter_map(|sent| match sent {
            Progress::Event {
                reason,
                message,
                type_: EventKind::Warning,
                ..
            } => Some((reason, message)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pod_with_ignored_fields_is_told_once_when_admitted() {
    let (mut book, mut progress) = book(&[SourceId::Api]);
    let mut probed = Pod::clone(&pod("probed", "uid-probed"));
    let spec = probed.spec.as_mut().unwrap();
    spec.host_aliases = Some(vec![Default::default()]);
    spec.containers[0].tty = Some(true);
    let probed = Arc::new(probed);
    book.apply(set(SourceId::Api, &[&probed]));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-probed"]);
    let told = events(&mut progress);
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, "UnsupportedField");
    assert!(
        told[0].1.contains("spec.hostAliases") && told[0].1.contains(".tty"),
        "{}",
        told[0].1
    );
    // Later changes and passes tell nothing again.
    let mut changed = Pod::clone(&probed);
    changed.metadata.labels = Some([("a".to_owned(), "b".to_owned())].into());
    book.apply(set(SourceId::Api, &[&Arc::new(changed)]));
    book.dispatch_admitted();
    assert!(events(&mut progress).is_empty());
}

#[test]
fn a_pod_found_running_is_not_told_again_after_a_restart() {
    let (mut book, mut progress) = book(&[SourceId::Api]);
    let mut probed = Pod::clone(&pod("running", "uid-running"));
    probed.spec.as_mut().unwrap().containers[0].readiness_probe = Some(Default::default());
    book.adopt([("uid-running".to_owned(), vec![unit("running")])]);
    book.apply(set(SourceId::Api, &[&Arc::new(probed)]));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-running"]);
    assert!(events(&mut progress).is_empty());
}

#[test]
fn a_pod_with_an_unsupported_volume_is_refused_at_admission() {
    let (mut book, mut progress) = book(&[SourceId::Api]);
    let claim: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "claim", "namespace": "default", "uid": "uid-claim"},
        "spec": {
            "containers": [{"name": "main", "image": "/bin/sleep"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }))
    .unwrap();
    book.apply(set(SourceId::Api, &[&Arc::new(claim)]));
    assert!(book.dispatch_admitted().is_empty());
    let sent_now = sent(&mut progress);
    let status = sent_now
        .iter()
        .find_map(|sent| match sent {
            Progress::Status(pod) => pod.status.clone(),
            _ => None,
        })
        .expect("a status for the refused pod");
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    assert_eq!(status.reason.as_deref(), Some("UnsupportedPodSpec"));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "Pod was rejected: systemk cannot honour spec.volumes{data} (volume data of kind \
             persistentVolumeClaim is not supported yet)"
        )
    );
}

#[test]
fn the_burstable_tier_weighs_the_cpu_its_active_pods_request() {
    let (mut book, _progress) = book(&[SourceId::Api]);
    assert_eq!(book.burstable_cpu_millis(), None, "not synced yet");
    let with = |name: &str, uid: &str, resources: serde_json::Value| {
        let mut pod = Pod::clone(&pod(name, uid));
        pod.spec.as_mut().unwrap().containers[0].resources =
            Some(serde_json::from_value(resources).unwrap());
        Arc::new(pod)
    };
    let burstable = with(
        "b",
        "uid-b",
        serde_json::json!({"requests": {"cpu": "150m"}}),
    );
    let mut with_overhead = Pod::clone(&with(
        "o",
        "uid-o",
        serde_json::json!({"requests": {"cpu": "50m"}}),
    ));
    with_overhead.spec.as_mut().unwrap().overhead = Some(
        [(
            "cpu".to_owned(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("25m".to_owned()),
        )]
        .into(),
    );
    let with_overhead = Arc::new(with_overhead);
    let guaranteed = with(
        "g",
        "uid-g",
        serde_json::json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
    );
    let best_effort = pod("e", "uid-e");
    book.apply(set(
        SourceId::Api,
        &[&burstable, &with_overhead, &guaranteed, &best_effort],
    ));
    // A pod counts while its pass runs, and stops counting once it finished.
    let passes = book.dispatch_admitted();
    assert_eq!(book.burstable_cpu_millis(), Some(225));
    for pass in passes {
        let mut state = pass.state;
        if pass.uid == "uid-b" {
            state.run_mut().set_status(PodStatus {
                phase: Some("Succeeded".to_owned()),
                ..PodStatus::default()
            });
        }
        book.finished(pass.uid, state, ran(), Instant::now());
    }
    assert_eq!(book.burstable_cpu_millis(), Some(75));
    book.apply(set(SourceId::Api, &[&guaranteed, &best_effort]));
    book.dispatch_admitted();
    assert_eq!(book.burstable_cpu_millis(), Some(0));
    // Back again: a new pod is admitted and counted anew.
    book.apply(set(SourceId::Api, &[&with_overhead, &guaranteed]));
    book.dispatch_admitted();
    assert_eq!(book.burstable_cpu_millis(), Some(75));
}
