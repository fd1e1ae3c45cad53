//! Static pods end to end (issue 3): the real `systemk` binary runs a manifest directory in
//! the sandbox's systemd, and the tests watch what it does through systemd, the unit
//! directory and the pods' status files. Path images only (`/bin/sh`, `/bin/sleep`), except
//! one package that does not exist. Each test removes its units at the end; two tests wait
//! through one 10 s restart back-off each.

pub mod machine;
mod shutdown;
mod slices;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use systemk::pod::MAX_CONCURRENT_PASSES;
use systemk::unit::UnitName;

use crate::support::{TestContext, wait_for};
use machine::{Machine, UNIT_DIR, WANTS_DIR, container, phase, systemctl_show, waiting_reason};

/// How soon a new or changed pod must run: the pod startup SLO is 5 s (issue 3 asks for
/// "within a couple of seconds").
const START: Duration = Duration::from_secs(5);

/// For things that take a grace period or a restart back-off (10 s) first.
const SLOW: Duration = Duration::from_secs(25);

/// A pod with one container that sleeps forever.
fn sleeper(pod: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {{ns}}\nspec:\n  \
         containers:\n    - name: main\n      image: /bin/sleep\n      args: [\"infinity\"]\n"
    )
}

/// A pod with two long-running containers; `second_args` are the second one's arguments.
fn duo(second_args: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: duo
  namespace: {{ns}}
spec:
  containers:
    - name: first
      image: /bin/sleep
      args: ["infinity"]
    - name: second
      image: /bin/sh
      args: {second_args}
"#
    )
}

fn condition_true(pod: &Pod, kind: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|condition| condition.type_ == kind && condition.status == "True")
}

fn restart_count(pod: &Pod, name: &str) -> i32 {
    container(pod, name).map_or(-1, |c| c.restart_count)
}

#[tokio::test]
async fn new_manifests_start_their_pods() {
    let context = TestContext::new("new_manifests_start_their_pods");
    let machine = Machine::new(&context).await;
    machine.write_manifest("solo.yaml", &sleeper("solo"));
    let agent = machine.start_agent();
    machine
        .wait_running(START, &machine.unit("solo", "main"))
        .await;

    // Seen through inotify while the agent runs.
    machine.write_manifest("duo.yaml", &duo(r#"["-c", "exec sleep infinity"]"#));
    machine
        .wait_running(START, &machine.unit("duo", "first"))
        .await;
    machine
        .wait_running(START, &machine.unit("duo", "second"))
        .await;
    let duo = machine
        .wait_pod(START, "duo", "Running and Ready", |pod| {
            phase(pod) == "Running" && condition_true(pod, "Ready")
        })
        .await;
    for name in ["first", "second"] {
        let status = container(&duo, name).unwrap();
        assert!(status.ready, "{status:?}");
        assert!(
            status.state.as_ref().unwrap().running.is_some(),
            "{status:?}"
        );
        assert_eq!(status.restart_count, 0);
        assert!(status.image_id.starts_with("sha256:"), "{status:?}");
        let unit = machine.unit("duo", name);
        assert_eq!(
            status.container_id.as_deref(),
            Some(format!("systemd://{unit}").as_str())
        );
    }
    let pod_status = duo.status.as_ref().unwrap();
    assert!(pod_status.start_time.is_some() && pod_status.host_ip.is_some());
    assert_eq!(pod_status.qos_class.as_deref(), Some("BestEffort"));

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn a_changed_container_restarts_alone() {
    let context = TestContext::new("a_changed_container_restarts_alone");
    let machine = Machine::new(&context).await;
    machine.write_manifest("duo.yaml", &duo(r#"["-c", "exec sleep 1000"]"#));
    let agent = machine.start_agent();
    let (first, second) = (machine.unit("duo", "first"), machine.unit("duo", "second"));
    let first_pid = machine.wait_running(START, &first).await;
    let second_pid = machine.wait_running(START, &second).await;

    machine.write_manifest("duo.yaml", &duo(r#"["-c", "exec sleep 2000"]"#));
    let restarted = machine
        .wait_unit(START, &second, "running with a new PID", |status| {
            status.sub_state == "running" && status.main_pid != second_pid && status.main_pid != 0
        })
        .await;
    // The shell is the main process until it has run its `exec`.
    let cmdline = wait_for(START, "the new sleep to run", || async {
        let cmdline = fs::read(format!("/proc/{}/cmdline", restarted.main_pid)).ok()?;
        (!cmdline.starts_with(b"/bin/sh\0")).then_some(cmdline)
    })
    .await;
    assert_eq!(cmdline, b"sleep\x002000\x00");
    let first_now = machine.status(&first).await;
    assert_eq!(
        (first_now.main_pid, first_now.sub_state.as_str()),
        (first_pid, "running"),
        "the unchanged container was touched"
    );
    let unit_file = fs::read_to_string(Path::new(UNIT_DIR).join(second.as_str())).unwrap();
    assert!(unit_file.contains("2000"), "{unit_file}");

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn a_removed_manifest_stops_its_pod_within_the_grace_period() {
    let context = TestContext::new("a_removed_manifest_stops_its_pod");
    let machine = Machine::new(&context).await;
    let host = machine.host_dir();
    let host = host.to_str().unwrap();
    // The shell survives SIGTERM (the trap only notes it): only SIGKILL after the grace
    // period ends it.
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: stubborn
  namespace: {ns}
spec:
  terminationGracePeriodSeconds: 2
  volumes:
    - name: out
      hostPath:
        path: {host}
        type: Directory
  containers:
    - name: main
      image: /bin/sh
      args:
        - -c
        - "trap 'echo TERM >> {host}/trapped' TERM; touch {host}/ready; while :; do sleep 0.1; done"
      volumeMounts:
        - name: out
          mountPath: {host}
"#
    .replace("{host}", host);
    machine.write_manifest("stubborn.yaml", &manifest);
    let agent = machine.start_agent();
    let unit = machine.unit("stubborn", "main");
    machine.wait_running(START, &unit).await;
    let ready = machine.host_dir().join("ready");
    crate::support::wait_for(START, "the trap to be set", || async {
        ready.exists().then_some(())
    })
    .await;
    let pod_dir = machine.wait_pod_dir(START, "stubborn").await;
    assert!(Path::new(WANTS_DIR).join(unit.as_str()).exists());

    machine.remove_manifest("stubborn.yaml");
    let removed_at = Instant::now();
    crate::support::wait_for(
        Duration::from_secs(10),
        "the unit to be removed",
        || async { machine.is_gone(&unit).await.then_some(()) },
    )
    .await;
    let took = removed_at.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "stopped after {took:?}: the grace period of 2 s was not given"
    );
    let trapped = fs::read_to_string(machine.host_dir().join("trapped")).unwrap();
    assert!(trapped.contains("TERM"), "{trapped:?}");
    assert!(!Path::new(WANTS_DIR).join(unit.as_str()).exists());
    crate::support::wait_for(START, "the pod directory to be removed", || async {
        (!pod_dir.exists()).then_some(())
    })
    .await;
    assert!(
        machine.host_dir().join("trapped").exists(),
        "hostPath volumes are never removed"
    );

    agent.terminate().await;
    let removals = machine.log().matches("pod removed").count();
    assert_eq!(removals, 1, "the pod was cleaned up {removals} times");
    machine.clean_up().await;
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_app() {
    let context = TestContext::new("init_containers_run_in_order");
    let machine = Machine::new(&context).await;
    let step = |name: &str, then: &str| {
        format!(
            "[\"-c\", \"echo {name} $(date +%s%N) >> /tmp/shared/order; {then}\"]\n      \
             volumeMounts: [{{name: shared, mountPath: /tmp/shared}}]"
        )
    };
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ordered\n  namespace: {{ns}}\nspec:\n  \
         volumes:\n    - name: shared\n      emptyDir: {{}}\n  initContainers:\n    \
         - name: one\n      image: /bin/sh\n      args: {}\n    \
         - name: two\n      image: /bin/sh\n      args: {}\n  containers:\n    \
         - name: app\n      image: /bin/sh\n      args: {}\n",
        step("one", "sleep 0.3"),
        step("two", "sleep 0.3"),
        step(
            "app",
            "cp /tmp/shared/order /tmp/shared/seen; exec sleep infinity"
        ),
    );
    machine.write_manifest("ordered.yaml", &manifest);
    let agent = machine.start_agent();
    let app = machine.unit("ordered", "app");
    machine.wait_running(START, &app).await;

    let pod_dir = machine.wait_pod_dir(START, "ordered").await;
    let seen = pod_dir.join("volumes/empty-dir/shared/seen");
    let seen = crate::support::wait_for(START, "the app to copy the order", || async {
        fs::read_to_string(&seen).ok()
    })
    .await;
    let lines: Vec<(&str, u128)> = seen
        .lines()
        .map(|line| {
            let (name, nanos) = line.split_once(' ').unwrap();
            (name, nanos.parse().unwrap())
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["one", "two", "app"], "{seen}");
    assert!(lines.windows(2).all(|pair| pair[0].1 < pair[1].1), "{seen}");

    let one = machine.status(&machine.unit("ordered", "one")).await;
    let two = machine.status(&machine.unit("ordered", "two")).await;
    let app_status = machine.status(&app).await;
    assert!(one.exec_main_exit_us > 0 && one.exec_main_exit_us <= two.exec_main_start_us);
    assert!(two.exec_main_exit_us > 0 && two.exec_main_exit_us <= app_status.exec_main_start_us);
    let pod = machine
        .wait_pod(START, "ordered", "Running and Initialized", |pod| {
            phase(pod) == "Running" && condition_true(pod, "Initialized")
        })
        .await;
    for init in ["one", "two"] {
        let terminated = container(&pod, init)
            .and_then(|c| c.state.as_ref()?.terminated.clone())
            .unwrap_or_else(|| panic!("{init} is not terminated: {pod:#?}"));
        assert_eq!(
            (terminated.exit_code, terminated.reason.as_deref()),
            (0, Some("Completed"))
        );
    }

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn a_failed_init_container_fails_the_pod_under_never() {
    let context = TestContext::new("a_failed_init_container_fails");
    let machine = Machine::new(&context).await;
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: doomed
  namespace: {ns}
spec:
  restartPolicy: Never
  initContainers:
    - name: broken
      image: /bin/sh
      args: ["-c", "exit 1"]
  containers:
    - name: app
      image: /bin/sleep
      args: ["infinity"]
"#;
    machine.write_manifest("doomed.yaml", manifest);
    let agent = machine.start_agent();
    let pod = machine
        .wait_pod(START, "doomed", "phase Failed", |pod| {
            phase(pod) == "Failed"
        })
        .await;
    let broken = container(&pod, "broken")
        .and_then(|c| c.state.as_ref()?.terminated.clone())
        .unwrap_or_else(|| panic!("the init container is not terminated: {pod:#?}"));
    assert_eq!(broken.exit_code, 1);
    assert!(!condition_true(&pod, "Initialized"));
    assert_eq!(
        restart_count(&pod, "broken"),
        0,
        "restartPolicy Never retries nothing"
    );
    let app = machine.status(&machine.unit("doomed", "app")).await;
    assert_eq!(app.exec_main_start_us, 0, "the app container ran: {app:?}");
    assert_eq!(waiting_reason(&pod, "app"), Some("PodInitializing"));

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn restart_policies_are_honoured() {
    let context = TestContext::new("restart_policies_are_honoured");
    let machine = Machine::new(&context).await;
    let exiting = |pod: &str, policy: &str, code: u8| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {{ns}}\nspec:\n  \
             restartPolicy: {policy}\n  containers:\n    - name: main\n      image: /bin/sh\n      \
             args: [\"-c\", \"exit {code}\"]\n"
        )
    };
    machine.write_manifest("never.yaml", &exiting("never", "Never", 0));
    machine.write_manifest("onfailure.yaml", &exiting("onfailure", "OnFailure", 1));
    machine.write_manifest("always.yaml", &exiting("always", "Always", 0));
    let agent = machine.start_agent();

    let never = machine
        .wait_pod(START, "never", "phase Succeeded", |pod| {
            phase(pod) == "Succeeded"
        })
        .await;
    let terminated = container(&never, "main")
        .and_then(|c| c.state.as_ref()?.terminated.clone())
        .unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (0, Some("Completed"))
    );
    let never_unit = machine.unit("never", "main");
    let never_run = machine.status(&never_unit).await;

    let backing_off = |pod: &Pod| waiting_reason(pod, "main") == Some("CrashLoopBackOff");
    let onfailure = machine
        .wait_pod(START, "onfailure", "CrashLoopBackOff", backing_off)
        .await;
    let last = container(&onfailure, "main")
        .and_then(|c| c.last_state.as_ref()?.terminated.clone())
        .unwrap_or_else(|| panic!("no last state: {onfailure:#?}"));
    assert_eq!(last.exit_code, 1);
    assert_eq!(restart_count(&onfailure, "main"), 0);
    let first_exit = machine
        .status(&machine.unit("onfailure", "main"))
        .await
        .exec_main_exit_us;
    machine
        .wait_pod(START, "always", "CrashLoopBackOff", backing_off)
        .await;

    let onfailure = machine
        .wait_pod(SLOW, "onfailure", "restartCount 1", |pod| {
            restart_count(pod, "main") >= 1
        })
        .await;
    assert_eq!(restart_count(&onfailure, "main"), 1);
    let second_start = machine
        .status(&machine.unit("onfailure", "main"))
        .await
        .exec_main_start_us;
    let waited = Duration::from_micros(second_start.saturating_sub(first_exit));
    assert!(
        waited >= Duration::from_millis(9500),
        "restarted after {waited:?}, before the 10 s back-off"
    );
    machine
        .wait_pod(START, "always", "restartCount 1", |pod| {
            restart_count(pod, "main") >= 1
        })
        .await;

    let never_now = machine.status(&never_unit).await;
    assert_eq!(never_now.exec_main_start_us, never_run.exec_main_start_us);
    let never = machine.pod("never").unwrap().1;
    assert_eq!(
        (phase(&never), restart_count(&never, "main")),
        ("Succeeded", 0)
    );

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn restarting_the_agent_leaves_pods_alone() {
    let context = TestContext::new("restarting_the_agent");
    let machine = Machine::new(&context).await;
    machine.write_manifest("duo.yaml", &duo(r#"["-c", "exec sleep infinity"]"#));
    machine.write_manifest("gone.yaml", &sleeper("gone"));
    let agent = machine.start_agent();
    let units = [machine.unit("duo", "first"), machine.unit("duo", "second")];
    let mut pids = Vec::new();
    for unit in &units {
        pids.push(machine.wait_running(START, unit).await);
    }
    let gone = machine.unit("gone", "main");
    machine.wait_running(START, &gone).await;
    machine
        .wait_pod(START, "duo", "Running", |pod| phase(pod) == "Running")
        .await;
    let gone_dir = machine.wait_pod_dir(START, "gone").await;

    agent.kill9();
    machine.remove_manifest("gone.yaml");
    let restarted_at = machine.log().len();
    let agent = machine.start_agent();
    crate::support::wait_for(START, "the removed pod's unit to go", || async {
        machine.is_gone(&gone).await.then_some(())
    })
    .await;
    crate::support::wait_for(START, "the removed pod's directory to go", || async {
        (!gone_dir.exists()).then_some(())
    })
    .await;
    machine
        .wait_for_log(START, restarted_at, 1, &["all pods are in sync"])
        .await;
    for (unit, pid) in units.iter().zip(&pids) {
        let status = machine.status(unit).await;
        assert_eq!(
            (status.main_pid, status.sub_state.as_str()),
            (*pid, "running")
        );
    }
    let duo = machine.pod("duo").unwrap().1;
    assert_eq!(phase(&duo), "Running");
    for name in ["first", "second"] {
        assert_eq!(restart_count(&duo, name), 0, "{duo:#?}");
        assert!(container(&duo, name).unwrap().ready);
    }

    agent.terminate().await;
    for (unit, pid) in units.iter().zip(&pids) {
        let status = machine.status(unit).await;
        assert_eq!(
            (status.main_pid, status.sub_state.as_str()),
            (*pid, "running"),
            "SIGTERM to systemk touched a pod"
        );
    }
    machine.clean_up().await;
}

/// The pod UID the unit file of `unit` was written for.
fn unit_pod_uid(unit: &UnitName) -> String {
    let text = fs::read_to_string(Path::new(UNIT_DIR).join(unit.as_str())).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("PodUID="))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_manifest_moved_to_another_file_replaces_its_pod_cleanly() {
    let context = TestContext::new("a_manifest_moved");
    let machine = Machine::new(&context).await;
    machine.write_manifest("before.yaml", &sleeper("moved"));
    let agent = machine.start_agent();
    let unit = machine.unit("moved", "main");
    let old_pid = machine.wait_running(START, &unit).await;
    let old_uid = unit_pod_uid(&unit);

    // Another file is another pod (its UID includes the file name) with the same name and
    // so the same unit: the old one must be gone before the new one writes it.
    machine.move_manifest("before.yaml", "after.yaml");
    let new_pid = crate::support::wait_for(SLOW, "the new pod's unit to run", || async {
        let status = machine.status(&unit).await;
        (status.sub_state == "running"
            && status.main_pid != old_pid
            && !unit_pod_uid(&unit).is_empty()
            && unit_pod_uid(&unit) != old_uid)
            .then_some(status.main_pid)
    })
    .await;
    machine
        .wait_pod(START, "moved", "Running", |pod| {
            phase(pod) == "Running" && pod.metadata.uid.as_deref() != Some(old_uid.as_str())
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        machine.status(&unit).await.main_pid,
        new_pid,
        "it kept restarting"
    );
    let failed_starts = machine.log().matches("starting a container failed").count();
    assert_eq!(failed_starts, 0, "{}", machine.log());

    agent.terminate().await;
    machine.clean_up().await;
}

/// More pods than the reconciler runs passes at once, each waiting for its image while an
/// admin's apt holds dpkg (installs run one at a time): a pod whose image is a path still
/// runs at once. Before, the waiting passes took every slot and it waited for them all.
#[tokio::test]
async fn pods_waiting_for_their_installs_hold_up_no_other_pod() {
    const PACKAGE: &str = "uptimed";
    let context = TestContext::new("waiting_installs_hold_up_nothing");
    crate::support::packages::assert_not_installed(&[PACKAGE]);
    let _purge = crate::support::packages::Purge(vec![PACKAGE]);
    let machine = Machine::new(&context).await;
    let admin = crate::support::packages::AdminHoldsLock::start();
    let waiting = MAX_CONCURRENT_PASSES + 2;
    for i in 0..waiting {
        let name = format!("installing-{i:02}");
        machine.write_manifest(
            &format!("{name}.yaml"),
            &sleeper(&name).replace("/bin/sleep", PACKAGE),
        );
    }
    let agent = machine.start_agent();
    machine
        .wait_for_log(SLOW, 0, 1, &["waiting for another package manager"])
        .await;
    machine
        .wait_for_log(SLOW, 0, MAX_CONCURRENT_PASSES, &["Pulling", PACKAGE])
        .await;

    machine.write_manifest("good.yaml", &sleeper("good"));
    machine
        .wait_running(START, &machine.unit("good", "main"))
        .await;
    let log = machine.log();
    assert!(
        !log.lines()
            .any(|line| line.contains("Pulled") && line.contains(PACKAGE))
            && !log.contains("cannot prepare a container"),
        "dpkg is still held: every install still waits\n{log}"
    );

    // Killed while dpkg is held: no install ever ran.
    drop(agent);
    drop(admin);
    crate::support::packages::assert_not_installed(&[PACKAGE]);
    machine.clean_up().await;
}

#[tokio::test]
async fn a_broken_pod_never_affects_the_others() {
    let context = TestContext::new("a_broken_pod_never_affects");
    let machine = Machine::new(&context).await;
    const MISSING: &str = "systemk-no-such-package-xyz";
    machine.write_manifest("good.yaml", &sleeper("good"));
    machine.write_manifest("bad.yaml", &sleeper("bad").replace("/bin/sleep", MISSING));
    machine.write_manifest(
        "nobinary.yaml",
        &sleeper("nobinary").replace("/bin/sleep", "/usr/bin/systemk-no-such-binary"),
    );
    machine.write_manifest(
        "broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: [oops\n",
    );
    let agent = machine.start_agent();
    let good = machine.unit("good", "main");
    let good_pid = machine.wait_running(START, &good).await;

    let bad = machine
        .wait_pod(SLOW, "bad", "ErrImagePull or ImagePullBackOff", |pod| {
            matches!(
                waiting_reason(pod, "main"),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
        })
        .await;
    let message = container(&bad, "main")
        .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.message.clone())
        .unwrap_or_default();
    assert!(message.contains(MISSING), "{message:?}");
    let nobinary = machine
        .wait_pod(START, "nobinary", "waiting with a message", |pod| {
            waiting_reason(pod, "main").is_some_and(|reason| reason != "ContainerCreating")
        })
        .await;
    let waiting = container(&nobinary, "main")
        .and_then(|c| c.state.as_ref()?.waiting.clone())
        .unwrap();
    assert!(
        waiting
            .message
            .as_deref()
            .is_some_and(|message| message.contains("systemk-no-such-binary")),
        "{waiting:?}"
    );
    // Retried with back-off: a second failed install, 10 s later.
    machine
        .wait_for_log(SLOW, 0, 2, &["cannot prepare a container", MISSING])
        .await;
    let status = machine.status(&good).await;
    assert_eq!(
        (status.main_pid, status.sub_state.as_str()),
        (good_pid, "running")
    );
    assert!(machine.is_gone(&machine.unit("bad", "main")).await);

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn resource_limits_reach_the_unit() {
    let context = TestContext::new("resource_limits_reach_the_unit");
    let machine = Machine::new(&context).await;
    let manifest = sleeper("limited").replace(
        "      args: [\"infinity\"]\n",
        "      args: [\"infinity\"]\n      resources:\n        limits:\n          \
         memory: 64Mi\n          cpu: 500m\n",
    );
    machine.write_manifest("limited.yaml", &manifest);
    let agent = machine.start_agent();
    let unit = machine.unit("limited", "main");
    machine.wait_running(START, &unit).await;
    let shown = systemctl_show(&unit, "MemoryMax,CPUQuotaPerSecUSec");
    let value = |key: &str| {
        shown
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("MemoryMax"), Some("67108864"), "{shown:?}");
    assert_eq!(value("CPUQuotaPerSecUSec"), Some("500ms"), "{shown:?}");

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn units_are_enabled_to_start_at_boot() {
    let context = TestContext::new("units_are_enabled_to_start_at_boot");
    let machine = Machine::new(&context).await;
    machine.write_manifest("booted.yaml", &sleeper("booted"));
    let agent = machine.start_agent();
    let unit = machine.unit("booted", "main");
    machine.wait_running(START, &unit).await;
    let link = fs::read_link(Path::new(WANTS_DIR).join(unit.as_str())).unwrap();
    assert_eq!(link, Path::new(UNIT_DIR).join(unit.as_str()));
    let shown = systemctl_show(&unit, "UnitFileState");
    assert_eq!(shown, [("UnitFileState".to_owned(), "enabled".to_owned())]);

    agent.terminate().await;
    machine.clean_up().await;
}
