//! Pod slices (issue 12, point 7) through the real engine in the booted systemd: a
//! Guaranteed, a Burstable and a BestEffort pod each run in their own slice at their
//! place in the kubelet's QoS tree, the slice carries the pod's summed limits,
//! `systemctl status` of the slice shows the pod's whole tree, and the slice is gone once
//! the pod is. Path images only. The attacks on the names (UIDs that would leave their
//! place or edit a unit) are unit-tested in `unit::pod_slice` and `pod::slice`: the UID
//! is refused before anything reaches systemd.

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, PodRun, UNIT_DIR, unique_uid};

fn sleeper(name: &str, resources: Value) -> Value {
    json!({"name": name, "image": "/bin/sleep", "args": ["infinity"], "resources": resources})
}

fn pod(context: &TestContext, name: &str, uid: &str, containers: Vec<Value>) -> Value {
    json!({
        "metadata": {"name": name, "namespace": context.namespace(), "uid": uid},
        "spec": {"restartPolicy": "Always", "containers": containers},
    })
}

/// `systemctl show -p <property> --value <unit>`.
fn show(property: &str, unit: &str) -> String {
    let output = std::process::Command::new("systemctl")
        .args(["show", "--value", "-p", property, unit])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// The pod's slice name as systemk names it: `<stem>-pod<uid with _>.slice`.
fn slice_of(stem: &str, uid: &str) -> String {
    format!("{stem}-pod{}.slice", uid.replace('-', "_"))
}

/// Runs `containers` until each runs; checks each unit's cgroup is `<parent>/<slice>/<unit>`.
async fn run_in_slice(run: &PodRun, containers: &[&str], parent: &str, slice: &str) {
    for container in containers {
        run.running_pid(DEADLINE, container).await;
        let unit = run.unit_name(container);
        // Below the sandbox's own cgroup in tests, at the root on a host.
        let cgroup = show("ControlGroup", unit.as_str());
        assert!(
            cgroup.ends_with(&format!("{parent}/{slice}/{unit}")),
            "{cgroup}"
        );
        assert_eq!(show("Slice", unit.as_str()), slice);
    }
}

/// After the pod's cleanup: no file, nothing running.
fn assert_gone(slice: &str) {
    let path = std::path::Path::new(UNIT_DIR).join(slice);
    assert!(!path.exists(), "{} is left", path.display());
    assert_eq!(show("ActiveState", slice), "inactive");
}

#[tokio::test]
async fn pod_slices_place_each_qos_class_and_carry_the_summed_limits() {
    let context = TestContext::new("pod_slices_qos");
    let engine = Engine::new(None).await;

    // Guaranteed: 2 × (250m, 64Mi) → weight of 500m (512 shares → 20), quota 50 %, 128 Mi.
    let uid = unique_uid();
    let both = json!({"limits": {"cpu": "250m", "memory": "64Mi"}});
    let spec = pod(
        &context,
        "guaranteed",
        &uid,
        vec![sleeper("one", both.clone()), sleeper("two", both)],
    );
    let run = engine.run(serde_json::from_value(spec).unwrap());
    let slice = slice_of("systemk", &uid);
    run_in_slice(&run, &["one", "two"], "/systemk.slice", &slice).await;
    assert_eq!(show("CPUWeight", &slice), "20");
    assert_eq!(show("CPUQuotaPerSecUSec", &slice), "500ms");
    assert_eq!(show("MemoryMax", &slice), (128u64 << 20).to_string());
    // The pod's whole tree under its slice.
    let status = std::process::Command::new("systemctl")
        .args(["status", "--no-pager", "--lines=0", &slice])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    for container in ["one", "two"] {
        let unit = run.unit_name(container);
        assert!(text.contains(unit.as_str()), "{unit} not in:\n{text}");
    }
    assert!(text.contains("sleep infinity"), "{text}");
    run.finish().await;
    assert_gone(&slice);

    // Burstable: every container limits memory but not CPU → MemoryMax, no quota; weight
    // from 150m of requests (153 shares → 6).
    let uid = unique_uid();
    let containers = vec![
        sleeper(
            "a",
            json!({"requests": {"cpu": "100m"}, "limits": {"memory": "32Mi"}}),
        ),
        sleeper(
            "b",
            json!({"requests": {"cpu": "50m"}, "limits": {"memory": "16Mi"}}),
        ),
    ];
    let spec = pod(&context, "burstable", &uid, containers);
    let run = engine.run(serde_json::from_value(spec).unwrap());
    let slice = slice_of("systemk-burstable", &uid);
    let parent = "/systemk.slice/systemk-burstable.slice";
    run_in_slice(&run, &["a", "b"], parent, &slice).await;
    assert_eq!(show("CPUWeight", &slice), "6");
    assert_eq!(show("CPUQuotaPerSecUSec", &slice), "infinity");
    assert_eq!(show("MemoryMax", &slice), (48u64 << 20).to_string());
    run.finish().await;
    assert_gone(&slice);

    // BestEffort: the lowest weight, no limits.
    let uid = unique_uid();
    let spec = pod(
        &context,
        "besteffort",
        &uid,
        vec![sleeper("main", json!({}))],
    );
    let run = engine.run(serde_json::from_value(spec).unwrap());
    let slice = slice_of("systemk-besteffort", &uid);
    let parent = "/systemk.slice/systemk-besteffort.slice";
    run_in_slice(&run, &["main"], parent, &slice).await;
    assert_eq!(show("CPUWeight", &slice), "1");
    assert_eq!(show("CPUQuotaPerSecUSec", &slice), "infinity");
    assert_eq!(show("MemoryMax", &slice), "infinity");
    run.finish().await;
    assert_gone(&slice);
}
