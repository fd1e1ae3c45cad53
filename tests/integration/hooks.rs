//! Lifecycle hooks (issue 12, point 3) through the real engine in the booted systemd:
//! `postStart` runs in the container's context right after its start, and the pass that
//! started it shows it running only once the hook returned; a failing `postStart` ends the
//! container (`FailedPostStartHook`, `Killing`) and it restarts, counted; `preStop` runs
//! before the stop signal on deletion, in the container's context. Attack: a hook is as
//! confined as its container — it cannot write the host's `/etc`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, container_status, unique_uid};

/// Long enough for a failed hook's kill, the first restart back-off (10 s) and the new run.
const RESTART_DEADLINE: Duration = Duration::from_secs(60);

fn pod(context: &TestContext, name: &str, policy: &str, container: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            "restartPolicy": policy,
            "terminationGracePeriodSeconds": 5,
            "containers": [container],
        },
    }))
    .unwrap()
}

fn shell(script: &str, lifecycle: Value) -> Value {
    json!({
        "name": "main", "image": "/bin/sh", "command": ["/bin/sh", "-c", script],
        "lifecycle": lifecycle,
    })
}

#[tokio::test]
async fn hooks_post_start_runs_in_the_container_before_it_shows_running() {
    let context = TestContext::new("hooks_post_start");
    let engine = Engine::new(None).await;
    // The hook writes into the container's own /run (a per-container directory on the
    // host) after a pause the pass has to wait out.
    let hook = json!({"postStart": {"exec": {"command": ["/bin/sh", "-c", "sleep 2; echo warm > /run/post-start"]}}});
    let container = shell("exec sleep 600", hook);
    let run = engine.run(pod(&context, "post", "Always", container));
    let started = Instant::now();
    let status = run.pass().await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the pass waited for the hook"
    );
    let main = container_status(&status, "main").unwrap();
    assert!(main.state.as_ref().unwrap().running.is_some(), "{main:?}");
    let written = std::fs::read_to_string(run.run_dir("main").join("post-start")).unwrap();
    assert_eq!(written.trim(), "warm");
    run.finish().await;
}

#[tokio::test]
async fn hooks_failed_post_start_ends_the_container_which_restarts() {
    let context = TestContext::new("hooks_post_start_fails");
    let engine = Engine::new(None).await;
    let hook = json!({"postStart": {"exec": {"command": ["/bin/sh", "-c", "echo cannot warm up; exit 7"]}}});
    let run = engine.run(pod(
        &context,
        "postfail",
        "Always",
        shell("exec sleep 600", hook),
    ));
    run.pass().await;
    let told = run.events();
    let failed = told
        .iter()
        .find(|(reason, _)| *reason == "FailedPostStartHook")
        .unwrap_or_else(|| panic!("{told:?}"));
    assert!(
        failed.1.starts_with(
            "Exec lifecycle hook ([/bin/sh -c echo cannot warm up; exit 7]) for Container \"main\""
        ) && failed
            .1
            .ends_with("exited with 7: , message: \"cannot warm up\\n\""),
        "{}",
        failed.1
    );
    assert!(
        told.contains(&("Killing", "FailedPostStartHook".to_owned())),
        "{told:?}"
    );
    run.until(RESTART_DEADLINE, "main restarted", |status| {
        let main = container_status(status, "main")?;
        (main.restart_count >= 1).then_some(())
    })
    .await;
    run.finish().await;
}

#[tokio::test]
async fn hooks_pre_stop_runs_before_the_stop_signal() {
    let context = TestContext::new("hooks_pre_stop");
    let engine = Engine::new(None).await;
    // The main process tells the journal what reached it; the hook signals it through
    // the pid file it left in the container's private /tmp, which the hook shares. `$$$$`
    // is the shell's `$$`: Kubernetes reduces `$$` to `$` in a container's command.
    let script = "trap 'echo pre-stop-reached' USR1; trap 'echo term-reached; exit 0' TERM; \
                  echo $$$$ > /tmp/main.pid; while :; do sleep 0.1; done";
    let hook = json!({"preStop": {"exec": {"command": ["/bin/sh", "-c", "kill -USR1 $(cat /tmp/main.pid) || exit 9; sleep 1"]}}});
    let run = engine.run(pod(&context, "prestop", "Always", shell(script, hook)));
    run.until(DEADLINE, "main running", |status| {
        container_status(status, "main")?
            .state
            .as_ref()?
            .running
            .as_ref()?;
        Some(())
    })
    .await;
    // The pid file exists once the shell ran its first line.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unit = run.unit_name("main");
    run.finish().await;
    let _ = std::process::Command::new("journalctl")
        .arg("--sync")
        .status();
    let journal = std::process::Command::new("journalctl")
        .args(["--no-pager", "-o", "cat", "-u", unit.as_str()])
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&journal.stdout);
    let pre = lines
        .find("pre-stop-reached")
        .unwrap_or_else(|| panic!("{lines}"));
    let term = lines
        .find("term-reached")
        .unwrap_or_else(|| panic!("{lines}"));
    assert!(pre < term, "{lines}");
}

#[tokio::test]
async fn hooks_attack_a_hook_cannot_write_the_hosts_etc() {
    let context = TestContext::new("hooks_attack");
    let engine = Engine::new(None).await;
    let target = format!("/etc/systemk-hook-escape-{}", std::process::id());
    let hook = json!({"postStart": {"exec": {"command": ["/bin/touch", target]}}});
    let run = engine.run(pod(
        &context,
        "escape",
        "Never",
        shell("exec sleep 600", hook),
    ));
    run.pass().await;
    let told = run.events();
    assert!(
        told.iter()
            .any(|(reason, message)| *reason == "FailedPostStartHook"
                && message.contains("Read-only file system")),
        "{told:?}"
    );
    assert!(!std::path::Path::new(&target).exists());
    run.finish().await;
}
