//! Pod slices with the real agent (issue 12, point 7): the agent writes the BestEffort
//! slice at start (CPU weight 1) and keeps the Burstable one at its pods' CPU requests, a
//! static pod runs in its slice, a restart of
//! the agent leaves it running there and adopts it, a unit an earlier systemk left in
//! `systemk.slice` is not restarted but moves at its next start, and removing the
//! manifest removes the pod's slice; a pod slice left without a pod is removed at start.

use std::fs;
use std::path::Path;

use systemk::unit::{KubernetesMeta, UnitFile, UnitName};

use super::machine::{Machine, UNIT_DIR, container, phase};
use super::{SLOW, START};
use crate::support::{TestContext, wait_for};

/// A Burstable pod: two sleepers, one with a CPU request.
const BURSTABLE: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: tiers
  namespace: {ns}
spec:
  containers:
    - name: first
      image: /bin/sleep
      args: ["infinity"]
      resources:
        requests:
          cpu: 100m
    - name: second
      image: /bin/sleep
      args: ["infinity"]
"#;

fn show(property: &str, unit: &str) -> String {
    let output = std::process::Command::new("systemctl")
        .args(["show", "--value", "-p", property, unit])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Whether `unit`'s cgroup is `path` (below the sandbox's own cgroup in tests).
fn in_cgroup(unit: &UnitName, path: &str) -> bool {
    let cgroup = show("ControlGroup", unit.as_str());
    let found = cgroup.ends_with(path);
    if !found {
        eprintln!("{unit} is in {cgroup}, not {path}");
    }
    found
}

fn pod_uid(unit: &UnitName) -> String {
    let text = fs::read_to_string(Path::new(UNIT_DIR).join(unit.as_str())).unwrap();
    KubernetesMeta::from_unit(&UnitFile::parse(&text).unwrap())
        .unwrap()
        .pod_uid
}

/// Rewrites `unit`'s file as an earlier systemk wrote it (in `systemk.slice`, sealed),
/// reloads and restarts it there: what a host upgraded from that version runs.
async fn as_written_by_an_earlier_systemk(machine: &Machine, unit: &UnitName) -> u32 {
    let path = Path::new(UNIT_DIR).join(unit.as_str());
    let mut file = UnitFile::parse(&fs::read_to_string(&path).unwrap()).unwrap();
    file.set("Service", "Slice", "systemk.slice").unwrap();
    let mut meta = KubernetesMeta::from_unit(&file).unwrap();
    meta.write_to(&mut file).unwrap();
    fs::write(&path, file.render()).unwrap();
    let run = |args: &[&str]| {
        let status = std::process::Command::new("systemctl")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "systemctl {args:?}");
    };
    run(&["daemon-reload"]);
    run(&["restart", unit.as_str()]);
    let pid = machine.wait_running(START, unit).await;
    assert!(in_cgroup(unit, &format!("/systemk.slice/{unit}")));
    pid
}

#[tokio::test]
async fn pod_slices_survive_an_agent_restart_and_old_units_move_at_their_next_start() {
    let context = TestContext::new("pod_slices_agent");
    let machine = Machine::new(&context).await;
    machine.write_manifest("tiers.yaml", BURSTABLE);
    let agent = machine.start_agent();
    let units = [
        machine.unit("tiers", "first"),
        machine.unit("tiers", "second"),
    ];
    for unit in &units {
        machine.wait_running(START, unit).await;
    }
    assert_eq!(show("CPUWeight", "systemk-besteffort.slice"), "1");
    let uid = pod_uid(&units[0]);
    let slice = format!("systemk-burstable-pod{}.slice", uid.replace('-', "_"));
    assert!(Path::new(UNIT_DIR).join(&slice).exists());
    for unit in &units {
        let path = format!("/systemk.slice/systemk-burstable.slice/{slice}/{unit}");
        assert!(in_cgroup(unit, &path));
    }
    // 100m → 102 shares → weight 4, for the pod and for its tier (its only pod).
    assert_eq!(show("CPUWeight", &slice), "4");
    wait_for(START, "the Burstable tier to weigh its pod", || async {
        (show("CPUWeight", "systemk-burstable.slice") == "4").then_some(())
    })
    .await;

    // An upgrade from a systemk that ran every pod in systemk.slice: the second
    // container's unit is as that version wrote it, and runs there.
    agent.kill9();
    let old_pid = as_written_by_an_earlier_systemk(&machine, &units[1]).await;
    let first_pid = machine.status(&units[0]).await.main_pid;
    let restarted_at = machine.log().len();
    let agent = machine.start_agent();
    machine
        .wait_for_log(START, restarted_at, 1, &["all pods are in sync"])
        .await;
    wait_for(START, "the old unit to name its pod's slice", || async {
        let text = fs::read_to_string(Path::new(UNIT_DIR).join(units[1].as_str())).ok()?;
        text.contains(&format!("Slice={slice}")).then_some(())
    })
    .await;
    // Adopted, not restarted: both keep their processes, and the old one its cgroup.
    assert_eq!(machine.status(&units[0]).await.main_pid, first_pid);
    assert_eq!(machine.status(&units[1]).await.main_pid, old_pid);
    assert!(in_cgroup(
        &units[1],
        &format!("/systemk.slice/{}", units[1])
    ));
    let pod = machine
        .wait_pod(START, "tiers", "Running", |pod| phase(pod) == "Running")
        .await;
    assert_eq!(container(&pod, "first").map(|c| c.restart_count), Some(0));
    // Its next start (here: its process ends, and restartPolicy Always restarts it) is in
    // the pod's slice.
    sigkill(old_pid);
    let new_pid = machine
        .wait_unit(SLOW, &units[1], "a new process", |status| {
            status.main_pid != 0 && status.main_pid != old_pid && status.sub_state == "running"
        })
        .await
        .main_pid;
    assert_ne!(new_pid, old_pid);
    let path = format!(
        "/systemk.slice/systemk-burstable.slice/{slice}/{}",
        units[1]
    );
    assert!(in_cgroup(&units[1], &path));

    // Gone with its pod.
    machine.remove_manifest("tiers.yaml");
    wait_for(SLOW, "the pod's slice to go", || async {
        let gone = !Path::new(UNIT_DIR).join(&slice).exists();
        (gone && machine.is_gone(&units[0]).await).then_some(())
    })
    .await;
    assert_eq!(show("ActiveState", &slice), "inactive");
    wait_for(START, "the Burstable tier to weigh nothing", || async {
        (show("CPUWeight", "systemk-burstable.slice") == "1").then_some(())
    })
    .await;

    agent.terminate().await;
    machine.clean_up().await;
}

#[tokio::test]
async fn a_pod_slice_left_behind_is_removed_at_start() {
    let context = TestContext::new("pod_slices_left_behind");
    let machine = Machine::new(&context).await;
    // As if systemk stopped between removing a pod's units and its slice.
    let uid = crate::support::engine::unique_uid();
    let slice = format!("systemk-besteffort-pod{}.slice", uid.replace('-', "_"));
    let path = Path::new(UNIT_DIR).join(&slice);
    fs::write(&path, "[Slice]\nCPUWeight=1\n").unwrap();
    // Someone else's slice of a similar name stays.
    let foreign = Path::new(UNIT_DIR).join("systemk-besteffort-podnot_ours-x.slice");
    fs::write(&foreign, "[Slice]\n").unwrap();
    let agent = machine.start_agent();
    machine
        .wait_for_log(START, 0, 1, &["all pods are in sync"])
        .await;
    wait_for(START, "the slice left behind to go", || async {
        (!path.exists()).then_some(())
    })
    .await;
    assert!(foreign.exists());
    fs::remove_file(&foreign).unwrap();
    agent.terminate().await;
    machine.clean_up().await;
}

/// SIGKILLs `pid`, as an OOM kill or a crash ends a container.
fn sigkill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
