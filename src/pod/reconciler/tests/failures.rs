//! Passes that fail or panic: retried after a growing back-off when that may heal them,
//! rebuilt from the units they owned after a panic, left until the pod changes otherwise.

use super::*;

#[test]
fn a_panicked_pass_is_rebuilt_from_its_units_and_retried_after_the_back_off() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let (a, b) = (pod("a", "uid-a"), pod("b", "uid-b"));
    book.adopt([("uid-a".to_owned(), vec![unit("a")])]);
    book.apply(set(SourceId::File, &[&a, &b]));
    let passes = book.dispatch_admitted();
    assert_eq!(uids(&passes), ["uid-a", "uid-b"]);
    let now = Instant::now();
    book.panicked("uid-a", now);
    assert_eq!(book.next_wake(), Some(now + FIRST_RETRY));
    assert!(book.dispatch_admitted().is_empty(), "not at once");

    // The reconciler goes on: b's pass finishes and b gets its next one.
    let b_pass = passes
        .into_iter()
        .find(|d| d.uid == "uid-b")
        .expect("b's pass");
    book.finished(b_pass.uid, b_pass.state, ran(), now);
    book.unit_changed(&unit("b"));
    assert!(
        book.dispatch_admitted().is_empty(),
        "b owns no unit: its pass made none"
    );
    book.apply(set(SourceId::File, &[&a]));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-b"], "b's cleanup");

    book.wake_due(now + FIRST_RETRY - Duration::from_millis(1));
    assert!(
        book.dispatch_admitted().is_empty(),
        "the back-off has not run out"
    );
    book.wake_due(now + FIRST_RETRY);
    let retry = book.dispatch_admitted();
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
fn a_transient_failure_is_retried_after_a_growing_back_off() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let now = Instant::now();
    let pass = book.dispatch_admitted().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, Err(transient()), now);
    assert_eq!(book.next_wake(), Some(now + FIRST_RETRY));
    assert!(book.dispatch_admitted().is_empty());

    book.wake_due(now + FIRST_RETRY);
    let pass = book.dispatch_admitted().pop().expect("the retry");
    book.finished(pass.uid, pass.state, Err(transient()), now);
    assert_eq!(book.next_wake(), Some(now + 2 * FIRST_RETRY));

    // A success starts the schedule over.
    book.wake_due(now + 2 * FIRST_RETRY);
    let pass = book.dispatch_admitted().pop().expect("the second retry");
    book.finished(pass.uid, pass.state, ran(), now);
    assert_eq!(book.next_wake(), None);
    book.mark_all_dirty();
    let pass = book.dispatch_admitted().pop().expect("a resync");
    book.finished(pass.uid, pass.state, Err(transient()), now);
    assert_eq!(book.next_wake(), Some(now + FIRST_RETRY));
}

#[test]
fn a_permanent_failure_waits_for_the_pod_to_change() {
    let (mut book, _progress) = book(&[SourceId::File]);
    let a = pod("a", "uid-a");
    book.apply(set(SourceId::File, &[&a]));
    let pass = book.dispatch_admitted().pop().expect("a pass for a");
    book.finished(pass.uid, pass.state, Err(permanent()), Instant::now());
    assert_eq!(book.next_wake(), None);
    assert!(book.dispatch_admitted().is_empty());

    let mut fixed = Pod::clone(&a);
    fixed.metadata.labels = Some([("fixed".to_owned(), "yes".to_owned())].into());
    book.apply(set(SourceId::File, &[&Arc::new(fixed)]));
    assert_eq!(uids(&book.dispatch_admitted()), ["uid-a"]);
}
