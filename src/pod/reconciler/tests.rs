//! Tests of the reconciler's bookkeeping (dispatch, gating, panic recovery, waiting for
//! another pod's unit names, retries) driven with plain values and explicit instants, and
//! of a pass task that panics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, Container, EnvFromSource, Pod, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::time::Instant;

use super::bookkeeping::{Bookkeeping, Dispatch};
use super::{Joined, MAX_CONCURRENT_PASSES, Passes};
use crate::pod::container_unit::unit_name;
use crate::pod::desired::{SourceId, SourceUpdate};
use crate::pod::error::Error;
use crate::pod::objects::{ObjectChange, ObjectKind};
use crate::pod::progress::Progress;
use crate::pod::progress_channel::{ProgressReceiver, progress_channel};
use crate::pod::worker::{Pass, PodState};
use crate::unit::UnitName;

/// The first retry of a failed pass: `failure::RETRY` starts at 10 s, without jitter.
const FIRST_RETRY: Duration = Duration::from_secs(10);

/// A pod `default/<name>` with one container `app`.
fn pod(name: &str, uid: &str) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            namespace: Some("default".to_owned()),
            name: Some(name.to_owned()),
            uid: Some(uid.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".to_owned(),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    })
}

/// The unit of the container `app` of `default/<name>`.
fn unit(name: &str) -> UnitName {
    let pod = pod(name, "any");
    let spec = pod.spec.as_ref().expect("the test pod has a spec");
    unit_name(&pod, &spec.containers[0]).expect("a valid unit name")
}

fn set(source: SourceId, pods: &[&Arc<Pod>]) -> SourceUpdate {
    SourceUpdate {
        source,
        pods: pods.iter().map(|pod| Arc::clone(pod)).collect(),
    }
}

fn book(sources: &[SourceId]) -> (Bookkeeping, ProgressReceiver) {
    let (sender, receiver) = progress_channel(16);
    (Bookkeeping::new(sources.to_vec(), sender), receiver)
}

fn uids(dispatched: &[Dispatch]) -> Vec<&str> {
    dispatched.iter().map(|d| d.uid.as_str()).collect()
}

/// A reconcile pass that found nothing to wake for and no new status.
fn ran() -> crate::pod::Result<Option<Pass>> {
    Ok(Some(Pass {
        wake: None,
        status_changed: false,
    }))
}

/// Everything sent so far.
fn sent(progress: &mut ProgressReceiver) -> Vec<Progress> {
    std::iter::from_fn(|| progress.try_recv()).collect()
}

fn transient() -> Error {
    Error::Io {
        path: "/var/lib/systemk/pods/x".into(),
        source: std::io::Error::other("no space left on device"),
    }
}

fn permanent() -> Error {
    Error::InvalidPod {
        why: "it asks for something systemk cannot do".to_owned(),
    }
}

#[test]
fn each_dirty_pod_gets_one_pass() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let (a, b) = (pod("a", "uid-a"), pod("b", "uid-b"));
    book.apply(set(SourceId::File, &[&a, &b]));
    let dispatched = book.dispatch();
    assert_eq!(uids(&dispatched), ["uid-a", "uid-b"]);
    assert_eq!(dispatched[0].pod.as_ref(), Some(&a));
    assert!(book.dispatch().is_empty(), "nothing is dirty any more");
}

#[test]
fn a_pod_has_at_most_one_pass_at_a_time() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let first = book.dispatch().pop().expect("a pass for a");
    let changed = pod("a", "uid-a");
    let mut changed = Pod::clone(&changed);
    changed.metadata.labels = Some([("app".to_owned(), "v2".to_owned())].into());
    let changed = Arc::new(changed);
    book.apply(set(SourceId::File, &[&changed]));
    assert!(book.dispatch().is_empty(), "its pass still runs");
    book.finished(first.uid, first.state, ran(), Instant::now());
    let second = book.dispatch();
    assert_eq!(uids(&second), ["uid-a"], "the change gets its own pass");
    assert_eq!(second[0].pod.as_ref(), Some(&changed));
}

#[test]
fn at_most_max_concurrent_passes_run_and_the_rest_wait() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let pods: Vec<Arc<Pod>> = (0..MAX_CONCURRENT_PASSES + 4)
        .map(|i| pod(&format!("p{i:02}"), &format!("uid-{i:02}")))
        .collect();
    book.apply(set(SourceId::File, &pods.iter().collect::<Vec<_>>()));
    let mut running = book.dispatch();
    assert_eq!(running.len(), MAX_CONCURRENT_PASSES);
    assert!(book.dispatch().is_empty(), "no room until one finishes");
    let done = running.pop().expect("a running pass");
    book.finished(done.uid, done.state, ran(), Instant::now());
    assert_eq!(book.dispatch().len(), 1, "one finished, one more starts");
    for done in running {
        book.finished(done.uid, done.state, ran(), Instant::now());
    }
    assert_eq!(book.dispatch().len(), 3, "the rest");
}

#[test]
fn before_every_source_synced_only_desired_pods_get_a_pass() {
    let (mut book, mut progress) = book(&[SourceId::File, SourceId::Api]);
    let a = pod("a", "uid-a");
    // Found on the machine: a, which the file source wants, and b, which the API may
    // still want (it has not sent its first set).
    book.adopt([
        ("uid-a".to_owned(), vec![unit("a")]),
        ("uid-b".to_owned(), vec![unit("b")]),
    ]);
    book.apply(set(SourceId::File, &[&a]));
    let first = book.dispatch();
    assert_eq!(uids(&first), ["uid-a"]);
    assert_eq!(
        first[0].state.units(),
        &BTreeSet::from([unit("a")]),
        "an adopted pod keeps its units"
    );
    assert!(
        book.dispatch().is_empty(),
        "b waits for the API's first set"
    );

    book.apply(set(SourceId::Api, &[]));
    let cleanup = book.dispatch();
    assert_eq!(uids(&cleanup), ["uid-b"]);
    assert_eq!(cleanup[0].pod, None, "no longer desired: a cleanup");
    assert_eq!(sent(&mut progress), [], "not synced while passes run");

    for done in first.into_iter().chain(cleanup) {
        let result = if done.pod.is_some() { ran() } else { Ok(None) };
        book.finished(done.uid, done.state, result, Instant::now());
    }
    assert_eq!(
        sent(&mut progress),
        [Progress::Removed {
            uid: "uid-b".to_owned()
        }]
    );
    assert!(book.dispatch().is_empty());
    assert_eq!(sent(&mut progress), [Progress::Synced]);
}

#[test]
fn synced_is_sent_once() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    assert!(book.dispatch().is_empty());
    assert_eq!(sent(&mut progress), [], "the source has not sent its set");
    book.apply(set(SourceId::File, &[]));
    assert!(book.dispatch().is_empty());
    assert_eq!(sent(&mut progress), [Progress::Synced]);

    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, ran(), Instant::now());
    assert!(book.dispatch().is_empty());
    assert_eq!(sent(&mut progress), [], "synced already");
}

#[test]
fn a_failed_pass_counts_as_synced() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, Err(transient()), Instant::now());
    assert!(book.dispatch().is_empty());
    assert_eq!(sent(&mut progress), [Progress::Synced]);
}

#[test]
fn a_panicked_pass_is_rebuilt_from_its_units_and_retried_after_the_back_off() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let (a, b) = (pod("a", "uid-a"), pod("b", "uid-b"));
    book.adopt([("uid-a".to_owned(), vec![unit("a")])]);
    book.apply(set(SourceId::File, &[&a, &b]));
    let passes = book.dispatch();
    assert_eq!(uids(&passes), ["uid-a", "uid-b"]);
    let now = Instant::now();
    book.panicked("uid-a", now);
    assert_eq!(book.next_wake(), Some(now + FIRST_RETRY));
    assert!(book.dispatch().is_empty(), "not at once");

    // The reconciler goes on: b's pass finishes and b gets its next one.
    let b_pass = passes
        .into_iter()
        .find(|d| d.uid == "uid-b")
        .expect("b's pass");
    book.finished(b_pass.uid, b_pass.state, ran(), now);
    book.unit_changed(&unit("b"));
    assert!(
        book.dispatch().is_empty(),
        "b owns no unit: its pass made none"
    );
    book.apply(set(SourceId::File, &[&a]));
    assert_eq!(uids(&book.dispatch()), ["uid-b"], "b's cleanup");

    book.wake_due(now + FIRST_RETRY - Duration::from_millis(1));
    assert!(book.dispatch().is_empty(), "the back-off has not run out");
    book.wake_due(now + FIRST_RETRY);
    let retry = book.dispatch();
    assert_eq!(uids(&retry), ["uid-a"]);
    assert_eq!(retry[0].state.units(), &BTreeSet::from([unit("a")]));
    assert_eq!(retry[0].pod.as_ref(), Some(&a));

    // It panics again: the back-off grows.
    let later = now + FIRST_RETRY;
    book.panicked("uid-a", later);
    assert_eq!(book.next_wake(), Some(later + 2 * FIRST_RETRY));
}

#[tokio::test]
async fn a_pass_task_that_panics_names_its_pod() {
    let mut passes = Passes::default();
    passes.start("uid-a".to_owned(), async {
        panic!("a pass panicked on purpose")
    });
    passes.start("uid-b".to_owned(), async {
        ("uid-b".to_owned(), PodState::default(), Ok(None))
    });
    let mut ended = Vec::new();
    while let Some(joined) = passes.join_next().await {
        ended.push(match joined {
            Joined::Finished(done) => {
                let (uid, _, result) = *done;
                format!("finished {uid} {:?}", result.ok())
            }
            Joined::Panicked(uid) => format!("panicked {uid:?}"),
        });
    }
    ended.sort();
    assert_eq!(
        ended,
        ["finished uid-b Some(None)", "panicked Some(\"uid-a\")"]
    );
}

#[test]
fn a_pod_waits_for_the_cleanup_of_another_pod_with_its_unit_names() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    // web was recreated with a new UID while systemk was down: the old pod's unit has
    // the name the new pod's unit would have.
    book.adopt([("uid-old".to_owned(), vec![unit("web")])]);
    let web = pod("web", "uid-new");
    book.apply(set(SourceId::File, &[&web]));
    let cleanup = book.dispatch();
    assert_eq!(uids(&cleanup), ["uid-old"], "the new pod waits");
    assert_eq!(cleanup[0].pod, None);
    assert!(
        book.dispatch().is_empty(),
        "still waits while the cleanup runs"
    );

    let cleanup = cleanup.into_iter().next().expect("the cleanup");
    book.finished(cleanup.uid, cleanup.state, Ok(None), Instant::now());
    let new = book.dispatch();
    assert_eq!(uids(&new), ["uid-new"]);
    assert_eq!(new[0].state.units(), &BTreeSet::new(), "a fresh state");
    assert_eq!(
        sent(&mut progress),
        [Progress::Removed {
            uid: "uid-old".to_owned()
        }]
    );
}

#[test]
fn a_change_of_an_owned_unit_marks_its_pod_dirty() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    book.dispatch();
    book.finished(
        "uid-a".to_owned(),
        PodState::adopted([unit("a")]),
        ran(),
        Instant::now(),
    );
    book.unit_changed(&unit("other"));
    assert!(book.dispatch().is_empty(), "nobody's unit");
    book.unit_changed(&unit("a"));
    assert_eq!(uids(&book.dispatch()), ["uid-a"]);
}

#[test]
fn a_change_of_a_unit_a_running_pass_creates_is_not_missed() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch().pop().expect("a pass for a");
    // The pass creates and starts a's unit; its first signal comes before the pass ends.
    book.unit_changed(&unit("a"));
    book.finished(
        pass.uid,
        PodState::adopted([unit("a")]),
        ran(),
        Instant::now(),
    );
    assert_eq!(uids(&book.dispatch()), ["uid-a"], "the change is applied");
}

#[test]
fn a_change_of_an_unowned_unit_with_no_pass_running_is_dropped() {
    let (mut book, _progress) = book(&[SourceId::File]);
    book.unit_changed(&unit("a"));
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch().pop().expect("a pass for a");
    book.finished(
        pass.uid,
        PodState::adopted([unit("a")]),
        ran(),
        Instant::now(),
    );
    assert!(book.dispatch().is_empty(), "a change from before the pass");
}

#[test]
fn a_transient_failure_is_retried_after_a_growing_back_off() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let now = Instant::now();
    let pass = book.dispatch().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, Err(transient()), now);
    assert_eq!(book.next_wake(), Some(now + FIRST_RETRY));
    assert!(book.dispatch().is_empty());

    book.wake_due(now + FIRST_RETRY);
    let pass = book.dispatch().pop().expect("the retry");
    book.finished(pass.uid, pass.state, Err(transient()), now);
    assert_eq!(book.next_wake(), Some(now + 2 * FIRST_RETRY));

    // A success starts the schedule over.
    book.wake_due(now + 2 * FIRST_RETRY);
    let pass = book.dispatch().pop().expect("the second retry");
    book.finished(pass.uid, pass.state, ran(), now);
    assert_eq!(book.next_wake(), None);
    book.mark_all_dirty();
    let pass = book.dispatch().pop().expect("a resync");
    book.finished(pass.uid, pass.state, Err(transient()), now);
    assert_eq!(book.next_wake(), Some(now + FIRST_RETRY));
}

#[test]
fn a_permanent_failure_waits_for_the_pod_to_change() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, Err(permanent()), Instant::now());
    assert_eq!(book.next_wake(), None);
    assert!(book.dispatch().is_empty());

    let mut fixed = Pod::clone(&a);
    fixed.metadata.labels = Some([("fixed".to_owned(), "yes".to_owned())].into());
    book.apply(set(SourceId::File, &[&Arc::new(fixed)]));
    assert_eq!(uids(&book.dispatch()), ["uid-a"]);
}

#[test]
fn a_pass_asks_for_its_next_wake_in_wall_clock_time() {
    let wall = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("a time");
    let _pinned = crate::clock::pin(wall);
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch().pop().expect("a pass for a");
    let now = Instant::now();
    let wake = Pass {
        wake: Some(wall + k8s_openapi::jiff::SignedDuration::from_secs(25)),
        status_changed: false,
    };
    book.finished(pass.uid, pass.state, Ok(Some(wake)), now);
    assert_eq!(book.next_wake(), Some(now + Duration::from_secs(25)));
    book.wake_due(now + Duration::from_secs(25));
    assert_eq!(uids(&book.dispatch()), ["uid-a"]);
}

#[test]
fn a_changed_status_is_published_with_the_desired_pod() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let mut pass = book.dispatch().pop().expect("a pass for a");
    let status = PodStatus {
        phase: Some("Running".to_owned()),
        ..PodStatus::default()
    };
    pass.state.run_mut().set_status(status.clone());
    let changed = Pass {
        wake: None,
        status_changed: true,
    };
    book.finished(pass.uid, pass.state, Ok(Some(changed)), Instant::now());
    let mut expected = Pod::clone(&a);
    expected.status = Some(status);
    assert_eq!(sent(&mut progress), [Progress::Status(Arc::new(expected))]);
}

#[test]
fn a_changed_config_map_marks_the_pods_that_use_it_dirty() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let mut user = Pod::clone(&pod("user", "uid-user"));
    user.spec.as_mut().expect("a spec").containers[0].env_from = Some(vec![EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: "settings".to_owned(),
            optional: None,
        }),
        ..EnvFromSource::default()
    }]);
    let other = pod("other", "uid-other");
    book.apply(set(SourceId::File, &[&Arc::new(user), &other]));
    for pass in book.dispatch() {
        book.finished(pass.uid, pass.state, ran(), Instant::now());
    }
    book.object_changed(&ObjectChange {
        kind: ObjectKind::ConfigMap,
        namespace: "default".to_owned(),
        name: "settings".to_owned(),
    });
    assert_eq!(uids(&book.dispatch()), ["uid-user"]);
}

#[test]
fn mark_all_dirty_covers_desired_and_adopted_pods() {
    let (mut book, _progress) = book(&[SourceId::File]);
    book.adopt([("uid-left".to_owned(), vec![unit("left")])]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let passes = book.dispatch();
    assert_eq!(uids(&passes), ["uid-a", "uid-left"]);
    for pass in passes {
        book.finished(pass.uid, pass.state, Err(permanent()), Instant::now());
    }
    book.mark_all_dirty();
    assert_eq!(uids(&book.dispatch()), ["uid-a", "uid-left"]);
}

#[test]
fn a_pod_that_came_and_went_before_its_pass_gets_none() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    book.apply(set(SourceId::File, &[]));
    assert!(book.dispatch().is_empty());
}
