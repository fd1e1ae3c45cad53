//! Issue 14, point 6 and issue 12, point 7: the pods' slices against the sandbox's real
//! systemd. `systemk.slice` as the agent writes it carries the reservation's limits; a
//! running unit of an earlier systemk (in `systemk.slice`) whose file gains its pod's
//! slice (what an upgrade does to adopted pods, which systemk then does not restart)
//! keeps its process where it was, and its next start is in the pod's slice.

use std::path::Path;
use std::time::Duration;

use systemk::systemd::{ActiveState, Systemd};
use systemk::unit::{
    KubernetesMeta, QosTier, RestartPolicy, SliceLimits, SliceName, UnitFile, slice_unit,
};

use crate::support::{TestContext, wait_for};

const UNITS_DIR: &str = "/etc/systemd/system";
const DEADLINE: Duration = Duration::from_secs(20);

/// The cgroup path of `pid` in the unified (or named systemd) hierarchy.
fn cgroup_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
}

async fn show(property: &str, unit: &str) -> String {
    let output = tokio::process::Command::new("systemctl")
        .args(["show", "--value", "-p", property, unit])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn issue_14_the_slice_has_the_limits_and_a_running_unit_moves_to_its_pod_slice_at_its_next_start()
 {
    let context = TestContext::new("pods_slice");
    let systemd = Systemd::connect().await.unwrap();
    let dir = Path::new(UNITS_DIR);
    let limits = SliceLimits {
        memory_max: Some(3 << 30),
        cpu_millis: Some(1500),
        tasks_max: Some(4321),
    };
    let root =
        |limits: &SliceLimits| vec![(SliceName::root(), slice_unit(limits).unwrap().render())];
    systemd.write_slices(dir, &root(&limits)).await.unwrap();
    assert_eq!(
        show("MemoryMax", "systemk.slice").await,
        (3u64 << 30).to_string()
    );
    assert_eq!(show("TasksMax", "systemk.slice").await, "4321");

    let name = context.unit_name("mover", "main");
    // As an earlier systemk wrote it: in the root slice.
    let mut unit = UnitFile::parse(
        "[Service]\nExecStart=/bin/sleep infinity\nRemainAfterExit=yes\nSlice=systemk.slice\n",
    )
    .unwrap();
    let uid = "0000aaaa-1111-4000-8000-00000000e14a";
    let mut meta = KubernetesMeta {
        namespace: context.namespace().to_owned(),
        pod_name: "mover".to_owned(),
        pod_uid: uid.to_owned(),
        container: "main".to_owned(),
        container_index: 0,
        init_container: false,
        image: "/bin/sleep".to_owned(),
        image_id: "sha256:0".to_owned(),
        restart_policy: RestartPolicy::Always,
        spec_hash: String::new(),
    };
    meta.write_to(&mut unit).unwrap();
    systemd
        .write_units(dir, &[(name.clone(), unit.render())])
        .await
        .unwrap();
    systemd.start(&name).await.unwrap();
    let before = systemd.status(&name).await.unwrap().main_pid;
    let in_root = format!("/systemk.slice/{name}");
    assert!(
        cgroup_of(before).contains(&in_root),
        "{}",
        cgroup_of(before)
    );
    let old_hash = meta.spec_hash.clone();

    // The unit as systemk writes it now; the hash rule says: only the slice changed.
    let pod_slice = SliceName::for_pod(QosTier::BestEffort, uid).unwrap();
    unit.set("Service", "Slice", pod_slice.as_str()).unwrap();
    meta.write_to(&mut unit).unwrap();
    assert!(systemk::unit::earlier_spec_hashes(&unit).contains(&old_hash));
    systemd
        .write_units(dir, &[(name.clone(), unit.render())])
        .await
        .unwrap();
    let status = systemd.status(&name).await.unwrap();
    assert_eq!(status.main_pid, before, "the reload must not restart it");
    assert_eq!(status.active_state, ActiveState::Active);
    assert!(
        cgroup_of(before).contains(&in_root),
        "{}",
        cgroup_of(before)
    );

    systemd.restart(&name).await.unwrap();
    let after = wait_for(DEADLINE, "the restarted unit", || async {
        let pid = systemd.status(&name).await.unwrap().main_pid;
        (pid != 0 && pid != before).then_some(pid)
    })
    .await;
    let expected = format!("/systemk.slice/systemk-besteffort.slice/{pod_slice}/{name}");
    assert!(cgroup_of(after).contains(&expected), "{}", cgroup_of(after));

    systemd.stop(&name, DEADLINE).await.unwrap();
    systemd.remove(dir, &[name]).await.unwrap();
    systemd.remove_slices(dir, &[pod_slice]).await.unwrap();
    // Back to what an agent without reservations writes.
    systemd
        .write_slices(dir, &root(&SliceLimits::default()))
        .await
        .unwrap();
}
