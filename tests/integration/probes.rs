//! Probes (issue 12, point 1) through the real engine in the booted systemd, against
//! real programs: Debian's `python3 -m http.server` for `httpGet` and `tcpSocket`, shell
//! commands for `exec`. Readiness drives `ready` and `ContainersReady`; the startup probe
//! gates it and sets `started`; a failed liveness probe stops the container, which
//! restarts (counted) after its back-off. Exec probes run in the container's context:
//! its private `/tmp`, its user. Attacks: an exec probe does not see the host's `/tmp`,
//! and does not run as root when the container does not.

use std::net::TcpListener;
use std::time::Duration;

use k8s_openapi::api::core::v1::PodStatus;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, PodRun, container_status, unique_uid};

/// Long enough for a liveness kill, the first restart back-off (10 s) and the new run.
const RESTART_DEADLINE: Duration = Duration::from_secs(60);

fn pod(context: &TestContext, name: &str, container: Value) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 5},
    }))
    .unwrap()
}

fn shell(script: &str, extra: Value) -> Value {
    let mut container =
        json!({"name": "main", "image": "/bin/sh", "command": ["/bin/sh", "-c", script]});
    container
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    container
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn condition(status: &PodStatus, type_: &str) -> String {
    let conditions = status.conditions.as_ref().expect("conditions");
    let found = conditions.iter().find(|c| c.type_ == type_);
    found.map(|c| c.status.clone()).unwrap_or_default()
}

/// `main`'s (ready, started) once it runs.
fn running_flags(status: &PodStatus) -> Option<(bool, bool)> {
    let main = container_status(status, "main")?;
    main.state.as_ref()?.running.as_ref()?;
    Some((main.ready, main.started.unwrap_or(false)))
}

async fn ready(run: &PodRun, deadline: Duration) -> PodStatus {
    run.until(deadline, "main to be ready", |status| {
        container_status(status, "main")
            .filter(|main| main.ready)
            .map(|_| status.clone())
    })
    .await
}

/// Runs passes for `period` and checks each status with `check`.
async fn stays(run: &PodRun, period: Duration, check: impl Fn(&PodStatus)) {
    let until = tokio::time::Instant::now() + period;
    while tokio::time::Instant::now() < until {
        check(&run.pass().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn probes_http_readiness_on_a_real_server_drives_ready_and_containers_ready() {
    let context = TestContext::new("probes_http");
    let engine = Engine::new(None).await;
    let port = free_port();
    let server = json!({
        "name": "main", "image": "/usr/bin/python3",
        "command": ["/usr/bin/python3", "-m", "http.server", port.to_string(), "--directory", "/usr/share/doc/python3"],
        "ports": [{"name": "web", "containerPort": port}],
        "readinessProbe": {"httpGet": {"port": "web", "path": "/copyright"}, "periodSeconds": 1},
    });
    let run = engine.run(pod(&context, "web", server));
    let status = ready(&run, DEADLINE).await;
    assert_eq!(condition(&status, "ContainersReady"), "True");
    assert_eq!(condition(&status, "Ready"), "True");
    run.finish().await;

    // A path the server answers 404 for: running, never ready.
    let port = free_port();
    let missing = json!({
        "name": "main", "image": "/usr/bin/python3",
        "command": ["/usr/bin/python3", "-m", "http.server", port.to_string(), "--directory", "/usr/share/doc/python3"],
        "readinessProbe": {"httpGet": {"port": port, "path": "/nothing-here"}, "periodSeconds": 1},
    });
    let run = engine.run(pod(&context, "web404", missing));
    run.until(DEADLINE, "main to run", running_flags).await;
    stays(&run, Duration::from_secs(4), |status| {
        assert_eq!(running_flags(status).map(|f| f.0), Some(false));
        assert_eq!(condition(status, "ContainersReady"), "False");
    })
    .await;
    run.finish().await;
}

#[tokio::test]
async fn probes_tcp_readiness_waits_for_the_listener() {
    let context = TestContext::new("probes_tcp");
    let engine = Engine::new(None).await;
    let port = free_port();
    let script = format!("sleep 3; exec /usr/bin/python3 -m http.server {port}");
    let container = shell(
        &script,
        json!({"readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1}}),
    );
    let run = engine.run(pod(&context, "tcp", container));
    let flags = run.until(DEADLINE, "main to run", running_flags).await;
    assert_eq!(flags, (false, true), "not ready before its first success");
    ready(&run, DEADLINE).await;
    run.finish().await;
}

#[tokio::test]
async fn probes_exec_runs_in_the_containers_tmp_and_as_its_user() {
    let context = TestContext::new("probes_exec");
    let engine = Engine::new(None).await;
    // The host's /tmp has the file; the container's private /tmp gets it later.
    let host_only = format!("/tmp/probe-host-{}", std::process::id());
    std::fs::write(&host_only, "host").unwrap();
    let script =
        format!("sleep 3; touch /tmp/made-inside; test ! -e {host_only} && exec sleep 600");
    let check =
        format!("test -e /tmp/made-inside && test ! -e {host_only} && test $(id -u) = 65534");
    let container = shell(
        &script,
        json!({
            "securityContext": {"runAsUser": 65534, "runAsGroup": 65534},
            "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", check]}, "periodSeconds": 1},
        }),
    );
    let run = engine.run(pod(&context, "exec", container));
    let flags = run.until(DEADLINE, "main to run", running_flags).await;
    assert!(!flags.0, "not ready before its first success");
    ready(&run, DEADLINE).await;
    run.finish().await;
    std::fs::remove_file(&host_only).unwrap();
}

#[tokio::test]
async fn probes_startup_gates_readiness_and_sets_started() {
    let context = TestContext::new("probes_startup");
    let engine = Engine::new(None).await;
    let container = shell(
        "sleep 4; touch /tmp/started; exec sleep 600",
        json!({
            "startupProbe": {"exec": {"command": ["test", "-e", "/tmp/started"]}, "periodSeconds": 1, "failureThreshold": 30},
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
        }),
    );
    let run = engine.run(pod(&context, "startup", container));
    let flags = run.until(DEADLINE, "main to run", running_flags).await;
    assert_eq!(
        flags,
        (false, false),
        "neither started nor ready before the probe"
    );
    let status = ready(&run, DEADLINE).await;
    assert_eq!(running_flags(&status), Some((true, true)));
    run.finish().await;
}

#[tokio::test]
async fn probes_failed_liveness_restarts_the_container_counted() {
    let context = TestContext::new("probes_liveness");
    let engine = Engine::new(None).await;
    // The first run never creates /tmp/alive; each run has a fresh private /tmp, so the
    // second does (marked through the pod's emptyDir, which survives restarts).
    let script = "if [ -e /var/tmp/data/ran ]; then touch /tmp/alive; fi; touch /var/tmp/data/ran; exec sleep 600";
    let mut container = shell(
        script,
        json!({
            "volumeMounts": [{"name": "data", "mountPath": "/var/tmp/data"}],
            "livenessProbe": {"exec": {"command": ["test", "-e", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2},
        }),
    );
    container["livenessProbe"]["terminationGracePeriodSeconds"] = json!(2);
    let mut spec = pod(&context, "liveness", container);
    spec.spec.as_mut().unwrap().volumes = Some(vec![
        serde_json::from_value(json!({"name": "data", "emptyDir": {}})).unwrap(),
    ]);
    spec.spec.as_mut().unwrap().restart_policy = Some("OnFailure".into());
    let run = engine.run(spec);
    let status = run
        .until(RESTART_DEADLINE, "main to run again", |status| {
            let main = container_status(status, "main")?;
            (main.restart_count >= 1 && main.state.as_ref()?.running.is_some())
                .then(|| status.clone())
        })
        .await;
    let main = container_status(&status, "main").unwrap();
    let last = main
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(last.exit_code, 143, "stopped with SIGTERM: {last:?}");
    // The second run is alive: no more restarts.
    stays(&run, Duration::from_secs(4), |status| {
        assert_eq!(container_status(status, "main").unwrap().restart_count, 1);
    })
    .await;
    run.finish().await;
}
