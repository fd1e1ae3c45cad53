//! Which pods get a pass when: one per dirty pod, one at a time per pod, a bounded number
//! at once, only desired ones before every source synced, none while another pod still
//! owns their unit names; and the `Synced` signal.

use super::*;

#[test]
fn each_dirty_pod_gets_one_pass() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let (a, b) = (pod("a", "uid-a"), pod("b", "uid-b"));
    book.apply(set(SourceId::File, &[&a, &b]));
    let dispatched = book.dispatch_admitted();
    assert_eq!(uids(&dispatched), ["uid-a", "uid-b"]);
    assert_eq!(dispatched[0].pod.as_ref(), Some(&a));
    assert!(
        book.dispatch_admitted().is_empty(),
        "nothing is dirty any more"
    );
}

#[test]
fn a_pod_has_at_most_one_pass_at_a_time() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let first = book.dispatch_admitted().pop().expect("a pass for a");
    let mut changed = Pod::clone(&a);
    changed.metadata.labels = Some([("app".to_owned(), "v2".to_owned())].into());
    let changed = Arc::new(changed);
    book.apply(set(SourceId::File, &[&changed]));
    assert!(book.dispatch_admitted().is_empty(), "its pass still runs");
    book.finished(first.uid, first.state, ran(), Instant::now());
    let second = book.dispatch_admitted();
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
    let mut running = book.dispatch_admitted();
    assert_eq!(running.len(), MAX_CONCURRENT_PASSES);
    assert!(
        book.dispatch_admitted().is_empty(),
        "no room until one finishes"
    );
    let done = running.pop().expect("a running pass");
    book.finished(done.uid, done.state, ran(), Instant::now());
    assert_eq!(
        book.dispatch_admitted().len(),
        1,
        "one finished, one more starts"
    );
    for done in running {
        book.finished(done.uid, done.state, ran(), Instant::now());
    }
    assert_eq!(book.dispatch_admitted().len(), 3, "the rest");
}

#[test]
fn passes_waiting_for_an_install_leave_room_for_the_others() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let pods: Vec<Arc<Pod>> = (0..MAX_CONCURRENT_PASSES + 4)
        .map(|i| pod(&format!("p{i:02}"), &format!("uid-{i:02}")))
        .collect();
    book.apply(set(SourceId::File, &pods.iter().collect::<Vec<_>>()));
    let running = book.dispatch_admitted();
    assert_eq!(running.len(), MAX_CONCURRENT_PASSES);
    // Three of them wait for an install (the package layer runs one at a time).
    assert_eq!(book.dispatch(3).len(), 3, "three more start in their place");
    assert!(book.dispatch(3).is_empty(), "and no more");
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
    let first = book.dispatch_admitted();
    assert_eq!(uids(&first), ["uid-a"]);
    assert_eq!(
        first[0].state.units(),
        &BTreeSet::from([unit("a")]),
        "an adopted pod keeps its units"
    );
    assert!(
        book.dispatch_admitted().is_empty(),
        "b waits for the API's first set"
    );

    book.apply(set(SourceId::Api, &[]));
    let cleanup = book.dispatch_admitted();
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
    assert!(book.dispatch_admitted().is_empty());
    assert_eq!(sent(&mut progress), [Progress::Synced]);
}

#[test]
fn synced_is_sent_once() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    assert!(book.dispatch_admitted().is_empty());
    assert_eq!(sent(&mut progress), [], "the source has not sent its set");
    book.apply(set(SourceId::File, &[]));
    assert!(book.dispatch_admitted().is_empty());
    assert_eq!(sent(&mut progress), [Progress::Synced]);

    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch_admitted().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, ran(), Instant::now());
    assert!(book.dispatch_admitted().is_empty());
    assert_eq!(sent(&mut progress), [], "synced already");
}

#[test]
fn a_failed_pass_counts_as_synced() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch_admitted().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, Err(transient()), Instant::now());
    assert!(book.dispatch_admitted().is_empty());
    assert_eq!(sent(&mut progress), [Progress::Synced]);
}

#[test]
fn a_pod_waits_for_the_cleanup_of_another_pod_with_its_unit_names() {
    let (mut book, mut progress) = book(&[SourceId::File]);
    // web was recreated with a new UID while systemk was down: the old pod's unit has
    // the name the new pod's unit would have.
    book.adopt([("uid-old".to_owned(), vec![unit("web")])]);
    let web = pod("web", "uid-new");
    book.apply(set(SourceId::File, &[&web]));
    let cleanup = book.dispatch_admitted();
    assert_eq!(uids(&cleanup), ["uid-old"], "the new pod waits");
    assert_eq!(cleanup[0].pod, None);
    assert!(
        book.dispatch_admitted().is_empty(),
        "still waits while the cleanup runs"
    );

    let cleanup = cleanup.into_iter().next().expect("the cleanup");
    book.finished(cleanup.uid, cleanup.state, Ok(None), Instant::now());
    let new = book.dispatch_admitted();
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
fn a_pod_that_came_and_went_before_its_pass_gets_none() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    book.apply(set(SourceId::File, &[]));
    assert!(book.dispatch_admitted().is_empty());
}

#[test]
fn queued_counts_dirty_pods_a_pass_could_start_for() {
    let (mut book, _progress) = book(&[SourceId::File, SourceId::Api]);
    let a = pod("a", "uid-a");
    book.adopt([("uid-b".to_owned(), vec![unit("b")])]);
    assert_eq!(
        book.queued(),
        0,
        "b waits for the API's first set, not for the reconciler"
    );
    book.apply(set(SourceId::File, &[&a]));
    assert_eq!(book.queued(), 0, "a is not admitted yet");
    book.admit_new(&roomy_node(), k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    assert_eq!(book.queued(), 1, "a is admitted, desired and dirty");
    let first = book.dispatch_admitted().pop().expect("a pass for a");
    assert_eq!(book.queued(), 0, "a's pass runs");
    book.apply(set(SourceId::Api, &[]));
    assert_eq!(
        book.queued(),
        1,
        "b is due for its cleanup once the API synced"
    );
    book.finished(first.uid, first.state, ran(), Instant::now());
    assert_eq!(book.queued(), 1);
}
