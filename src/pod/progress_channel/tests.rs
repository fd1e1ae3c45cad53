//! The progress channel's cases: merging per pod, bounds, order, closing.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::pod::EventKind;

fn status(uid: &str, phase: &str) -> Progress {
    Progress::Status(Arc::new(Pod {
        metadata: ObjectMeta {
            uid: Some(uid.to_owned()),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some(phase.to_owned()),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }))
}

fn event(message: &str) -> Progress {
    Progress::Event {
        pod: Arc::new(Pod::default()),
        reason: "Started",
        message: message.to_owned(),
        type_: EventKind::Normal,
    }
}

fn removed(uid: &str) -> Progress {
    Progress::Removed {
        uid: uid.to_owned(),
    }
}

fn drain(receiver: &mut ProgressReceiver) -> Vec<Progress> {
    std::iter::from_fn(|| receiver.try_recv()).collect()
}

#[test]
fn a_newer_status_replaces_the_unsent_one_in_its_place() {
    let (sender, mut receiver) = progress_channel(8);
    assert_eq!(sender.send(status("a", "Pending")), Sent::Queued);
    assert_eq!(sender.send(event("one")), Sent::Queued);
    assert_eq!(sender.send(status("b", "Pending")), Sent::Queued);
    assert_eq!(sender.send(status("a", "Running")), Sent::Replaced);
    assert_eq!(
        drain(&mut receiver),
        [status("a", "Running"), event("one"), status("b", "Pending")]
    );
}

#[test]
fn a_sent_status_is_not_replaced() {
    let (sender, mut receiver) = progress_channel(8);
    sender.send(status("a", "Pending"));
    assert_eq!(receiver.try_recv(), Some(status("a", "Pending")));
    assert_eq!(sender.send(status("a", "Running")), Sent::Queued);
    assert_eq!(drain(&mut receiver), [status("a", "Running")]);
}

#[test]
fn a_removal_replaces_the_pending_status_and_is_never_dropped() {
    let (sender, mut receiver) = progress_channel(0);
    sender.send(status("a", "Running"));
    assert_eq!(sender.send(removed("a")), Sent::Replaced);
    for uid in ["b", "c", "d"] {
        assert_eq!(sender.send(removed(uid)), Sent::Queued);
    }
    assert_eq!(
        drain(&mut receiver),
        [removed("a"), removed("b"), removed("c"), removed("d")]
    );
}

#[test]
fn events_beyond_the_capacity_are_dropped_and_counted() {
    let (sender, mut receiver) = progress_channel(2);
    assert_eq!(sender.send(event("1")), Sent::Queued);
    assert_eq!(sender.send(event("2")), Sent::Queued);
    assert_eq!(sender.send(event("3")), Sent::Dropped);
    // Statuses still get through a full event queue.
    assert_eq!(sender.send(status("a", "Running")), Sent::Queued);
    assert_eq!(receiver.shared.lock().dropped, 1);
    assert_eq!(receiver.try_recv(), Some(event("1")));
    assert_eq!(receiver.shared.lock().dropped, 0);
    // Room again after the reader took one.
    assert_eq!(sender.send(event("4")), Sent::Queued);
    assert_eq!(
        drain(&mut receiver),
        [event("2"), status("a", "Running"), event("4")]
    );
}

#[test]
fn synced_keeps_its_place() {
    let (sender, mut receiver) = progress_channel(8);
    sender.send(status("a", "Running"));
    sender.send(Progress::Synced);
    sender.send(status("a", "Failed"));
    assert_eq!(
        drain(&mut receiver),
        [status("a", "Failed"), Progress::Synced]
    );
}

#[tokio::test]
async fn recv_ends_after_the_last_sender_is_dropped_and_all_is_read() {
    let (sender, mut receiver) = progress_channel(8);
    let clone = sender.clone();
    sender.send(status("a", "Running"));
    drop(sender);
    clone.send(event("late"));
    drop(clone);
    assert_eq!(receiver.recv().await, Some(status("a", "Running")));
    assert_eq!(receiver.recv().await, Some(event("late")));
    assert_eq!(receiver.recv().await, None);
}

#[tokio::test]
async fn recv_waits_for_a_send_from_another_task() {
    let (sender, mut receiver) = progress_channel(8);
    let task = tokio::spawn(async move {
        tokio::task::yield_now().await;
        sender.send(status("a", "Running"));
    });
    assert_eq!(receiver.recv().await, Some(status("a", "Running")));
    task.await.unwrap();
    assert_eq!(receiver.recv().await, None);
}

#[test]
fn sending_to_a_dropped_receiver_reports_closed() {
    let (sender, receiver) = progress_channel(8);
    sender.send(event("kept until the receiver goes"));
    drop(receiver);
    assert!(sender.is_closed());
    assert_eq!(sender.send(status("a", "Running")), Sent::Closed);
    assert_eq!(sender.send(event("x")), Sent::Closed);
}
