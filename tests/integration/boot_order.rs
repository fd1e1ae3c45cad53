//! Boot order (issue 12, point 6): a pod's order is in its units, so systemd keeps it
//! without systemk. The test reboots: the pod's units are stopped in the test systemd (the
//! shutdown), then a fresh systemd boots from the unit directory the engine wrote and
//! enabled — `scripts/systemd-sandbox --boot-target multi-user.target`, whose private
//! `/etc/systemd/system` is a copy of the test systemd's and whose `/run` is empty, as after
//! a reboot. That PID 1 never saw the units before; no systemk runs in it. Its journal shows
//! the init containers ran, one after the other, and the sidecar between them started in its
//! place, before the app container started; after a second boot with an init container that
//! fails, the app container never started.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, container_status, unique_uid};

fn pod(context: &TestContext) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "boot", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            "volumes": [{"name": "flags", "emptyDir": {}}],
            "initContainers": [
                {"name": "first", "image": "/bin/sh",
                 "command": ["/bin/sh", "-c", "sleep 1; echo first-ran"]},
                {"name": "side", "image": "/bin/sh", "restartPolicy": "Always",
                 "command": ["/bin/sh", "-c", "exec sleep 600"]},
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

/// A nested boot, including systemd's own, ends well within this.
const BOOT_DEADLINE: Duration = Duration::from_secs(20);

/// Runs once the booted systemd reached `running`/`degraded` (every boot job done): waits
/// for the app container's line if its unit is active, then prints the units' states and
/// journal. Arguments: the pod's units, the app container's last.
const AFTER_BOOT: &str = r#"
for main; do :; done
if systemctl -q is-active "$main"; then
    for _ in $(seq 50); do
        journalctl -o cat -u "$main" | grep -q main-started && break
        sleep 0.1
    done
fi
systemctl show -p Id -p ActiveState "$@"
echo "-- journal --"
for unit; do set -- "$@" -u "$unit"; shift; done
journalctl --no-pager -o cat "$@"
"#;

/// A `scripts/systemd-sandbox` run. Dropping it before it ended sends the script SIGTERM,
/// on which it kills the systemd it booted, and reaps it: no systemd outlives a failed test.
struct NestedBoot {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl NestedBoot {
    fn start(units: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/systemd-sandbox");
        let mut command = Command::new(script);
        command.args(["--boot-target", BOOT_TARGET]);
        for unit in units {
            command.args(["--keep-unit", unit]);
        }
        command
            .args(["--", "sh", "-c", AFTER_BOOT, "sh"])
            .args(units)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().map(read_all);
        let stderr = child.stderr.take().map(read_all);
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// What the command printed inside, once the script ended with success.
    fn output(mut self) -> String {
        let end = Instant::now() + BOOT_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < end,
                "the nested boot took over {BOOT_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = joined(self.stdout.take());
        let stderr = joined(self.stderr.take());
        assert!(
            status.success(),
            "nested boot: {status}\n{stdout}\n{stderr}"
        );
        stdout
    }
}

impl Drop for NestedBoot {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Not yet reaped, so the PID is still the script's.
            let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
            let _ = kill(pid, Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

fn read_all(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = from.read_to_string(&mut text);
        text
    })
}

fn joined(reader: Option<JoinHandle<String>>) -> String {
    reader.and_then(|r| r.join().ok()).unwrap_or_default()
}

/// Boots a fresh systemd from the persisted unit directory; returns the `ActiveState` of
/// each unit and the units' journal.
fn reboot(units: &[&str]) -> (Vec<String>, String) {
    let output = NestedBoot::start(units).output();
    let (states, journal) = output
        .split_once("-- journal --\n")
        .unwrap_or_else(|| panic!("no journal in:\n{output}"));
    let state_of = |unit: &str| {
        states
            .split("\n\n")
            .find(|block| block.lines().any(|l| l == format!("Id={unit}")))
            .and_then(|block| block.lines().find_map(|l| l.strip_prefix("ActiveState=")))
            .unwrap_or_else(|| panic!("no state of {unit} in:\n{states}"))
            .to_owned()
    };
    (
        units.iter().map(|u| state_of(u)).collect(),
        journal.to_owned(),
    )
}

fn systemctl(args: &[&str]) {
    let status = Command::new("systemctl").args(args).status().unwrap();
    assert!(status.success(), "systemctl {args:?}");
}

#[tokio::test]
async fn boot_order_a_fresh_boot_runs_init_containers_and_sidecars_before_the_app_without_systemk()
{
    let context = TestContext::new("boot_order");
    let engine = Engine::persistent().await;
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
    let names = ["first", "side", "second", "main"].map(|c| run.unit_name(c));
    let units = names.each_ref().map(|name| name.as_str());

    // Shutdown, then a boot that never saw the units.
    systemctl(&[&["stop"][..], &units].concat());
    let (states, journal) = reboot(&units);
    assert_eq!(states, ["active"; 4], "{journal}");
    let at = |needle: &str| {
        journal
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{journal}"))
    };
    // systemd logs "Started" when the sidecar's start job is done, which is what the units
    // after it wait for.
    let side_started = at(&format!("Started {}", units[1]));
    assert!(at("first-ran") < side_started, "{journal}");
    assert!(side_started < at("second-ran"), "{journal}");
    assert!(at("second-ran") < at("main-started"), "{journal}");

    // An init container that fails at boot keeps the app container down.
    std::fs::write(run.empty_dir("flags").join("fail"), "").unwrap();
    let (states, journal) = reboot(&units);
    assert_eq!(states[..3], ["active", "active", "failed"], "{journal}");
    assert_ne!(states[3], "active", "{journal}");
    assert!(journal.contains("first-ran"), "{journal}");
    assert!(!journal.contains("main-started"), "{journal}");
    run.finish().await;
}
