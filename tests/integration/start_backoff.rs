//! Start failures back off (issue 11, point 3), in the booted systemd: a container whose
//! unit fails to start — its vendor unit's `ExecStartPre=` exits 3, so the main process
//! never runs — goes through CrashLoopBackOff on the kubelet's schedule (10 s, 20 s,
//! 40 s, …) instead of being started again at once, and a healthy pod next to it keeps
//! every line it logged. Before the fix such a unit was started again on every pass
//! (apache2: 1712 starts in 30 s), which rotated the journal away.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, INSTALL_DEADLINE, container_status, unique_uid};
use crate::support::packages::{DebFile, DebServer, Purge, build_deb};
use crate::support::wait_for;

/// The test package: a program that would keep running, and a unit whose
/// `ExecStartPre=` always fails.
const PACKAGE: &str = "systemk-itest-start-backoff";

/// How long both pods run side by side. The failing unit starts at 0 s and, backed off,
/// at 10 s, 30 s and 70 s; the next start would be at 150 s. Measured duration, not a
/// wait for a condition.
const WINDOW: Duration = Duration::from_secs(100);

/// Starts the back-off allows in [`WINDOW`]: the first and restarts at 10, 30, 70 s.
const ALLOWED_STARTS: usize = 4;

/// How often the test runs a reconcile pass of each pod: far more often than events
/// would, so a unit restarted on every pass would be started hundreds of times.
const PASS_EVERY: Duration = Duration::from_millis(250);

fn pod(context: &TestContext, name: &str, containers: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": context.namespace(), "uid": unique_uid() },
        "spec": {
            "securityContext": { "runAsNonRoot": true, "runAsUser": 65_534 },
            "containers": containers,
        },
    }))
    .unwrap()
}

/// The messages of `unit`'s journal, as `journalctl -o json` gives them.
fn journal(unit: &str) -> Vec<Value> {
    let out = Command::new("journalctl")
        .args(["--no-pager", "-o", "json", "-u", unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn message(entry: &Value) -> &str {
    entry.get("MESSAGE").and_then(Value::as_str).unwrap_or("")
}

/// How many times systemd ran the failing unit: one `ExecStartPre=` line per start.
fn starts(unit: &str) -> usize {
    journal(unit)
        .iter()
        .filter(|entry| message(entry) == "preparing the start")
        .count()
}

fn waiting(status: &PodStatus, container: &str) -> Option<(String, String)> {
    let waiting = container_status(status, container)?
        .state
        .as_ref()?
        .waiting
        .clone()?;
    Some((waiting.reason?, waiting.message.unwrap_or_default()))
}

#[tokio::test]
async fn a_unit_that_fails_to_start_backs_off_and_healthy_logs_survive() {
    let context = TestContext::new("start_backoff");
    let _purge = Purge(vec![PACKAGE]);
    let build = tempfile::tempdir().unwrap();
    let program = format!("/usr/bin/{PACKAGE}");
    let unit_text = format!(
        "[Service]\nExecStartPre=/bin/sh -c \"echo preparing the start; exit 3\"\nExecStart={program}\n"
    );
    let deb = build_deb(
        build.path(),
        PACKAGE,
        None,
        &[
            DebFile {
                path: &program,
                content: "#!/bin/sh\nsleep infinity & wait\n",
                mode: 0o755,
            },
            DebFile {
                path: &format!("/usr/lib/systemd/system/{PACKAGE}.service"),
                content: &unit_text,
                mode: 0o644,
            },
        ],
    );
    let (server, image) = DebServer::pinned(PACKAGE, deb).await;
    let engine = Engine::new(Some(server.ca_pem())).await;
    let healthy = engine.run(pod(
        &context,
        "healthy",
        json!([{
            "name": "main", "image": "/bin/sh",
            "command": ["/bin/sh", "-c",
                "i=0; while :; do i=$((i+1)); echo healthy-line-$i; sleep 1; done"],
        }]),
    ));
    let failing = engine.run(pod(
        &context,
        "failing",
        json!([{ "name": "main", "image": image }]),
    ));
    let failing_unit = failing.unit_name("main");
    let healthy_unit = healthy.unit_name("main");

    healthy.running_pid(DEADLINE, "main").await;
    failing
        .until(INSTALL_DEADLINE, "the first failed start", |status| {
            let (reason, _) = waiting(status, "main")?;
            (reason == "CrashLoopBackOff").then_some(())
        })
        .await;

    // Both pods side by side, with a pass of each every PASS_EVERY.
    let began = Instant::now();
    let mut messages = BTreeSet::new();
    let mut last = None;
    while began.elapsed() < WINDOW {
        healthy.pass().await;
        let status = failing.pass().await;
        let container = container_status(&status, "main").unwrap().clone();
        if let Some(terminated) = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.clone())
        {
            messages.insert(terminated.message.unwrap_or_default());
        }
        last = Some((status, container));
        tokio::time::sleep(PASS_EVERY).await;
    }
    let (status, container) = last.unwrap();

    // Started only as often as the back-off allows, and each start counted.
    let expected_restarts = i32::try_from(ALLOWED_STARTS - 1).unwrap();
    assert_eq!(container.restart_count, expected_restarts, "{container:#?}");
    let started = wait_for(DEADLINE, "the journal to show every start", || async {
        let n = starts(failing_unit.as_str());
        (n >= ALLOWED_STARTS).then_some(n)
    })
    .await;
    assert_eq!(started, ALLOWED_STARTS, "systemd ran the unit this often");

    // CrashLoopBackOff with the kubelet's message; the last state says why.
    let (reason, back_off) = waiting(&status, "main").expect("main waits");
    assert_eq!(reason, "CrashLoopBackOff");
    assert!(
        back_off.starts_with("back-off 1m20s restarting failed container=main pod=failing_"),
        "{back_off}"
    );
    let terminated = container
        .last_state
        .and_then(|s| s.terminated)
        .expect("a last state");
    assert_eq!(terminated.reason.as_deref(), Some("StartError"));
    assert_eq!(terminated.exit_code, 3);
    let text = terminated.message.unwrap_or_default();
    assert!(
        text.starts_with("ExecStartPre=/bin/sh exited with status 3 before the container's program ran (systemd Result=exit-code)"),
        "{text}"
    );
    // The journal of a failed start is read right after it: at least one of the four
    // reads saw what the start printed and what systemd said about it.
    assert!(
        messages.iter().any(|m| m.contains("; last log lines:\n")
            && m.contains("preparing the start")
            && m.contains("status=3")),
        "{messages:#?}"
    );

    // Every line the healthy pod printed is still in the journal, in order.
    let numbers: Vec<u64> = journal(healthy_unit.as_str())
        .iter()
        .filter_map(|entry| message(entry).strip_prefix("healthy-line-")?.parse().ok())
        .collect();
    let printed = numbers.last().copied().unwrap_or(0);
    assert!(printed >= WINDOW.as_secs() - 10, "only {printed} lines");
    assert_eq!(numbers, (1..=printed).collect::<Vec<_>>(), "lines lost");
    let healthy_status = healthy.pass().await;
    assert_eq!(
        container_status(&healthy_status, "main")
            .unwrap()
            .restart_count,
        0
    );

    failing.finish().await;
    healthy.finish().await;
}
