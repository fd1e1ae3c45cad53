//! Merging the desired sets of several sources: changes, precedence, clashes, sync.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn pod(namespace: &str, name: &str, uid: &str) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.to_owned()),
            name: Some(name.to_owned()),
            uid: Some(uid.to_owned()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    })
}

fn update(source: SourceId, pods: &[&Arc<Pod>]) -> SourceUpdate {
    SourceUpdate::set(source, pods.iter().map(|pod| Arc::clone(pod)).collect())
}

fn with_label(pod: &Arc<Pod>, value: &str) -> Arc<Pod> {
    let mut changed = Pod::clone(pod);
    changed.metadata.labels = Some([("app".to_owned(), value.to_owned())].into());
    Arc::new(changed)
}

#[test]
fn first_set_adds_every_pod() {
    let mut desired = DesiredPods::new([SourceId::File]);
    let (a, b) = (pod("default", "a", "uid-a"), pod("default", "b", "uid-b"));
    let applied = desired.apply(update(SourceId::File, &[&b, &a]));
    assert_eq!(applied.changed, ["uid-a", "uid-b"]);
    assert!(applied.rejected.is_empty());
    assert_eq!(desired.get("uid-a"), Some(&a));
    assert_eq!(desired.source_of("uid-b"), Some(SourceId::File));
    assert_eq!(desired.len(), 2);
}

#[test]
fn identical_resend_changes_nothing() {
    let mut desired = DesiredPods::new([SourceId::File]);
    let a = pod("default", "a", "uid-a");
    desired.apply(update(SourceId::File, &[&a]));
    let copy = Arc::new(Pod::clone(&a));
    assert!(
        desired
            .apply(update(SourceId::File, &[&copy]))
            .changed
            .is_empty()
    );
}

#[test]
fn changed_and_removed_pods_are_reported() {
    let mut desired = DesiredPods::new([SourceId::File]);
    let (a, b) = (pod("default", "a", "uid-a"), pod("default", "b", "uid-b"));
    desired.apply(update(SourceId::File, &[&a, &b]));
    let a2 = with_label(&a, "v2");
    let applied = desired.apply(update(SourceId::File, &[&a2]));
    assert_eq!(applied.changed, ["uid-a", "uid-b"]);
    assert_eq!(desired.get("uid-a"), Some(&a2));
    assert_eq!(desired.get("uid-b"), None);
}

#[test]
fn sources_do_not_replace_each_other() {
    let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
    let (a, b) = (pod("default", "a", "uid-a"), pod("default", "b", "uid-b"));
    desired.apply(update(SourceId::File, &[&a]));
    let applied = desired.apply(update(SourceId::Api, &[&b]));
    assert_eq!(applied.changed, ["uid-b"]);
    assert_eq!(desired.len(), 2);
    let applied = desired.apply(update(SourceId::Api, &[]));
    assert_eq!(applied.changed, ["uid-b"]);
    assert!(desired.get("uid-a").is_some());
}

#[test]
fn synced_only_after_every_expected_source_sent_a_set() {
    let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
    assert!(!desired.is_synced());
    desired.apply(update(SourceId::File, &[]));
    assert!(!desired.is_synced());
    desired.apply(update(SourceId::Api, &[]));
    assert!(desired.is_synced());
}

#[test]
fn file_source_wins_a_name_clash_whatever_the_arrival_order() {
    let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
    let from_api = pod("default", "web", "uid-api");
    let from_file = pod("default", "web", "uid-file");
    desired.apply(update(SourceId::Api, &[&from_api]));
    let applied = desired.apply(update(SourceId::File, &[&from_file]));
    assert_eq!(applied.changed, ["uid-api", "uid-file"]);
    assert_eq!(
        applied.rejected[0].reason,
        RejectReason::NameTaken {
            by: SourceId::File,
            uid: "uid-file".to_owned()
        }
    );
    assert_eq!(desired.source_of("uid-file"), Some(SourceId::File));
    assert_eq!(desired.get("uid-api"), None);
}

#[test]
fn uid_clash_keeps_the_first_source() {
    let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
    let from_file = pod("default", "a", "same");
    let from_api = pod("other", "b", "same");
    desired.apply(update(SourceId::File, &[&from_file]));
    let applied = desired.apply(update(SourceId::Api, &[&from_api]));
    assert!(applied.changed.is_empty());
    assert_eq!(
        applied.rejected[0].reason,
        RejectReason::UidTaken { by: SourceId::File }
    );
}

#[test]
fn pod_without_uid_is_rejected() {
    let mut desired = DesiredPods::new([SourceId::Api]);
    let anonymous = pod("default", "a", "");
    let applied = desired.apply(update(SourceId::Api, &[&anonymous]));
    assert_eq!(applied.rejected[0].reason, RejectReason::MissingIdentity);
    assert!(desired.is_empty());
}

fn change(source: SourceId, pods: &[&Arc<Pod>], gone: &[&str]) -> SourceUpdate {
    SourceUpdate::changed(
        source,
        pods.iter().map(|pod| Arc::clone(pod)).collect(),
        gone.iter().map(|uid| (*uid).to_owned()).collect(),
    )
}

#[test]
fn a_change_touches_only_the_pods_it_names() {
    let mut desired = DesiredPods::new([SourceId::Api]);
    let (a, b) = (pod("default", "a", "uid-a"), pod("default", "b", "uid-b"));
    desired.apply(update(SourceId::Api, &[&a, &b]));
    let c = pod("default", "c", "uid-c");
    let applied = desired.apply(change(SourceId::Api, &[&c], &[]));
    assert_eq!(applied.changed, ["uid-c"]);
    assert_eq!(desired.len(), 3);
    let copy = Arc::new(Pod::clone(&a));
    let applied = desired.apply(change(SourceId::Api, &[&copy], &["uid-unknown"]));
    assert!(applied.changed.is_empty(), "{applied:?}");
    let a2 = with_label(&a, "v2");
    let applied = desired.apply(change(SourceId::Api, &[&a2], &["uid-b"]));
    assert_eq!(applied.changed, ["uid-a", "uid-b"]);
    assert_eq!(desired.get("uid-a"), Some(&a2));
    assert_eq!(desired.get("uid-b"), None);
    // A complete set afterwards removes what it does not name.
    let applied = desired.apply(update(SourceId::Api, &[&c]));
    assert_eq!(applied.changed, ["uid-a"]);
    assert_eq!(desired.len(), 1);
}

#[test]
fn a_pod_set_aside_takes_its_place_when_the_winner_goes() {
    let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
    let from_file = pod("default", "web", "uid-file");
    let from_api = pod("default", "web", "uid-api");
    desired.apply(update(SourceId::File, &[&from_file]));
    let applied = desired.apply(update(SourceId::Api, &[&from_api]));
    assert!(applied.changed.is_empty());
    assert_eq!(applied.rejected.len(), 1);
    let applied = desired.apply(change(SourceId::File, &[], &["uid-file"]));
    assert_eq!(applied.changed, ["uid-api", "uid-file"]);
    assert!(applied.rejected.is_empty());
    assert_eq!(desired.source_of("uid-api"), Some(SourceId::Api));
    // And the file's pod back takes the name again.
    let applied = desired.apply(change(SourceId::File, &[&from_file], &[]));
    assert_eq!(applied.changed, ["uid-api", "uid-file"]);
    assert_eq!(desired.get("uid-api"), None);
}

#[test]
fn a_source_cannot_remove_or_replace_another_sources_pod() {
    let mut desired = DesiredPods::new([SourceId::File, SourceId::Api]);
    let from_file = pod("kube-system", "dns", "uid-dns");
    desired.apply(update(SourceId::File, &[&from_file]));
    desired.apply(update(SourceId::Api, &[]));
    let applied = desired.apply(change(SourceId::Api, &[], &["uid-dns"]));
    assert!(applied.changed.is_empty());
    let impostor = with_label(&from_file, "evil");
    let applied = desired.apply(change(SourceId::Api, &[&impostor], &[]));
    assert!(applied.changed.is_empty());
    assert_eq!(
        applied.rejected[0].reason,
        RejectReason::UidTaken { by: SourceId::File }
    );
    assert_eq!(desired.get("uid-dns"), Some(&from_file));
}
