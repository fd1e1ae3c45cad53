//! Termination messages (issue 12, point 4) through the real engine in the booted
//! systemd: what a container writes to `terminationMessagePath` becomes its
//! `state.terminated.message`, and after a restart its `lastState`'s; the file is empty
//! at each start; `FallbackToLogsOnError` takes the end of that run's log. Attacks: paths
//! that escape or point into the kernel's interfaces are refused, and a path over a host
//! file (`/etc/shadow`) or a symlink the container plants never puts the host file into
//! the status nor changes it.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStateTerminated, PodStatus};
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, PodRun, container_status, unique_uid};

/// Long enough for the first restart back-off (10 s) and the runs around it.
const RESTART_DEADLINE: Duration = Duration::from_secs(60);

fn pod(context: &TestContext, name: &str, policy: &str, container: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {"restartPolicy": policy, "containers": [container]},
    })
}

fn shell(script: &str) -> Value {
    json!({"name": "main", "image": "/bin/sh", "command": ["/bin/sh", "-c", script]})
}

/// Passes until `main` is terminated; its terminated state.
async fn terminated(run: &PodRun) -> ContainerStateTerminated {
    run.until(DEADLINE, "main to terminate", |status| {
        container_status(status, "main")?
            .state
            .as_ref()?
            .terminated
            .clone()
    })
    .await
}

fn message(terminated: &ContainerStateTerminated) -> String {
    terminated.message.clone().unwrap_or_default()
}

#[tokio::test]
async fn termination_message_written_to_the_default_path_is_the_status_message() {
    let context = TestContext::new("termination_message_file");
    let engine = Engine::new(None).await;
    let script = "printf 'disk full on /data' > /dev/termination-log; exit 1";
    let spec = pod(&context, "message", "Never", shell(script));
    let run = engine.run(serde_json::from_value(spec).unwrap());
    let ended = terminated(&run).await;
    assert_eq!(ended.exit_code, 1);
    assert_eq!(ended.reason.as_deref(), Some("Error"));
    assert_eq!(message(&ended), "disk full on /data");
    run.finish().await;
}

#[tokio::test]
async fn termination_message_falls_back_to_the_runs_log_and_only_on_error() {
    let context = TestContext::new("termination_message_logs");
    let engine = Engine::new(None).await;
    let fallback = |script: &str| {
        let mut container = shell(script);
        container["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
        container
    };
    // 100 lines: the last 80 are kept, then their last 2048 bytes.
    let failing = fallback("for i in $(seq 1 100); do echo \"line $i\"; done; exit 3");
    let run = engine.run(serde_json::from_value(pod(&context, "logs", "Never", failing)).unwrap());
    let ended = terminated(&run).await;
    let text = message(&ended);
    assert!(text.ends_with("line 99\nline 100\n"), "{text:?}");
    assert!(!text.contains("line 20\n"), "{text:?}");
    assert!(text.len() <= 2048);
    run.finish().await;

    let succeeding = fallback("echo all good; exit 0");
    let spec = pod(&context, "logs-ok", "Never", succeeding);
    let run = engine.run(serde_json::from_value(spec).unwrap());
    let ended = terminated(&run).await;
    assert_eq!(ended.exit_code, 0);
    assert_eq!(ended.message, None, "a run that succeeded takes no log");
    run.finish().await;

    // The file wins over the log.
    let both = fallback("echo noise; printf from-file > /dev/termination-log; exit 2");
    let run =
        engine.run(serde_json::from_value(pod(&context, "logs-file", "Never", both)).unwrap());
    assert_eq!(message(&terminated(&run).await), "from-file");
    run.finish().await;
}

#[tokio::test]
async fn termination_message_of_the_run_before_is_last_state_and_the_file_starts_empty() {
    let context = TestContext::new("termination_message_restart");
    let engine = Engine::new(None).await;
    // Each run says what it found in the file, then exits 1: the second run must find it
    // empty, and its message is in state while the first's is in lastState.
    let script = "n=$(wc -c < /dev/termination-log); \
                  printf \"run found $n bytes\" > /dev/termination-log; exit 1";
    let mut container = shell(script);
    container["terminationMessagePath"] = json!("/dev/termination-log");
    let spec = pod(&context, "restart", "OnFailure", container);
    let run = engine.run(serde_json::from_value(spec).unwrap());
    let status: PodStatus = run
        .until(RESTART_DEADLINE, "the second run to end", |status| {
            let main = container_status(status, "main")?;
            (main.restart_count >= 1 && main.state.as_ref()?.running.is_none())
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
    assert_eq!(message(last), "run found 0 bytes");
    run.finish().await;
}

#[tokio::test]
async fn attack_termination_message_paths_that_escape_or_reach_the_kernel_are_refused() {
    let context = TestContext::new("termination_message_attack_paths");
    let engine = Engine::new(None).await;
    for (name, path) in [
        ("dotdot", "../../etc/shadow"),
        ("relative", "termination-log"),
        ("proc", "/proc/self/attr/current"),
        ("sys", "/sys/kernel/uevent_helper"),
        ("missing", "/etc/systemk-itest-termination-created"),
        ("root", "/"),
    ] {
        let mut container = shell("sleep infinity");
        container["terminationMessagePath"] = json!(path);
        let spec = pod(&context, &format!("attack-{name}"), "Never", container);
        let run = engine.run(serde_json::from_value(spec).unwrap());
        let waiting = run
            .until(DEADLINE, "main to be refused", |status| {
                let waiting = container_status(status, "main")?
                    .state
                    .as_ref()?
                    .waiting
                    .clone()?;
                (waiting.reason.as_deref() != Some("ContainerCreating")).then_some(waiting)
            })
            .await;
        assert_eq!(
            waiting.reason.as_deref(),
            Some("CreateContainerConfigError"),
            "{path}: {waiting:?}"
        );
        assert!(
            waiting
                .message
                .unwrap_or_default()
                .contains("terminationMessagePath"),
            "{path}"
        );
        assert!(!std::path::Path::new("/etc/systemk-itest-termination-created").exists());
        run.finish().await;
    }
}

#[tokio::test]
async fn attack_a_host_file_path_or_planted_symlink_never_reaches_the_status() {
    let context = TestContext::new("termination_message_attack_host");
    let engine = Engine::new(None).await;
    let shadow_before = std::fs::read("/etc/shadow").unwrap();
    // The path names a host file: the container sees its own empty file there, not the
    // host's; what it writes stays in its own file.
    let mut over_shadow = shell("head -c 100 /etc/shadow > /tmp/seen; cat /tmp/seen >&2; exit 1");
    over_shadow["terminationMessagePath"] = json!("/etc/shadow");
    over_shadow["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
    let spec = pod(&context, "over-shadow", "Never", over_shadow);
    let run = engine.run(serde_json::from_value(spec).unwrap());
    let ended = terminated(&run).await;
    assert!(!message(&ended).contains("root:"), "{:?}", ended.message);
    run.finish().await;
    // The container tries to swap its file for a symlink to a host file: the bind mount
    // point cannot be removed, and systemk never follows a link.
    let swap = "rm -f /dev/termination-log; ln -sf /etc/shadow /dev/termination-log; \
                ln -sf /etc/shadow /tmp/link; exit 1";
    let run =
        engine.run(serde_json::from_value(pod(&context, "swap", "Never", shell(swap))).unwrap());
    let ended = terminated(&run).await;
    assert!(!message(&ended).contains("root:"), "{:?}", ended.message);
    run.finish().await;
    assert_eq!(std::fs::read("/etc/shadow").unwrap(), shadow_before);
}
