//! The engine end to end (issue 2, item 9): pods go through the real layers — the
//! installer (path, apt, https), the unit builder, the systemd client, the reconciler's
//! `reconcile`/`cleanup` — and the tests look at what really runs: `/proc/<pid>` of the
//! unit's main process, files on the host, `systemctl`.

use std::process::Command;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use serde_json::{Value, json};
use systemk::package::ImageRef;
use systemk::pod::{
    ContainerInputs, EnvFacts, PlanFacts, containers, plan_container, read_vendor_unit,
};
use systemk::unit::UnitFile;

use crate::support::TestContext;
use crate::support::engine::{
    DEADLINE, Engine, INSTALL_DEADLINE, NODE_HOSTNAME, argv, container_status, environ, proc_ids,
    unique_uid,
};
use crate::support::packages::{
    DebFile, DebServer, InstallOnce, Purge, build_deb, dir_entries, hex_sha256, known_to_dpkg,
};
use crate::support::wait_for;

/// `nobody` and the `users` group: a real non-root user, and a group that is not its
/// primary one, so the test sees `runAsGroup` win.
const NOBODY: u32 = 65_534;
const USERS_GROUP: u32 = 100;

/// A pod of the test's namespace with a fresh UID.
fn pod(context: &TestContext, name: &str, spec: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": context.namespace(), "uid": unique_uid() },
        "spec": spec,
    }))
    .unwrap()
}

fn strings(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

fn phase(status: &PodStatus) -> Option<&str> {
    status.phase.as_deref()
}

/// Tries to write a file named `$MARK` into each of `$DIRS` and records the outcome in
/// `/srv/$WHO` (the emptyDir), then keeps running.
const WRITE_PROBE: &str = r#"
for dir in $DIRS; do
    if echo x 2>/dev/null > "$dir/$MARK"; then echo "$dir wrote"; else echo "$dir denied"; fi
done 2>/dev/null > "/srv/$WHO.tmp"
mv "/srv/$WHO.tmp" "/srv/$WHO"
sleep infinity & wait
"#;

/// The host's file system, read-only to every unit.
const READ_ONLY_DIRS: &[&str] = &[
    "/",
    "/usr/local",
    "/etc",
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/opt",
    "/usr",
];
// Not `/run`: each container's own (root may write it, `nobody` not), see run_dirs.rs.

/// Writable, but each unit's own: `PrivateTmp=yes`, and `ProtectHome=tmpfs`, which
/// systemd 252 mounts as an empty world-writable tmpfs (not read-only, as newer manuals
/// say), and `/dev/shm`, a tmpfs of its own. Nothing written there reaches the host.
const PRIVATE_DIRS: &[&str] = &["/root", "/home", "/tmp", "/var/tmp", "/dev/shm"];

#[tokio::test]
async fn shell_pod_runs_as_asked_and_writes_only_its_empty_dir() {
    let context = TestContext::new("engine_shell");
    let engine = Engine::new(None).await;
    let mark = format!("systemk-itest-{}", context.namespace());
    let probed: Vec<&str> = READ_ONLY_DIRS.iter().chain(PRIVATE_DIRS).copied().collect();
    let probe = |who: &str, security: Value| {
        json!({
            "name": who, "image": "/bin/sh", "args": ["-c", WRITE_PROBE],
            "workingDir": "/usr/share",
            "env": [
                { "name": "WHO", "value": who },
                { "name": "MARK", "value": mark },
                { "name": "DIRS", "value": probed.join(" ") },
                { "name": "GREETING", "value": "hello world" },
            ],
            "securityContext": security,
            "volumeMounts": [{ "name": "scratch", "mountPath": "/srv" }],
        })
    };
    let spec = json!({
        "securityContext": { "runAsUser": NOBODY, "runAsGroup": USERS_GROUP },
        "containers": [
            probe("app", json!({})),
            // root, where only the sandbox stops the writes.
            probe("rooted", json!({ "runAsUser": 0, "runAsGroup": 0 })),
        ],
        "volumes": [{ "name": "scratch", "emptyDir": {} }],
    });
    let run = engine.run(pod(&context, "shell", spec));

    let pid = run.running_pid(DEADLINE, "app").await;
    assert_eq!(proc_ids(pid, "Uid"), [NOBODY; 4]);
    assert_eq!(proc_ids(pid, "Gid"), [USERS_GROUP; 4]);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::path::Path::new("/usr/share")
    );
    let env = environ(pid);
    for wanted in [
        "GREETING=hello world".to_owned(),
        "WHO=app".to_owned(),
        format!("MARK={mark}"),
        format!("HOSTNAME={NODE_HOSTNAME}"),
        "SYSTEMK_NODE_INTERNAL_IP=127.0.0.1".to_owned(),
    ] {
        assert!(
            env.contains(&wanted.clone().into_bytes()),
            "{wanted} not in {env:?}"
        );
    }
    let rooted = run.running_pid(DEADLINE, "rooted").await;
    assert_eq!(proc_ids(rooted, "Uid"), [0; 4]);

    let scratch = run.empty_dir("scratch");
    for who in ["app", "rooted"] {
        let results = scratch.join(who);
        let text = wait_for(DEADLINE, &format!("{who}'s probe results"), || async {
            std::fs::read_to_string(&results).ok()
        })
        .await;
        let denied = READ_ONLY_DIRS.iter().map(|d| format!("{d} denied"));
        let private = PRIVATE_DIRS.iter().map(|d| format!("{d} wrote"));
        let expected: Vec<String> = denied.chain(private).collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{who}");
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&results).unwrap());
        assert_eq!(owner, if who == "app" { NOBODY } else { 0 });
    }
    for dir in &probed {
        let path = std::path::Path::new(dir).join(&mark);
        assert!(!path.exists(), "{} was written", path.display());
    }

    run.finish().await;
}

#[tokio::test]
async fn exits_and_signals_show_in_the_status() {
    let context = TestContext::new("engine_exits");
    let engine = Engine::new(None).await;
    let spec = json!({
        "restartPolicy": "Never",
        "containers": [
            { "name": "exits", "image": "/bin/sh", "args": ["-c", "exit 3"] },
            // `$$$$` is the kubelet's escape for `$$` (args are `$(VAR)`-expanded).
            { "name": "killed", "image": "/bin/sh", "args": ["-c", "kill -9 $$$$"] },
        ],
    });
    let run = engine.run(pod(&context, "exits", spec));

    let status = run
        .until(DEADLINE, "the pod to fail", |status| {
            (phase(status) == Some("Failed")).then(|| status.clone())
        })
        .await;
    for (container, exit_code) in [("exits", 3), ("killed", 137)] {
        let container = container_status(&status, container).unwrap();
        let terminated = container
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .unwrap_or_else(|| panic!("{} not terminated: {container:?}", container.name));
        assert_eq!(
            (terminated.exit_code, terminated.reason.as_deref()),
            (exit_code, Some("Error")),
            "{}",
            container.name
        );
        assert_eq!(container.restart_count, 0);
        assert!(!container.ready);
    }

    run.finish().await;
}

#[tokio::test]
async fn apt_pod_runs_the_vendor_exec_start_with_the_vendor_unit_off() {
    let context = TestContext::new("engine_apt");
    // Another test run may have uptimed installed for a while: wait for it to be gone.
    wait_for(INSTALL_DEADLINE, "uptimed not to be installed", || async {
        (!known_to_dpkg("uptimed")).then_some(())
    })
    .await;
    let _purge = Purge(vec!["uptimed"]);
    let engine = Engine::new(None).await;
    let spec = json!({ "containers": [{ "name": "uptimed", "image": "uptimed" }] });
    let run = engine.run(pod(&context, "uptimed", spec));

    let pid = run.running_pid(INSTALL_DEADLINE, "uptimed").await;
    assert_eq!(argv(pid), strings(&["/usr/sbin/uptimed", "-f"]));
    let daemon = systemk::unit::SystemUsers;
    let (uid, gid) = systemk::unit::UserDb::user_by_name(&daemon, "daemon").unwrap();
    assert_eq!(proc_ids(pid, "Uid"), [uid; 4]);
    assert_eq!(proc_ids(pid, "Gid"), [gid; 4]);

    let systemctl = |verb: &str| {
        let out = Command::new("systemctl")
            .args([verb, "uptimed.service"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(systemctl("is-enabled"), "disabled");
    assert_eq!(systemctl("is-active"), "inactive");
    let wants = std::path::Path::new("/etc/systemd/system/multi-user.target.wants");
    assert!(!wants.join("uptimed.service").is_symlink());
    // The sandbox leaves the daemon its own directories: the pid file in /run/uptimed
    // (made by the package's tmpfiles.d) and the records in /var/spool/uptimed.
    let pid_file = wait_for(DEADLINE, "uptimed to write its pid file", || async {
        std::fs::read_to_string("/run/uptimed/uptimed.pid").ok()
    })
    .await;
    assert_eq!(pid_file.trim(), pid.to_string());
    assert!(std::path::Path::new("/var/spool/uptimed/records").exists());
    // The only uptimed running is the pod's.
    let pgrep = Command::new("pgrep")
        .args(["-x", "uptimed"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&pgrep.stdout).trim(),
        pid.to_string()
    );

    run.finish().await;
}

/// The https test package: no vendor unit, one program that keeps running.
const HTTPS_PACKAGE: &str = "systemk-itest-engine-https";

#[tokio::test]
async fn https_pod_installs_a_served_deb_and_a_wrong_pin_is_refused() {
    let context = TestContext::new("engine_https");
    let _purge = Purge(vec![HTTPS_PACKAGE]);
    let build = tempfile::tempdir().unwrap();
    let program = format!("/usr/bin/{HTTPS_PACKAGE}");
    let deb = build_deb(
        build.path(),
        HTTPS_PACKAGE,
        None,
        &[DebFile {
            path: &program,
            content: "#!/bin/sh\nsleep infinity & wait\n",
            mode: 0o755,
        }],
    );
    let sha = hex_sha256(&deb);
    let server = DebServer::start(deb, Vec::new()).await;
    let engine = Engine::new(Some(server.ca_pem())).await;
    let url = server.url(&format!("{HTTPS_PACKAGE}_1.0-1_all.deb"));
    let spec = |pin: &str| {
        json!({ "containers": [{
            "name": "main", "image": format!("{url}@sha256:{pin}"), "command": [program],
        }] })
    };

    let run = engine.run(pod(&context, "pinned", spec(&sha)));
    let pid = run.running_pid(INSTALL_DEADLINE, "main").await;
    assert_eq!(argv(pid), strings(&["/bin/sh", &program]));
    let status = run.pass().await;
    let main = container_status(&status, "main").unwrap();
    assert_eq!(main.image_id, format!("sha256:{sha}"));
    let cached = dir_entries(engine.cache_dir());
    assert_eq!(cached, [format!("{sha}.deb")]);

    let wrong_pin = "0".repeat(64);
    let refused = engine.run(pod(&context, "wrong-pin", spec(&wrong_pin)));
    let (reason, message) = refused
        .until(DEADLINE, "the wrong pin to be refused", |status| {
            let waiting = container_status(status, "main")?
                .state
                .as_ref()?
                .waiting
                .clone()?;
            (waiting.reason.as_deref() != Some("ContainerCreating"))
                .then(|| (waiting.reason, waiting.message.unwrap_or_default()))
        })
        .await;
    assert_eq!(reason.as_deref(), Some("ErrImagePull"));
    assert!(
        message.contains(&format!("has sha256 {sha}, but the image pins {wrong_pin}")),
        "{message}"
    );
    assert_eq!(refused.units().await, []);
    assert!(!refused.unit_path("main").exists());
    assert_eq!(dir_entries(engine.cache_dir()), cached);
    let still = run.unit_status("main").await;
    assert_eq!(still.main_pid, pid, "the pinned pod keeps running");

    refused.finish().await;
    run.finish().await;
}

/// Strings systemd would expand, split or read as directives if they reached a unit
/// file unescaped; each must reach the process byte for byte as the kubelet's `$(VAR)`
/// expansion leaves it (see [`kubelet_expanded`]).
const NASTY: &[&str] = &[
    "two words",
    "double \" quote",
    "single ' quote",
    "$HOME",
    "${X}",
    "$$",
    "$$$$",
    "%n",
    "%%",
    "%",
    "back\\slash \\\\ \\n \\x41",
    "trailing\\",
    "tab\there",
    "line\nbreak\n",
    "\nExecStartPre=/bin/false\n[Service]\nUser=root\n",
    "é 漢字 🦀",
    "",
    ";",
    "-",
];

/// The script keeps the shell (the unit's main process) alive; its extra lines look like
/// unit directives.
const NASTY_SCRIPT: &str = "sleep infinity & wait\nExecStartPre=/bin/false\n[Service]\nUser=root\n\
     # \"quotes\" 'too' $HOME ${X} %n %% \\ \t é\n";

/// What the kubelet's expansion makes of a [`NASTY`] value: none holds `$(`, so only
/// `$$` → `$` applies.
fn kubelet_expanded(value: &str) -> String {
    value.replace("$$", "$")
}

fn escaping_pod(context: &TestContext, name: &str, values: &[&str], script: &str) -> Pod {
    let mut args = vec!["-c", script, "argv0"];
    args.extend(values);
    let env: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, value)| json!({ "name": format!("NASTY_{i}"), "value": value }))
        .collect();
    pod(
        context,
        name,
        json!({ "containers": [{
            "name": "main", "image": "/bin/sh", "args": args, "env": env,
        }] }),
    )
}

/// `(section, key)` of every entry, in order.
fn keys(unit: &UnitFile) -> Vec<(String, String)> {
    unit.sections()
        .flat_map(|section| {
            section
                .entries()
                .map(|(key, _)| (section.name().to_owned(), key.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn nasty_args_and_env_arrive_unchanged_and_add_nothing_to_the_unit() {
    let context = TestContext::new("engine_escaping");
    let engine = Engine::new(None).await;
    let nasty = escaping_pod(&context, "nasty", NASTY, NASTY_SCRIPT);
    let run = engine.run(nasty);

    let pid = run.running_pid(DEADLINE, "main").await;
    let mut expected = strings(&["/bin/sh", "-c", NASTY_SCRIPT, "argv0"]);
    expected.extend(
        NASTY
            .iter()
            .map(|value| kubelet_expanded(value).into_bytes()),
    );
    assert_eq!(argv(pid), expected);
    let env = environ(pid);
    for (i, value) in NASTY.iter().enumerate() {
        let entry = format!("NASTY_{i}={}", kubelet_expanded(value)).into_bytes();
        assert!(env.contains(&entry), "{value:?} not in {env:?}");
    }

    let text = std::fs::read_to_string(run.unit_path("main")).unwrap();
    let unit = UnitFile::parse(&text).unwrap();
    let plain_values = vec!["plain"; NASTY.len()];
    let plain = escaping_pod(&context, "plain", &plain_values, "sleep infinity");
    let installed = engine
        .ctx()
        .installer
        .install_one(&ImageRef::Path("/bin/sh".into()))
        .await
        .unwrap();
    let ctx = engine.ctx();
    let vendor_unit =
        read_vendor_unit(&plain, containers(&plain)[0].container, &installed).unwrap();
    let env = EnvFacts {
        node_name: ctx.node.hostname.clone(),
        ..EnvFacts::default()
    };
    let plain_unit = plan_container(
        &plain,
        containers(&plain)[0],
        ContainerInputs {
            installed: Some(&installed),
            vendor_unit: vendor_unit.as_ref(),
            objects: None,
        },
        &PlanFacts {
            node: &ctx.node,
            env: &env,
            pod_dir: &ctx.dirs.pod_dir("plain"),
            runtime_pod_dir: &ctx.dirs.runtime_pod_dir("plain"),
            users: ctx.users.as_ref(),
            security: &ctx.security,
        },
    )
    .unwrap()
    .unit;
    assert_eq!(keys(&unit), keys(&plain_unit), "{text}");
    assert_eq!(unit.get("Service", "User"), None);
    assert_eq!(unit.get("Service", "ExecStartPre"), None);

    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(run.unit_path("main"))
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    run.finish().await;
}
