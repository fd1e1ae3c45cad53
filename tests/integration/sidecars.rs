//! Native sidecars (issue 12, point 5) through the real engine in the booted systemd:
//! init containers with `restartPolicy: Always`. A sidecar starts in its place among the
//! init containers and the next one waits until it started (its startup probe passed);
//! it restarts whenever it exits while the app container runs; a `Never` pod whose app
//! container succeeded is `Succeeded` and its sidecar is stopped for good; on deletion the
//! sidecar stops after the app container. Attack: a sidecar that ignores SIGTERM keeps
//! neither a finished pod nor a deleted one alive.

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::engine::{
    DEADLINE, Engine, PodRun, container_status, init_container_status, unique_uid,
};

/// Long enough for the first restart back-off (10 s) and the new run.
const RESTART_DEADLINE: Duration = Duration::from_secs(60);

/// A shell script that tells the journal about SIGTERM and ignores it.
const IGNORES_TERM: &str = "trap 'echo term-ignored' TERM; while :; do sleep 0.1; done";

fn pod(context: &TestContext, name: &str, policy: &str, grace: u32, spec: Value) -> Pod {
    let mut spec_with = json!({"restartPolicy": policy, "terminationGracePeriodSeconds": grace});
    spec_with
        .as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": context.namespace(), "uid": unique_uid()},
        "spec": spec_with,
    }))
    .unwrap()
}

fn shell(name: &str, script: &str) -> Value {
    json!({"name": name, "image": "/bin/sh", "command": ["/bin/sh", "-c", script]})
}

fn sidecar(name: &str, script: &str) -> Value {
    let mut container = shell(name, script);
    container["restartPolicy"] = json!("Always");
    container
}

fn running(status: Option<&ContainerStatus>) -> bool {
    status
        .and_then(|s| s.state.as_ref())
        .is_some_and(|state| state.running.is_some())
}

fn condition(status: &PodStatus, type_: &str) -> String {
    let conditions = status.conditions.as_ref().expect("conditions");
    let found = conditions.iter().find(|c| c.type_ == type_);
    found.map(|c| c.status.clone()).unwrap_or_default()
}

/// The lines of `containers`' units in the journal, oldest first.
fn journal(run: &PodRun, containers: &[&str]) -> String {
    let _ = Command::new("journalctl").arg("--sync").status();
    let mut command = Command::new("journalctl");
    command.args(["--no-pager", "-o", "cat"]);
    for container in containers {
        command.args(["-u", run.unit_name(container).as_str()]);
    }
    String::from_utf8_lossy(&command.output().unwrap().stdout).into_owned()
}

#[tokio::test]
async fn sidecars_start_in_order_and_restart_beside_the_app_container() {
    let context = TestContext::new("sidecars_order");
    let engine = Engine::new(None).await;
    // `after` succeeds only if the proxy is up: it is started only once the proxy's
    // startup probe saw the file the proxy writes when it runs.
    let mut proxy = sidecar(
        "proxy",
        "sleep 1; echo up > /tmp/shared/proxy-up; exec sleep 600",
    );
    proxy["startupProbe"] = json!({"exec": {"command": ["/bin/test", "-e", "/tmp/shared/proxy-up"]}, "periodSeconds": 1});
    proxy["readinessProbe"] = json!({"exec": {"command": ["/bin/true"]}, "periodSeconds": 1});
    let mount = json!([{"name": "shared", "mountPath": "/tmp/shared"}]);
    let mut after = shell("after", "test -e /tmp/shared/proxy-up");
    for container in [&mut proxy, &mut after] {
        container["volumeMounts"] = mount.clone();
    }
    let run = engine.run(pod(
        &context,
        "order",
        "Always",
        5,
        json!({
            "initContainers": [shell("setup", "exit 0"), proxy, after],
            "containers": [shell("main", "exec sleep 600")],
            "volumes": [{"name": "shared", "emptyDir": {}}],
        }),
    ));
    let status = run
        .until(RESTART_DEADLINE, "main running, pod ready", |status| {
            let ready = condition(status, "Ready") == "True";
            (running(container_status(status, "main")) && ready).then(|| status.clone())
        })
        .await;
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&status, "Initialized"), "True");
    let setup = init_container_status(&status, "setup").unwrap();
    let done = setup.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(done.exit_code, 0, "{setup:?}");
    let after = init_container_status(&status, "after").unwrap();
    let done = after.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (done.exit_code, after.restart_count),
        (0, 0),
        "after ran once the proxy was up: {after:?}"
    );
    let proxy = init_container_status(&status, "proxy").unwrap();
    assert!(running(Some(proxy)), "{proxy:?}");
    assert_eq!(
        (proxy.ready, proxy.started),
        (true, Some(true)),
        "{proxy:?}"
    );
    // Started in order: setup ended before the proxy started, the proxy before after.
    let setup_unit = run.unit_status("setup").await;
    let proxy_unit = run.unit_status("proxy").await;
    let after_unit = run.unit_status("after").await;
    assert!(setup_unit.exec_main_exit_us <= proxy_unit.exec_main_start_us);
    assert!(proxy_unit.exec_main_start_us < after_unit.exec_main_start_us);

    // The proxy dies while main runs: it restarts, main goes on.
    let main_pid = run.running_pid(DEADLINE, "main").await;
    let proxy_pid = proxy_unit.main_pid;
    assert!(proxy_pid != 0);
    let killed = Command::new("kill")
        .args(["-KILL", &proxy_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = run
        .until(RESTART_DEADLINE, "proxy restarted", |status| {
            let proxy = init_container_status(status, "proxy")?;
            (proxy.restart_count >= 1 && running(Some(proxy))).then(|| status.clone())
        })
        .await;
    let main = container_status(&status, "main").unwrap();
    assert_eq!(main.restart_count, 0, "{main:?}");
    assert_eq!(run.unit_status("main").await.main_pid, main_pid);
    assert_eq!(condition(&status, "Initialized"), "True");
    run.finish().await;
}

#[tokio::test]
async fn sidecars_never_pod_succeeds_and_its_sidecar_stops_for_good() {
    let context = TestContext::new("sidecars_never");
    let engine = Engine::new(None).await;
    // Attack too: the sidecar ignores SIGTERM; it still cannot keep the pod alive.
    let run = engine.run(pod(
        &context,
        "never",
        "Never",
        2,
        json!({
            "initContainers": [sidecar("proxy", IGNORES_TERM)],
            "containers": [shell("main", "sleep 2; exit 0")],
        }),
    ));
    let status = run
        .until(RESTART_DEADLINE, "the pod succeeded", |status| {
            (status.phase.as_deref() == Some("Succeeded")).then(|| status.clone())
        })
        .await;
    let main = container_status(&status, "main").unwrap();
    let done = main.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(done.exit_code, 0);
    let proxy = init_container_status(&status, "proxy").unwrap();
    assert!(
        proxy.state.as_ref().unwrap().terminated.is_some(),
        "the sidecar is stopped for good: {proxy:?}"
    );
    assert_eq!(proxy.restart_count, 0, "{proxy:?}");
    // It stays stopped: no restart after the back-off.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let status = run.pass().await;
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    let unit = run.unit_status("proxy").await;
    assert_eq!(unit.main_pid, 0, "{unit:?}");
    let proxy = init_container_status(&status, "proxy").unwrap();
    assert_eq!(proxy.restart_count, 0, "{proxy:?}");
    assert!(
        journal(&run, &["proxy"]).contains("term-ignored"),
        "it was asked to stop first"
    );
    run.finish().await;
}

#[tokio::test]
async fn sidecars_stop_after_the_app_container_on_deletion() {
    let context = TestContext::new("sidecars_deletion");
    let engine = Engine::new(None).await;
    let main = "trap 'echo main-term; sleep 1; echo main-exit; exit 0' TERM; \
                while :; do sleep 0.1; done";
    let proxy = "trap 'echo proxy-term; exit 0' TERM; while :; do sleep 0.1; done";
    let run = engine.run(pod(
        &context,
        "deletion",
        "Always",
        10,
        json!({
            "initContainers": [sidecar("proxy", proxy)],
            "containers": [shell("main", main)],
        }),
    ));
    run.running_pid(RESTART_DEADLINE, "main").await;
    // The traps are set once the shells ran their first line.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let units = [run.unit_name("main"), run.unit_name("proxy")];
    run.finish().await;
    let _ = Command::new("journalctl").arg("--sync").status();
    let mut journal = Command::new("journalctl");
    journal.args(["--no-pager", "-o", "cat"]);
    for unit in &units {
        journal.args(["-u", unit.as_str()]);
    }
    let lines = String::from_utf8_lossy(&journal.output().unwrap().stdout).into_owned();
    let at = |line: &str| {
        lines
            .find(line)
            .unwrap_or_else(|| panic!("{line} missing in {units:?}:\n{lines}"))
    };
    assert!(at("main-term") < at("main-exit"), "{lines}");
    assert!(
        at("main-exit") < at("proxy-term"),
        "the sidecar got SIGTERM only after main ended:\n{lines}"
    );
}

#[tokio::test]
async fn sidecars_attack_a_sidecar_ignoring_sigterm_does_not_outlive_its_pod() {
    let context = TestContext::new("sidecars_attack");
    let engine = Engine::new(None).await;
    let run = engine.run(pod(
        &context,
        "outlive",
        "Always",
        2,
        json!({
            "initContainers": [sidecar("proxy", IGNORES_TERM)],
            "containers": [shell("main", "exec sleep 600")],
        }),
    ));
    run.running_pid(RESTART_DEADLINE, "main").await;
    let proxy_pid = run.unit_status("proxy").await.main_pid;
    assert!(proxy_pid != 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = Instant::now();
    run.finish().await;
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "the grace bounds the stop: {:?}",
        began.elapsed()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{proxy_pid}")).exists(),
        "the sidecar's process is gone"
    );
}
