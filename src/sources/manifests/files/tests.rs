//! Reading a manifest directory file by file: what each read sends, against real files.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::*;
use crate::sources::SourceChange;

fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  containers:\n  - name: c\n    image: {image}\n"
    )
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap()
}

fn image(pod: &Pod) -> &str {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .as_deref()
        .unwrap()
}

/// The pods of a complete set.
fn set(update: Option<SourceUpdate>) -> Vec<Arc<Pod>> {
    match update.map(|update| update.change) {
        Some(SourceChange::Set(pods)) => pods,
        other => panic!("expected a complete set, got {other:?}"),
    }
}

/// The pods added or changed, and the UIDs gone, of a change.
fn changed(update: Option<SourceUpdate>) -> (Vec<Arc<Pod>>, Vec<String>) {
    match update.map(|update| update.change) {
        Some(SourceChange::Changed { pods, gone }) => (pods, gone),
        other => panic!("expected a change, got {other:?}"),
    }
}

/// The files of `dir` read whole, and the complete set of their first update.
fn read_whole(dir: &Path) -> (ManifestFiles, Vec<Arc<Pod>>) {
    let mut files = ManifestFiles::new(dir.to_owned(), "n".to_owned());
    files.read_all().unwrap();
    let first = set(files.update());
    (files, first)
}

fn name_of(name: &str) -> std::ffi::OsString {
    name.into()
}

#[test]
fn the_first_update_is_the_whole_directory_then_only_what_a_named_file_changed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), pod("a", "/bin/a")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), pod("b", "/bin/b")).unwrap();
    let (mut files, first) = read_whole(dir.path());
    assert_eq!(
        first.iter().map(|p| name(p)).collect::<Vec<_>>(),
        ["a-n", "b-n"]
    );
    assert_eq!(files.update(), None, "nothing read since");

    // A new file: only its pod is sent, and only it is read.
    std::fs::write(dir.path().join("c.yaml"), pod("c", "/bin/c")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), pod("a", "/bin/unnamed")).unwrap();
    files.read_names([name_of("c.yaml")]);
    let (pods, gone) = changed(files.update());
    assert_eq!((pods.len(), gone.len()), (1, 0));
    assert_eq!(name(&pods[0]), "c-n");

    // A rewrite with the same content sends nothing; a changed one sends the pod.
    std::fs::write(dir.path().join("b.yaml"), pod("b", "/bin/b")).unwrap();
    files.read_names([name_of("b.yaml")]);
    assert_eq!(files.update(), None);
    files.read_names([name_of("a.yaml")]);
    let (pods, _) = changed(files.update());
    assert_eq!(image(&pods[0]), "/bin/unnamed");
    assert_eq!(
        pods[0].metadata.uid, first[0].metadata.uid,
        "same file, same UID"
    );

    // A removed file: its pod is gone.
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    files.read_names([name_of("b.yaml"), name_of("not-a-manifest.txt")]);
    let (pods, gone) = changed(files.update());
    assert!(pods.is_empty());
    assert_eq!(gone, [first[1].metadata.uid.clone().unwrap()]);
}

#[test]
fn a_whole_read_sends_the_difference_from_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), pod("a", "/bin/a")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), pod("b", "/bin/b")).unwrap();
    let (mut files, first) = read_whole(dir.path());
    // Events lost: b removed, c added, a unchanged.
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    std::fs::write(dir.path().join("c.yaml"), pod("c", "/bin/c")).unwrap();
    files.read_all().unwrap();
    let (pods, gone) = changed(files.update());
    assert_eq!(pods.iter().map(|p| name(p)).collect::<Vec<_>>(), ["c-n"]);
    assert_eq!(gone, [first[1].metadata.uid.clone().unwrap()]);
    // The directory gone: every pod goes.
    files.forget_all();
    let (pods, gone) = changed(files.update());
    assert!(pods.is_empty());
    assert_eq!(gone.len(), 2);
}

#[test]
fn the_first_file_keeps_a_name_and_the_next_takes_over_when_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-web.yaml"), pod("web", "/bin/first")).unwrap();
    std::fs::write(dir.path().join("20-web.yaml"), pod("web", "/bin/second")).unwrap();
    let (mut files, first) = read_whole(dir.path());
    assert_eq!(first.len(), 1);
    assert_eq!(image(&first[0]), "/bin/first");
    let left_out = files.left_out(&dir.path().join("20-web.yaml"));
    assert!(
        matches!(&left_out, Some(Error::DuplicatePod { first, .. }) if first.ends_with("10-web.yaml")),
        "{left_out:?}"
    );
    std::fs::remove_file(dir.path().join("10-web.yaml")).unwrap();
    files.read_names([name_of("10-web.yaml")]);
    let (pods, gone) = changed(files.update());
    assert_eq!(pods.len(), 1);
    assert_eq!(image(&pods[0]), "/bin/second");
    assert_eq!(gone, [first[0].metadata.uid.clone().unwrap()]);
    // A file naming a pod twice is left out whole, and claims nothing.
    let twice = format!("{}---\n{}", pod("db", "/bin/a"), pod("db", "/bin/b"));
    std::fs::write(dir.path().join("05-db.yaml"), twice).unwrap();
    files.read_names([name_of("05-db.yaml")]);
    assert_eq!(files.update(), None);
}

#[test]
fn a_broken_file_sends_nothing_and_a_fix_sends_its_pod() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "kind: [").unwrap();
    let (mut files, first) = read_whole(dir.path());
    assert!(first.is_empty());
    std::fs::write(dir.path().join("a.yaml"), pod("a", "/bin/a")).unwrap();
    files.read_names([name_of("a.yaml")]);
    let (pods, _) = changed(files.update());
    assert_eq!(pods.len(), 1);
    std::fs::write(dir.path().join("a.yaml"), "kind: [").unwrap();
    files.read_names([name_of("a.yaml")]);
    let (pods, gone) = changed(files.update());
    assert_eq!(
        (pods.len(), gone.len()),
        (0, 1),
        "a file broken again stops its pod"
    );
}
