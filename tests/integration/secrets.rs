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
use crate::static_pods::machine::Machine;
use crate::support::TestContext;
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
    let Some(mut cluster) = Cluster::new("secrets_stay_secret").await else {
        return;
    };
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
                "volumeMounts": [{"name": "creds", "mountPath": "/tmp/creds"}],
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
    dirs.prepare(&pod, &uid, &Default::default()).unwrap();
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

/// A static pod whose container shows `VALUE` in its environment.
fn env_pod(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: envy\n  namespace: {{ns}}\nspec:\n  \
         containers:\n    - name: main\n      image: /bin/sleep\n      args: [\"infinity\"]\n      \
         env:\n        - name: VALUE\n          value: \"{value}\"\n"
    )
}

#[tokio::test]
async fn a_changed_env_file_restarts_and_a_wiped_runtime_dir_is_rewritten_at_start() {
    let context = TestContext::new("env_file_restarts");
    let machine = Machine::new(&context).await;
    machine.write_manifest("envy.yaml", &env_pod("one"));
    let agent = machine.start_agent();
    let unit = machine.unit("envy", "main");
    let first = machine.wait_running(START, &unit).await;
    assert!(environ(first).contains(&b"VALUE=one".to_vec()));
    let unit_path = Path::new(UNIT_DIR).join(unit.as_str());
    let unit_text = std::fs::read_to_string(&unit_path).unwrap();

    // Only the environment file changes, not the unit: the container still restarts
    // with the new value, as the kubelet starts a changed container anew.
    machine.write_manifest("envy.yaml", &env_pod("two"));
    let second = machine
        .wait_unit(START, &unit, "running with a new PID", |status| {
            status.sub_state == "running" && status.main_pid != first && status.main_pid != 0
        })
        .await
        .main_pid;
    assert!(environ(second).contains(&b"VALUE=two".to_vec()));
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), unit_text);

    // A boot: the runtime tmpfs is empty and systemk not yet running. The unit does not
    // start without its environment; once systemk runs, it writes the file and starts it.
    agent.kill9();
    let status = Command::new("systemctl")
        .args(["stop", unit.as_str()])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(machine.runtime_dir().join("pods")).unwrap();
    let started = Command::new("systemctl")
        .args(["start", unit.as_str()])
        .output()
        .unwrap();
    assert!(
        !started.status.success(),
        "started without its environment file"
    );
    let agent = machine.start_agent();
    let third = machine.wait_running(START, &unit).await;
    assert!(environ(third).contains(&b"VALUE=two".to_vec()));

    agent.terminate().await;
    machine.clean_up().await;
}

/// How long a static pod may take to (re)start.
const START: std::time::Duration = std::time::Duration::from_secs(10);
