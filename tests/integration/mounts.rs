//! Issue 10, point 5: mount points never change the host. Each attack runs as a real pod
//! through the engine in the booted systemd and must be refused with a message naming the
//! path, with the host path left as it was; a symlink planted in a hostPath (or swapped in
//! after staging) never makes a `subPath` bind the host's root. Ordinary mounts still work:
//! an emptyDir at an existing directory and at a new path below `/tmp`, `subPath`s of an
//! emptyDir and of a hostPath directory, and a pod's cleanup leaves hostPath files intact.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, container_status, unique_uid};
use crate::support::wait_for;

fn pod(context: &TestContext, name: &str, spec: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": context.namespace(), "uid": unique_uid() },
        "spec": spec,
    }))
    .unwrap()
}

/// One long-running shell container with `mounts`, over `volumes`.
fn shell_pod(context: &TestContext, name: &str, volumes: Value, mounts: Value) -> Pod {
    pod(
        context,
        name,
        json!({
            "containers": [{
                "name": "c", "image": "/bin/sh",
                "args": ["-c", "sleep infinity & wait"],
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        }),
    )
}

/// A host directory for hostPath volumes: below the sandbox's `/run`, which units see
/// (their `/tmp` is private).
fn host_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("systemk-itest-mounts.")
        .tempdir_in("/run")
        .unwrap()
}

/// The waiting message of container `c` once it is `CreateContainerConfigError`.
fn config_error(status: &PodStatus) -> Option<String> {
    let waiting = container_status(status, "c")?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    (waiting.reason.as_deref() == Some("CreateContainerConfigError"))
        .then(|| waiting.message.clone().unwrap_or_default())
}

/// Runs `pod` until it is refused; checks the message names `path` and the host has
/// no `path`.
async fn assert_refused(engine: &Engine, pod: Pod, path: &Path) -> String {
    let run = engine.run(pod);
    let message = run
        .until(DEADLINE, "the pod to be refused", config_error)
        .await;
    assert!(
        message.contains(&*path.to_string_lossy()),
        "the message names {}: {message}",
        path.display()
    );
    assert!(run.units().await.is_empty(), "a unit was written");
    let exists = path.symlink_metadata().is_ok();
    run.finish().await;
    if exists {
        // Undo the damage before failing.
        let _ = std::fs::remove_dir(path).or_else(|_| std::fs::remove_file(path));
        panic!("{} was created on the host", path.display());
    }
    message
}

#[tokio::test]
async fn mount_targets_missing_on_the_host_are_refused_and_never_created() {
    let context = TestContext::new("mounts_missing_targets");
    let engine = Engine::new(None).await;
    let host = host_dir();
    std::fs::write(host.path().join("unit"), "").unwrap();
    std::fs::create_dir(host.path().join("dir")).unwrap();
    std::fs::write(host.path().join("dir/item"), "x").unwrap();
    let mark = context.namespace();

    // An emptyDir where the host has nothing.
    let etc_dir = PathBuf::from(format!("/etc/systemk-itest-{mark}"));
    let spec = shell_pod(
        &context,
        "emptydir",
        json!([{ "name": "v", "emptyDir": {} }]),
        json!([{ "name": "v", "mountPath": etc_dir }]),
    );
    let message = assert_refused(&engine, spec, &etc_dir).await;
    assert!(message.contains("does not exist on the host"), "{message}");

    // A file at a unit file path: an empty file there would mask a vendor unit.
    let unit = PathBuf::from(format!("/etc/systemd/system/systemk-itest-{mark}.service"));
    let spec = shell_pod(
        &context,
        "hostfile",
        json!([{ "name": "v", "hostPath": { "path": host.path().join("unit"), "type": "File" } }]),
        json!([{ "name": "v", "mountPath": unit }]),
    );
    assert_refused(&engine, spec, &unit).await;

    // The same through a subPath item of a directory volume.
    let spec = shell_pod(
        &context,
        "subpathfile",
        json!([{ "name": "v", "hostPath": { "path": host.path().join("dir"), "type": "Directory" } }]),
        json!([{ "name": "v", "mountPath": unit, "subPath": "item" }]),
    );
    assert_refused(&engine, spec, &unit).await;
}

#[tokio::test]
async fn a_sub_path_symlink_never_binds_the_host_root() {
    let context = TestContext::new("mounts_subpath_symlink");
    let engine = Engine::new(None).await;
    let host = host_dir();
    let shared = host.path().join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    std::fs::write(shared.join("sub/mine"), "x").unwrap();
    let volumes = json!([{ "name": "v", "hostPath": { "path": shared, "type": "Directory" } }]);

    // Planted before the victim starts: `ln -s / esc`.
    std::os::unix::fs::symlink("/", shared.join("esc")).unwrap();
    let victim = shell_pod(
        &context,
        "planted",
        volumes.clone(),
        json!([{ "name": "v", "mountPath": "/tmp/esc", "subPath": "esc" }]),
    );
    let run = engine.run(victim);
    let message = run
        .until(DEADLINE, "the pod to be refused", config_error)
        .await;
    assert!(message.contains("out of the volume"), "{message}");
    assert!(run.units().await.is_empty());
    run.finish().await;

    // Swapped after staging: a writer pod replaces `sub` by a symlink to `/` while the
    // victim runs; the victim's restart still binds what was staged, never the host root.
    let victim = shell_pod(
        &context,
        "victim",
        volumes.clone(),
        json!([{ "name": "v", "mountPath": "/tmp/sub", "subPath": "sub" }]),
    );
    let run = engine.run(victim);
    let pid = run.running_pid(DEADLINE, "c").await;
    assert!(Path::new(&format!("/proc/{pid}/root/tmp/sub/mine")).exists());
    let writer = pod(
        &context,
        "writer",
        json!({
            "restartPolicy": "Never",
            "containers": [{
                "name": "c", "image": "/bin/sh",
                "args": ["-c", format!("cd {} && mv sub old && ln -s / sub", shared.display())],
                "volumeMounts": [{ "name": "v", "mountPath": shared }],
            }],
            "volumes": volumes,
        }),
    );
    let writer = engine.run(writer);
    writer
        .until(DEADLINE, "the writer to finish", |status| {
            (status.phase.as_deref() == Some("Succeeded")).then_some(())
        })
        .await;
    assert!(shared.join("sub").is_symlink(), "the writer swapped sub");
    let unit = run.unit_name("c");
    engine.ctx().systemd.restart(&unit).await.unwrap();
    let restarted = wait_for(DEADLINE, "the victim to run again", || async {
        let now = run.unit_status("c").await.main_pid;
        (now != 0 && now != pid).then_some(now)
    })
    .await;
    let root = format!("/proc/{restarted}/root/tmp/sub");
    assert!(
        !Path::new(&root).join("etc/passwd").exists(),
        "the victim sees the host's root"
    );
    assert!(
        Path::new(&root).join("mine").exists(),
        "the staged dir stays"
    );
    writer.finish().await;
    run.finish().await;
    assert!(
        shared.join("old/mine").exists(),
        "cleanup kept the hostPath"
    );
}

#[tokio::test]
async fn ordinary_mounts_and_sub_paths_work_and_cleanup_keeps_host_files() {
    let context = TestContext::new("mounts_ordinary");
    let engine = Engine::new(None).await;
    let host = host_dir();
    let data = host.path().join("data");
    std::fs::create_dir_all(data.join("logs/app")).unwrap();
    std::fs::write(data.join("logs/app/old.log"), "kept").unwrap();
    let spec = json!({
        "initContainers": [{
            "name": "init", "image": "/bin/sh",
            "args": ["-c", "mkdir -p /srv/nested/deeper && echo seeded > /srv/nested/deeper/f"],
            "volumeMounts": [{ "name": "scratch", "mountPath": "/srv" }],
        }],
        "containers": [{
            "name": "c", "image": "/bin/sh",
            "args": ["-c", "echo new > /tmp/logs/new.log; sleep infinity & wait"],
            "volumeMounts": [
                { "name": "scratch", "mountPath": "/srv" },
                { "name": "scratch", "mountPath": "/tmp/new/dir" },
                { "name": "scratch", "mountPath": "/var/tmp/part", "subPath": "nested/deeper" },
                { "name": "scratch", "mountPath": "/tmp/made", "subPath": "not/yet" },
                { "name": "host", "mountPath": "/tmp/logs", "subPath": "logs/app" },
            ],
        }],
        "volumes": [
            { "name": "scratch", "emptyDir": {} },
            { "name": "host", "hostPath": { "path": data, "type": "Directory" } },
        ],
    });
    let run = engine.run(pod(&context, "ordinary", spec));
    let pid = run.running_pid(DEADLINE, "c").await;
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    assert!(root.join("srv/nested/deeper/f").exists());
    assert!(root.join("tmp/new/dir/nested").is_dir());
    let part = std::fs::read_to_string(root.join("var/tmp/part/f")).unwrap();
    assert_eq!(part, "seeded\n");
    assert!(run.empty_dir("scratch").join("not/yet").is_dir());
    wait_for(DEADLINE, "the container to write its log", || async {
        data.join("logs/app/new.log").exists().then_some(())
    })
    .await;
    assert!(
        !Path::new("/tmp/new").exists(),
        "/tmp/new is the unit's own"
    );
    run.finish().await;
    assert_eq!(
        std::fs::read_to_string(data.join("logs/app/old.log")).unwrap(),
        "kept"
    );
    assert!(data.join("logs/app/new.log").exists());
}
