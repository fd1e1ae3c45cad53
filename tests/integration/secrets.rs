//! Issue 10, point 6: secrets stay secret. Pod files that must not reach a persistent disk
//! live in the runtime directory (a tmpfs, root-only); removing a pod's directories never
//! descends into a mount point below them.

use std::path::Path;
use std::process::Command;

use systemk::pod::PodDirs;

use crate::support::engine::unique_uid;
use crate::support::require_sandbox;

/// Runs `mount` with `args`, failing the test when it fails.
fn mount(args: &[&str], paths: &[&Path]) {
    let status = Command::new("mount")
        .args(args)
        .args(paths)
        .status()
        .unwrap();
    assert!(status.success(), "mount {args:?} {paths:?}");
}

#[test]
fn pod_dir_removal_detaches_bind_mounts_and_spares_their_source() {
    require_sandbox();
    let root = tempfile::Builder::new()
        .prefix("systemk-itest-remove.")
        .tempdir_in("/run")
        .unwrap();
    let dirs = PodDirs::new(&root.path().join("state"), &root.path().join("run"));
    let uid = unique_uid();
    let pod = serde_json::from_value(serde_json::json!({ "spec": { "containers": [] } })).unwrap();
    dirs.prepare(&pod, &uid).unwrap();
    // What a bind mount below the pod directory shows must survive the removal.
    let source = root.path().join("source");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("precious"), "x").unwrap();
    let target = dirs.runtime_pod_dir(&uid).join("volume-subpaths/c/0");
    std::fs::create_dir_all(&target).unwrap();
    mount(&["--bind"], &[&source, &target]);
    dirs.remove(&uid).unwrap();
    assert!(!dirs.runtime_pod_dir(&uid).exists());
    assert!(
        source.join("precious").exists(),
        "removal went through the mount"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&uid),
        "a mount below the pod is left:\n{mounts}"
    );
}
