//! The systemd client against the sandbox's real systemd: writing and loading units,
//! start/stop/restart, status fields, stop timeouts, reset-failed, removal, listing,
//! events and enabling. Units live in the sandbox's private `/etc/systemd/system`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{FutureExt as _, StreamExt};
use systemk::systemd::{ActiveState, JobResult, Systemd, UnitStatus};
use systemk::unit::{KubernetesMeta, RestartPolicy, UnitFile, UnitName};

use crate::support::{TestContext, is_loaded, system_bus, wait_for};

/// systemd's unit directory for the administrator; private to the sandbox.
const UNITS_DIR: &str = "/etc/systemd/system";

/// Long enough for a slow CI machine, short enough to fail fast.
const DEADLINE: Duration = Duration::from_secs(20);

fn units_dir() -> &'static Path {
    Path::new(UNITS_DIR)
}

/// A unit file for `pod`/`container` of the test's namespace running `exec_start`, with
/// extra `[Service]` lines and a valid `[X-Kubernetes]` section.
fn unit(context: &TestContext, pod: &str, exec_start: &str, service: &str) -> (UnitName, String) {
    let name = context.unit_name(pod, "main");
    let text = format!(
        "[Unit]\nDescription=systemk test {pod}\n\n[Service]\nExecStart={exec_start}\n{service}\n\
         [Install]\nWantedBy=multi-user.target\n"
    );
    let mut file = UnitFile::parse(&text).unwrap();
    let mut meta = KubernetesMeta {
        namespace: context.namespace().to_owned(),
        pod_name: pod.to_owned(),
        pod_uid: format!("uid-{pod}"),
        container: "main".to_owned(),
        container_index: 0,
        init_container: false,
        image: "/bin/sh".to_owned(),
        image_id: "sha256:0".to_owned(),
        restart_policy: RestartPolicy::Never,
        spec_hash: String::new(),
    };
    meta.write_to(&mut file).unwrap();
    (name, file.render())
}

async fn status_when(
    systemd: &Systemd,
    name: &UnitName,
    what: &str,
    condition: impl Fn(&UnitStatus) -> bool,
) -> UnitStatus {
    wait_for(DEADLINE, what, || async {
        let status = systemd.status(name).await.unwrap();
        condition(&status).then_some(status)
    })
    .await
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn start_restart_stop_and_status_fields() {
    let context = TestContext::new("start_restart_stop");
    let systemd = Systemd::connect().await.unwrap();
    let sleeper = unit(&context, "sleeper", "/bin/sleep infinity", "");
    let exiter = unit(
        &context,
        "exiter",
        "/bin/sh -c 'exit 3'",
        "RemainAfterExit=yes",
    );
    systemd
        .write_units(units_dir(), &[sleeper.clone(), exiter.clone()])
        .await
        .unwrap();
    let (sleeper, exiter) = (sleeper.0, exiter.0);

    assert_eq!(systemd.start(&sleeper).await.unwrap(), JobResult::Done);
    let running = systemd.status(&sleeper).await.unwrap();
    assert_eq!(running.active_state, ActiveState::Active);
    assert_eq!(running.sub_state, "running");
    assert!(running.main_pid > 0);
    assert!(running.exec_main_start_us > 0 && running.active_enter_us > 0);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", running.main_pid)).unwrap();
    assert_eq!(cmdline, b"/bin/sleep\0infinity\0");

    assert_eq!(systemd.restart(&sleeper).await.unwrap(), JobResult::Done);
    let restarted = systemd.status(&sleeper).await.unwrap();
    assert_eq!(restarted.active_state, ActiveState::Active);
    assert_ne!(restarted.main_pid, running.main_pid);

    kill(restarted.main_pid, "-KILL");
    let killed = status_when(&systemd, &sleeper, "the sleeper to fail", |s| {
        s.exec_main_exit_us > 0
    })
    .await;
    assert_eq!((killed.exec_main_code, killed.signal()), (2, Some(9)));
    assert_eq!(killed.active_state, ActiveState::Failed);
    assert_eq!(killed.result, "signal");

    systemd.start(&exiter).await.unwrap();
    let exited = status_when(&systemd, &exiter, "the exiter to exit", |s| {
        s.exec_main_exit_us > 0
    })
    .await;
    assert_eq!((exited.exec_main_code, exited.exit_code()), (1, Some(3)));
    assert_eq!(exited.result, "exit-code");
    assert!(exited.exec_main_exit_us >= exited.exec_main_start_us);

    assert_eq!(systemd.start(&sleeper).await.unwrap(), JobResult::Done);
    assert_eq!(
        systemd.stop(&sleeper, DEADLINE).await.unwrap(),
        JobResult::Done
    );
    let stopped = systemd.status(&sleeper).await.unwrap();
    assert_eq!(
        (stopped.active_state, stopped.main_pid),
        (ActiveState::Inactive, 0)
    );

    systemd
        .remove(units_dir(), &[sleeper, exiter])
        .await
        .unwrap();
}

#[tokio::test]
async fn stop_sigkills_a_unit_that_ignores_sigterm_after_the_timeout() {
    let context = TestContext::new("stop_timeout");
    let systemd = Systemd::connect().await.unwrap();
    // The unit's own stop timeout is far longer than the one systemk asks for. The file
    // tells the test that the trap is set: a SIGTERM before that would simply end sh.
    let ready = context.workspace().join("trapping");
    let script = format!(
        "/bin/sh -c 'trap \"\" TERM; touch {}; while :; do sleep 0.1; done'",
        ready.display()
    );
    let stubborn = unit(&context, "stubborn", &script, "TimeoutStopSec=300");
    systemd
        .write_units(units_dir(), std::slice::from_ref(&stubborn))
        .await
        .unwrap();
    let name = stubborn.0;
    systemd.start(&name).await.unwrap();
    wait_for(DEADLINE, "the unit to trap SIGTERM", || async {
        ready.exists().then_some(())
    })
    .await;

    let started = Instant::now();
    systemd.stop(&name, Duration::from_secs(1)).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "{took:?}"
    );
    let status = systemd.status(&name).await.unwrap();
    assert_eq!(status.main_pid, 0);
    assert_eq!((status.exec_main_code, status.signal()), (2, Some(9)));

    systemd.remove(units_dir(), &[name]).await.unwrap();
}

#[tokio::test]
async fn reset_failed_clears_the_failed_state() {
    let context = TestContext::new("reset_failed");
    let systemd = Systemd::connect().await.unwrap();
    let failing = unit(&context, "failing", "/bin/false", "");
    systemd
        .write_units(units_dir(), std::slice::from_ref(&failing))
        .await
        .unwrap();
    let name = failing.0;
    systemd.start(&name).await.unwrap();
    status_when(&systemd, &name, "the unit to fail", |s| {
        s.active_state == ActiveState::Failed
    })
    .await;

    systemd.reset_failed(&name).await.unwrap();
    let status = systemd.status(&name).await.unwrap();
    assert_eq!(status.active_state, ActiveState::Inactive);
    assert_eq!(status.result, "success");

    systemd.remove(units_dir(), &[name]).await.unwrap();
}

/// A running unit (not systemk's) that wants `held`, so systemd keeps `held` loaded after
/// its removal until it re-reads its units, as an active target it was enabled into does
/// on a host. Written, started, and returned by name.
fn hold(context: &TestContext, held: &UnitName) -> String {
    let name = format!("systemk-test-hold-{}.service", context.namespace());
    let text = format!("[Unit]\nWants={held}\n\n[Service]\nExecStart=/bin/sleep infinity\n");
    std::fs::write(units_dir().join(&name), text).unwrap();
    let started = Command::new("systemctl")
        .args(["start", &name])
        .status()
        .unwrap();
    assert!(started.success());
    name
}

fn unhold(name: &str) {
    let _ = Command::new("systemctl").args(["stop", name]).status();
    let _ = std::fs::remove_file(units_dir().join(name));
}

/// Removing units leaves no file and no link at once, and waits for no reload; systemd
/// forgets them at once when nothing refers to them, else learns their files are gone at
/// the one reload owed for the removal, which comes by itself a moment later.
#[tokio::test]
async fn remove_leaves_no_file_no_link_and_no_loaded_unit() {
    let context = TestContext::new("remove");
    let systemd = Systemd::connect().await.unwrap();
    let failed = unit(&context, "failed", "/bin/false", "");
    let running = unit(&context, "running", "/bin/sleep infinity", "");
    systemd
        .write_units(units_dir(), &[failed.clone(), running.clone()])
        .await
        .unwrap();
    let names = [failed.0, running.0];
    systemd.enable(&names).await.unwrap();
    for name in &names {
        systemd.start(name).await.unwrap();
    }
    status_when(&systemd, &names[0], "the unit to fail", |s| {
        s.active_state == ActiveState::Failed
    })
    .await;
    let holder = hold(&context, &names[1]);

    let reloads = systemd.daemon_reloads();
    let before = reloads.get();
    systemd.remove(units_dir(), &names).await.unwrap();
    assert_eq!(reloads.get(), before, "a removal waits for no reload");
    for name in &names {
        assert!(
            !units_dir().join(name.as_str()).exists(),
            "{name} still has a file"
        );
        let link = units_dir()
            .join("multi-user.target.wants")
            .join(name.as_str());
        assert!(!link.is_symlink(), "{name} is still enabled");
    }
    assert!(!is_loaded(&names[0]).await, "nothing holds {}", names[0]);
    assert!(is_loaded(&names[1]).await, "{holder} holds {}", names[1]);
    wait_for(DEADLINE, "the owed reload", || async {
        (reloads.get() > before).then_some(())
    })
    .await;
    assert_eq!(reloads.get(), before + 1, "one reload for the removal");
    // Still wanted by the holder, but systemd knows its file is gone.
    let load_state = Command::new("systemctl")
        .args(["show", "-p", "LoadState", "--value", names[1].as_str()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&load_state.stdout).trim(),
        "not-found"
    );
    let listed = systemd.list_managed(units_dir()).await.unwrap();
    assert!(
        listed
            .iter()
            .all(|unit| unit.meta.namespace != context.namespace())
    );
    unhold(&holder);
}

/// The command line of the unit's main process, as the kernel holds it.
async fn main_cmdline(systemd: &Systemd, name: &UnitName) -> Vec<u8> {
    let status = systemd.status(name).await.unwrap();
    std::fs::read(format!("/proc/{}/cmdline", status.main_pid)).unwrap()
}

/// A unit written again right after its removal, while systemd still holds the removed
/// one, runs as written the second time.
#[tokio::test]
async fn a_unit_written_again_after_its_removal_runs_its_new_content() {
    let context = TestContext::new("rewrite");
    let systemd = Systemd::connect().await.unwrap();
    let (name, first) = unit(&context, "again", "/bin/sleep 1001", "");
    systemd
        .write_units(units_dir(), &[(name.clone(), first)])
        .await
        .unwrap();
    systemd.start(&name).await.unwrap();
    let holder = hold(&context, &name);
    systemd
        .remove(units_dir(), std::slice::from_ref(&name))
        .await
        .unwrap();
    assert!(is_loaded(&name).await, "{holder} holds {name}");

    let (_, second) = unit(&context, "again", "/bin/sleep 1002", "");
    systemd
        .write_units(units_dir(), &[(name.clone(), second)])
        .await
        .unwrap();
    assert_eq!(systemd.start(&name).await.unwrap(), JobResult::Done);
    assert_eq!(
        main_cmdline(&systemd, &name).await,
        b"/bin/sleep\x001002\x00"
    );
    unhold(&holder);
    systemd
        .remove(units_dir(), std::slice::from_ref(&name))
        .await
        .unwrap();
}

/// A unit systemd has not loaded reads as it does once loaded (inactive, never ran), and
/// reading its status does not load it: its start loads it, once.
#[tokio::test]
async fn an_unloaded_unit_reads_as_a_loaded_one_without_being_loaded() {
    let context = TestContext::new("unloaded");
    let systemd = Systemd::connect().await.unwrap();
    let (name, text) = unit(&context, "idle", "/bin/sleep infinity", "");
    systemd
        .write_units(units_dir(), &[(name.clone(), text)])
        .await
        .unwrap();
    let mut loads = unit_loads(&name).await;
    let status = systemd.status(&name).await.unwrap();
    assert_eq!(loads.count().await, 0, "reading the status loaded {name}");

    let loaded = loaded_properties(&name).await;
    let text = |key: &str| <&str>::try_from(&loaded[key]).unwrap().to_owned();
    let number = |key: &str| u64::try_from(&loaded[key]).unwrap();
    assert_eq!(status.active_state.as_str(), text("ActiveState"));
    assert_eq!(status.sub_state, text("SubState"));
    assert_eq!(status.result, text("Result"));
    assert_eq!(status.control_group, text("ControlGroup"));
    assert_eq!(status.main_pid, u32::try_from(&loaded["MainPID"]).unwrap());
    assert_eq!(
        status.n_restarts,
        u32::try_from(&loaded["NRestarts"]).unwrap()
    );
    for (ours, key) in [
        (status.exec_main_code, "ExecMainCode"),
        (status.exec_main_status, "ExecMainStatus"),
    ] {
        assert_eq!(ours, i32::try_from(&loaded[key]).unwrap(), "{key}");
    }
    for (ours, key) in [
        (status.exec_main_start_us, "ExecMainStartTimestamp"),
        (status.exec_main_exit_us, "ExecMainExitTimestamp"),
        (status.active_enter_us, "ActiveEnterTimestamp"),
        (status.inactive_enter_us, "InactiveEnterTimestamp"),
        (status.inactive_exit_us, "InactiveExitTimestamp"),
    ] {
        assert_eq!(ours, number(key), "{key}");
    }
    let invocation = Vec::<u8>::try_from(loaded["InvocationID"].try_clone().unwrap()).unwrap();
    assert!(status.invocation_id.is_empty() && invocation.iter().all(|b| *b == 0));
    assert_eq!(status.failed_command, None);

    // Loading it to compare left it unreferenced: systemd unloads it again.
    wait_for(DEADLINE, "systemd to unload it", || async {
        (!is_loaded(&name).await).then_some(())
    })
    .await;
    let mut loads = unit_loads(&name).await;
    assert_eq!(systemd.start(&name).await.unwrap(), JobResult::Done);
    assert_eq!(
        systemd.status(&name).await.unwrap().active_state,
        ActiveState::Active
    );
    assert_eq!(loads.count().await, 1, "the start loads {name} once");
    systemd
        .remove(units_dir(), std::slice::from_ref(&name))
        .await
        .unwrap();
}

/// systemd's `UnitNew` signals for one unit: one each time PID 1 loads it.
struct UnitLoads {
    bus: zbus::Connection,
    signals: zbus::MessageStream,
}

async fn unit_loads(name: &UnitName) -> UnitLoads {
    let bus = zbus::Connection::system().await.unwrap();
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.systemd1.Manager")
        .member("UnitNew")
        .arg(0, name.as_str())
        .build()
        .unwrap();
    let signals = zbus::MessageStream::for_match_rule(rule, &bus, None)
        .await
        .unwrap();
    // systemd signals only to subscribed clients.
    manager_call(&bus, "Subscribe").await;
    UnitLoads { bus, signals }
}

impl UnitLoads {
    /// The loads signalled so far. PID 1 sends a load's signal before the reply to the
    /// call that caused it, and dbus-daemon keeps one sender's order: once a call of this
    /// connection is answered, every earlier signal has arrived.
    async fn count(&mut self) -> usize {
        manager_call(&self.bus, "GetDefaultTarget").await;
        let mut count = 0;
        while let Some(Some(_)) = self.signals.next().now_or_never() {
            count += 1;
        }
        count
    }
}

async fn manager_call(bus: &zbus::Connection, method: &str) {
    bus.call_method(
        Some("org.freedesktop.systemd1"),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        method,
        &(),
    )
    .await
    .unwrap();
}

/// Every property of `name` as systemd reports it after loading it.
async fn loaded_properties(name: &UnitName) -> HashMap<String, zbus::OwnedVariant> {
    let bus = system_bus().await;
    let path: zbus::OwnedObjectPath = bus
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "LoadUnit",
            &(name.as_str(),),
        )
        .await
        .unwrap()
        .body()
        .deserialize()
        .unwrap();
    bus.call_method(
        Some("org.freedesktop.systemd1"),
        &path,
        Some("org.freedesktop.DBus.Properties"),
        "GetAll",
        &("",),
    )
    .await
    .unwrap()
    .body()
    .deserialize()
    .unwrap()
}

/// A new unit starts without a daemon-reload (systemd loads it from disk on first use);
/// writing a loaded unit with other content reloads once.
#[tokio::test]
async fn a_new_unit_starts_without_a_reload_and_a_changed_one_reloads_once() {
    let context = TestContext::new("no_reload");
    let systemd = Systemd::connect().await.unwrap();
    let reloads = systemd.daemon_reloads();
    let (name, first) = unit(&context, "fresh", "/bin/sleep 1003", "");
    systemd
        .write_units(units_dir(), &[(name.clone(), first)])
        .await
        .unwrap();
    assert_eq!(systemd.start(&name).await.unwrap(), JobResult::Done);
    assert_eq!(reloads.get(), 0, "a new unit needs no reload");

    let (_, second) = unit(&context, "fresh", "/bin/sleep 1004", "");
    systemd
        .write_units(units_dir(), &[(name.clone(), second)])
        .await
        .unwrap();
    assert_eq!(
        reloads.get(),
        1,
        "a loaded unit with other content reloads once"
    );
    assert_eq!(systemd.restart(&name).await.unwrap(), JobResult::Done);
    assert_eq!(
        main_cmdline(&systemd, &name).await,
        b"/bin/sleep\x001004\x00"
    );
    systemd
        .remove(units_dir(), std::slice::from_ref(&name))
        .await
        .unwrap();
}

#[tokio::test]
async fn list_managed_finds_units_with_their_metadata() {
    let context = TestContext::new("list_managed");
    let systemd = Systemd::connect().await.unwrap();
    let running = unit(&context, "running", "/bin/sleep infinity", "");
    let idle = unit(&context, "idle", "/bin/sleep infinity", "");
    systemd
        .write_units(units_dir(), &[running.clone(), idle.clone()])
        .await
        .unwrap();
    systemd.start(&running.0).await.unwrap();

    let mut mine: Vec<_> = systemd
        .list_managed(units_dir())
        .await
        .unwrap()
        .into_iter()
        .filter(|unit| unit.meta.namespace == context.namespace())
        .collect();
    mine.sort_by(|a, b| a.meta.pod_name.cmp(&b.meta.pod_name));
    let summary: Vec<_> = mine
        .iter()
        .map(|unit| {
            (
                unit.meta.pod_name.as_str(),
                unit.meta.pod_uid.as_str(),
                &unit.status.active_state,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("idle", "uid-idle", &ActiveState::Inactive),
            ("running", "uid-running", &ActiveState::Active)
        ]
    );
    assert_eq!(mine[1].status.name, running.0);

    systemd
        .remove(units_dir(), &[running.0, idle.0])
        .await
        .unwrap();
}

#[tokio::test]
async fn subscribe_sees_a_unit_become_active_and_stop() {
    let context = TestContext::new("subscribe");
    let systemd = Systemd::connect().await.unwrap();
    let mut events = systemd.subscribe().await.unwrap();
    let watched = unit(&context, "watched", "/bin/sleep infinity", "");
    systemd
        .write_units(units_dir(), std::slice::from_ref(&watched))
        .await
        .unwrap();
    let name = watched.0;
    systemd.start(&name).await.unwrap();
    systemd.stop(&name, DEADLINE).await.unwrap();

    let mut seen = Vec::new();
    let wanted = [ActiveState::Active, ActiveState::Inactive];
    tokio::time::timeout(DEADLINE, async {
        while let Some(event) = events.next().await {
            if event.name != name {
                continue;
            }
            if let Some(state) = event.active_state {
                seen.push(state);
                if wanted.iter().all(|state| seen.contains(state)) {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("saw only {seen:?} for {name}"));

    systemd.remove(units_dir(), &[name]).await.unwrap();
}

#[tokio::test]
async fn enable_creates_the_wants_link() {
    let context = TestContext::new("enable");
    let systemd = Systemd::connect().await.unwrap();
    let enabled = unit(&context, "enabled", "/bin/sleep infinity", "");
    systemd
        .write_units(units_dir(), std::slice::from_ref(&enabled))
        .await
        .unwrap();
    let name = enabled.0;
    systemd.enable(std::slice::from_ref(&name)).await.unwrap();

    let link = units_dir()
        .join("multi-user.target.wants")
        .join(name.as_str());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        units_dir().join(name.as_str())
    );

    systemd.remove(units_dir(), &[name]).await.unwrap();
    assert!(!link.is_symlink());
}

#[tokio::test]
async fn disable_vendor_stops_and_disables_a_package_unit() {
    let context = TestContext::new("disable_vendor");
    let systemd = Systemd::connect().await.unwrap();
    let vendor = format!("{}-vendor.service", context.namespace());
    let path = units_dir().join(&vendor);
    std::fs::write(
        &path,
        "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    call_manager("Reload", &()).await;
    call_manager("StartUnit", &(vendor.as_str(), "replace")).await;
    call_manager("EnableUnitFiles", &(&[vendor.as_str()][..], false, true)).await;
    let link = units_dir().join("multi-user.target.wants").join(&vendor);
    assert!(link.is_symlink());

    systemd
        .disable_vendor(std::slice::from_ref(&vendor))
        .await
        .unwrap();
    assert!(!link.is_symlink());
    assert!(!is_active(&vendor).await);
    assert!(
        systemd
            .disable_vendor(&["../evil.service".to_owned()])
            .await
            .is_err()
    );

    std::fs::remove_file(path).unwrap();
}

/// Calls a method of systemd's manager object.
async fn call_manager<B>(method: &str, body: &B) -> zbus::Message
where
    B: serde::Serialize + zbus::DynamicType,
{
    let bus = system_bus().await;
    bus.call_method(
        Some("org.freedesktop.systemd1"),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        method,
        body,
    )
    .await
    .unwrap_or_else(|error| panic!("{method}: {error}"))
}

/// Whether `unit` is loaded and active.
async fn is_active(unit: &str) -> bool {
    let empty: &[&str] = &[];
    let reply = call_manager("ListUnitsByPatterns", &(empty, &[unit][..])).await;
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        zbus::OwnedObjectPath,
        u32,
        String,
        zbus::OwnedObjectPath,
    );
    let rows: Vec<Row> = reply.body().deserialize().unwrap();
    rows.iter().any(|row| row.3 == "active")
}
