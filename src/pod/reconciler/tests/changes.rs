//! What makes a pod dirty again and what a finished pass publishes: changes of its units
//! (also ones a running pass creates), of the objects it names, its own wake time, and
//! its changed status.

use super::*;

#[test]
fn a_change_of_an_owned_unit_marks_its_pod_dirty() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    book.dispatch_admitted();
    book.finished(
        "uid-a".to_owned(),
        PodState::adopted([unit("a")]),
        ran(),
        Instant::now(),
    );
    book.unit_changed(&unit("other"));
    assert!(book.dispatch_admitted().is_empty(), "nobody's unit");
    book.unit_changed(&unit("a"));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-a"]);
}

#[test]
fn a_change_of_a_unit_a_running_pass_creates_is_not_missed() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch_admitted().pop().expect("a pass for a");
    // The pass creates and starts a's unit; its first signal comes before the pass ends.
    book.unit_changed(&unit("a"));
    book.finished(
        pass.uid,
        PodState::adopted([unit("a")]),
        ran(),
        Instant::now(),
    );
    assert_eq!(
        uids(&book.dispatch_admitted()),
        ["uid-a"],
        "the change is applied"
    );
}

#[test]
fn a_change_of_an_unowned_unit_with_no_pass_running_is_dropped() {
    let (mut book, _progress) = book(&[SourceId::File]);
    book.unit_changed(&unit("a"));
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch_admitted().pop().expect("a pass for a");
    book.finished(
        pass.uid,
        PodState::adopted([unit("a")]),
        ran(),
        Instant::now(),
    );
    assert!(
        book.dispatch_admitted().is_empty(),
        "a change from before the pass"
    );
}

#[test]
fn a_pass_asks_for_its_next_wake_in_wall_clock_time() {
    let wall = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("a time");
    let _pinned = crate::clock::pin(wall);
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch_admitted().pop().expect("a pass for a");
    let now = Instant::now();
    let wake = Pass {
        wake: Some(wall + k8s_openapi::jiff::SignedDuration::from_secs(25)),
        status_changed: false,
    };
    book.finished(pass.uid, pass.state, Ok(Some(wake)), now);
    assert_eq!(book.next_wake(), Some(now + Duration::from_secs(25)));
    book.wake_due(now + Duration::from_secs(25));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-a"]);
}

#[test]
fn a_changed_status_is_published_with_the_desired_pod() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let mut pass = book.dispatch_admitted().pop().expect("a pass for a");
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
    for pass in book.dispatch_admitted() {
        book.finished(pass.uid, pass.state, ran(), Instant::now());
    }
    book.object_changed(&ObjectChange {
        kind: ObjectKind::ConfigMap,
        namespace: "default".to_owned(),
        name: "settings".to_owned(),
    });
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-user"]);
}

#[test]
fn mark_all_dirty_covers_desired_and_adopted_pods() {
    let (mut book, _progress) = book(&[SourceId::File]);
    book.adopt([("uid-left".to_owned(), vec![unit("left")])]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let passes = book.dispatch_admitted();
    assert_eq!(uids(&passes), ["uid-a", "uid-left"]);
    for pass in passes {
        book.finished(pass.uid, pass.state, Err(permanent()), Instant::now());
    }
    book.mark_all_dirty();
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-a", "uid-left"]);
}
