//! Issue 10, point 6: secrets stay secret. A pod's environment (with values from secrets,
//! `envFrom` and `$(VAR)` expansions of them) reaches the process from a root-only
//! environment file on the runtime tmpfs, never through the unit file, `systemctl show`
//! or `systemctl cat`; secret and token volumes live on that tmpfs and nothing of them is
//! in the state directory; another (non-root) pod cannot read either. Removing a pod's
//! directories never descends into a mount point below them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::json;
use systemk::pod::PodDirs;

use crate::cluster::harness::{Cluster, in_mount_namespace, pod_manifest, running_and_ready};
use crate::support::engine::{UNIT_DIR, environ, unique_uid};
use crate::support::require_sandbox;

/// The secret's value: found nowhere but in the process, the env file and the volume.
const MARKER: &str = "zq-S3KR1T-7f3a";

/// A value with every byte class that could trip the environment file's syntax.
fn tricky(prefix: &str) -> String {
    format!(
        "{prefix} \"q\" 'a' \\b\\ $HOME ${{PATH}} %n `id` #c ;x\nline2\r\n\ttab \u{1}\u{1b} é✓日本 \\"
    )
}

/// Every file below `dir` (symlinks not followed) whose content holds `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && String::from_utf8_lossy(&bytes).contains(needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

fn command_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn secret_env_and_volumes_stay_off_units_disk_and_other_pods() {
    let mut cluster = Cluster::new("secrets_stay_secret").await;
    let namespace = cluster.namespace().to_owned();
    let password = tricky(MARKER);
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": namespace},
        "stringData": {"password": password, "user": format!("{MARKER}-user")},
    });
    cluster.apply(&secret.to_string()).await;
    cluster.start_agent().await;
    let static_value = tricky("static");
    let holder = pod_manifest(
        "holder",
        &namespace,
        cluster.node(),
        json!({
            "containers": [{
                "name": "main",
                "image": "/bin/sh",
                "args": ["-c", "sleep infinity"],
                "env": [
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    {"name": "DERIVED", "value": "pre-$(PASS)-post"},
                    {"name": "STATIC", "value": static_value},
                ],
                "envFrom": [{"prefix": "FROM_", "secretRef": {"name": "creds"}}],
                "volumeMounts": [{"name": "creds", "mountPath": "/run/creds"}],
            }],
            "volumes": [{"name": "creds", "secret": {"secretName": "creds"}}],
        }),
    );
    cluster.apply(&holder.to_string()).await;
    let pod = cluster
        .wait_for_pod("holder", "Running and Ready", running_and_ready)
        .await;
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let unit = cluster.unit("holder", "main");
    let pid = cluster.unit_status(&unit).await.main_pid;
    assert_ne!(pid, 0);

    // The process sees every value unchanged.
    let env = environ(pid);
    for (name, value) in [
        ("PASS", password.clone()),
        ("DERIVED", format!("pre-{password}-post")),
        ("FROM_password", password.clone()),
        ("FROM_user", format!("{MARKER}-user")),
        ("STATIC", static_value.clone()),
    ] {
        let entry = format!("{name}={value}").into_bytes();
        assert!(env.contains(&entry), "{name} missing or changed in {env:?}");
    }

    // Neither the unit file nor systemd's view of the unit shows it.
    let unit_text = std::fs::read_to_string(Path::new(UNIT_DIR).join(unit.as_str())).unwrap();
    assert!(!unit_text.contains(MARKER), "{unit_text}");
    let show = command_output("systemctl", &["show", unit.as_str()]);
    assert!(!show.contains(MARKER), "systemctl show leaks it");
    let environment = command_output("systemctl", &["show", "-p", "Environment", unit.as_str()]);
    assert!(!environment.contains("PASS"), "{environment}");
    let cat = command_output("systemctl", &["cat", unit.as_str()]);
    assert!(!cat.contains(MARKER), "{cat}");

    // It comes from a root-only file on the runtime tmpfs.
    let runtime = cluster.runtime_dir();
    let pods_dir = runtime.join("pods");
    assert_eq!(
        std::fs::metadata(&pods_dir).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    let env_file = pods_dir.join(&uid).join("env/main.env");
    assert!(
        unit_text.contains(&format!("EnvironmentFile={}\n", env_file.display())),
        "{unit_text}"
    );
    let meta = std::fs::metadata(&env_file).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o7777), (0, 0o600));
    let volume = pods_dir.join(&uid).join("volumes/secret/creds");
    assert!(volume.is_dir(), "{} missing", volume.display());
    let fs = nix::sys::statfs::statfs(&volume).unwrap();
    assert_eq!(fs.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);
    assert!(!files_containing(&pods_dir.join(&uid), MARKER).is_empty());
    // Nothing of it is in the state directory (a persistent disk in production).
    let on_disk = files_containing(&cluster.state_dir().join("pods"), MARKER);
    assert!(
        on_disk.is_empty(),
        "secret bytes in the state dir: {on_disk:?}"
    );

    // Attack: a non-root pod of the same node reads neither file, from its own mount
    // namespace with its own user.
    let thief = pod_manifest(
        "thief",
        &namespace,
        cluster.node(),
        json!({
            "automountServiceAccountToken": false,
            "securityContext": {"runAsUser": 65534, "runAsGroup": 65534},
            "containers": [{"name": "main", "image": "/bin/sleep", "args": ["infinity"]}],
        }),
    );
    cluster.apply(&thief.to_string()).await;
    cluster
        .wait_for_pod("thief", "Running and Ready", running_and_ready)
        .await;
    let thief_pid = cluster
        .unit_status(&cluster.unit("thief", "main"))
        .await
        .main_pid;
    let targets = [
        ("cat", env_file.display().to_string()),
        ("cat", volume.join("password").display().to_string()),
        ("ls", volume.display().to_string()),
        ("ls", pods_dir.display().to_string()),
    ];
    for (tool, target) in &targets {
        let (read, stdout, _) = in_mount_namespace(
            thief_pid,
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                tool,
                target,
            ],
        )
        .await;
        assert!(
            !read && !stdout.contains(MARKER),
            "the thief could {tool} {target}: {stdout}"
        );
    }
    cluster.teardown().await;
}

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
