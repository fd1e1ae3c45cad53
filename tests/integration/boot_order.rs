//! Boot order (issue 12, point 6): a pod's order is in its units, so systemd keeps it
//! without systemk. At boot systemd starts the default target (`multi-user.target`,
//! which the pod's units are enabled into) with one start job for each unit it wants;
//! here the booted test systemd does exactly that — the pod's units and the target
//! stopped, then `multi-user.target` started, no reconcile pass running — and the
//! journal shows the init containers ran again, one after the other, before the app
//! container started. An init container that fails then keeps the app container from
//! starting at all.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::support::engine::{DEADLINE, Engine, container_status, unique_uid};
use crate::support::{TestContext, wait_for};

fn pod(context: &TestContext) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "boot", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            "volumes": [{"name": "flags", "emptyDir": {}}],
            "initContainers": [
                {"name": "first", "image": "/bin/sh",
                 "command": ["/bin/sh", "-c", "sleep 1; echo first-ran"]},
                {"name": "second", "image": "/bin/sh",
                 "volumeMounts": [{"name": "flags", "mountPath": "/var/tmp/flags"}],
                 "command": ["/bin/sh", "-c", "test ! -e /var/tmp/flags/fail && echo second-ran"]},
            ],
            "containers": [{"name": "main", "image": "/bin/sh",
                "command": ["/bin/sh", "-c", "echo main-started; exec sleep 600"]}],
        },
    }))
    .unwrap()
}

/// The target a Debian host boots into, which the pod's units are enabled into.
const BOOT_TARGET: &str = "multi-user.target";

/// The state after a shutdown: the boot target and the pod's units stopped.
fn reboot_down(units: &[&str]) {
    systemctl(&["stop", BOOT_TARGET]);
    systemctl(&[&["stop"][..], units].concat());
}

fn systemctl(args: &[&str]) {
    let status = Command::new("systemctl").args(args).status().unwrap();
    assert!(status.success(), "systemctl {args:?}");
}

/// The pod's units' journal since `cursor`, messages only.
fn journal_since(cursor: &str, units: &[&str]) -> String {
    let _ = Command::new("journalctl").arg("--sync").status();
    let mut args = vec!["--no-pager", "-o", "cat", "--after-cursor", cursor];
    for unit in units {
        args.extend(["-u", unit]);
    }
    let out = Command::new("journalctl").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cursor() -> String {
    let _ = Command::new("journalctl").arg("--sync").status();
    let out = Command::new("journalctl")
        .args(["--no-pager", "-n", "0", "--show-cursor"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("-- cursor: "))
        .expect("a journal cursor")
        .to_owned()
}

fn active_state(unit: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", "ActiveState", "--value", unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn boot_order_runs_the_init_containers_again_before_the_app_without_systemk() {
    let context = TestContext::new("boot_order");
    let engine = Engine::new(None).await;
    let run = engine.run(pod(&context));
    run.until(DEADLINE, "main running", |status| {
        container_status(status, "main")?
            .state
            .as_ref()?
            .running
            .as_ref()?;
        Some(())
    })
    .await;
    let [first, second, main] = ["first", "second", "main"].map(|c| {
        let spec = run.unit_name("main");
        spec.as_str()
            .replace(".main.service", &format!(".{c}.service"))
    });
    let units = [first.as_str(), second.as_str(), main.as_str()];

    // "Reboot": everything stops, then the boot target pulls in every enabled unit.
    reboot_down(&units);
    let mark = cursor();
    systemctl(&["start", "--no-block", BOOT_TARGET]);
    wait_for(DEADLINE, "main active again", || async {
        (active_state(&main) == "active").then_some(())
    })
    .await;
    let lines = journal_since(&mark, &units);
    let at = |needle: &str| {
        lines
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{lines}"))
    };
    assert!(at("first-ran") < at("second-ran"), "{lines}");
    assert!(at("second-ran") < at("main-started"), "{lines}");

    // An init container that fails at boot keeps the app container down.
    std::fs::write(run.empty_dir("flags").join("fail"), "").unwrap();
    systemctl(&[&["stop"][..], &units].concat());
    let mark = cursor();
    let _ = Command::new("systemctl")
        .args(["start", &main, &second, &first])
        .status();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(active_state(&second), "failed");
    assert_ne!(active_state(&main), "active");
    let lines = journal_since(&mark, &units);
    assert!(!lines.contains("main-started"), "{lines}");
    run.finish().await;
}
