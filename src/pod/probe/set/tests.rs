use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Container;
use serde_json::json;

use super::*;
use crate::pod::probe::container_plans;
use crate::systemd::Ended;

/// Passes while `healthy` is set.
struct Switch(Arc<AtomicBool>);

impl Runner for Switch {
    fn run(
        &self,
        _: &str,
        _: &[String],
        _: Duration,
        _: usize,
    ) -> BoxFuture<'static, Result<(Ended, Vec<u8>), String>> {
        let code = if self.0.load(Ordering::SeqCst) { 0 } else { 1 };
        Box::pin(async move { Ok((Ended::Exited(code), b"checked".to_vec())) })
    }
}

fn container(probes: serde_json::Value) -> Container {
    let mut spec = json!({"name": "main", "image": "/bin/sleep"});
    spec.as_object_mut()
        .unwrap()
        .extend(probes.as_object().unwrap().clone());
    serde_json::from_value(spec).unwrap()
}

fn wiring(healthy: &Arc<AtomicBool>) -> (Wiring, mpsc::Receiver<UnitName>) {
    let (wakes, woken) = mpsc::channel(8);
    let wiring = Wiring {
        runner: Arc::new(Switch(healthy.clone())),
        wakes,
        events: None,
        pod_ip: "127.0.0.1".into(),
        metrics: Default::default(),
    };
    (wiring, woken)
}

fn running(run: u32) -> Sight {
    Sight {
        run,
        running_for: Some(Duration::from_secs(60)),
    }
}

fn unit() -> UnitName {
    UnitName::try_from("systemk.default.web.main.service".to_owned()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn readiness_wakes_the_pod_and_shows_for_its_run_only() {
    let healthy = Arc::new(AtomicBool::new(true));
    let (wiring, mut woken) = wiring(&healthy);
    let spec =
        container(json!({"readinessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 1}}));
    let pod = Arc::new(Pod::default());
    let mut probes = PodProbes::default();
    let plans = || container_plans(&spec).unwrap();
    probes.sync(&wiring, &pod, "main", &unit(), plans, running(0));
    assert_eq!(probes.probed("main", 0).readiness, Some(Some(false)));
    assert_eq!(woken.recv().await, Some(unit()));
    assert_eq!(probes.probed("main", 0).readiness, Some(Some(true)));
    // A new run starts from the initial value until its own first result.
    assert_eq!(probes.probed("main", 1).readiness, Some(Some(false)));
    assert_eq!(probes.probed("other", 0), Probed::default());
    probes.retain(|_| false);
    assert_eq!(probes.probed("main", 0), Probed::default());
}

#[tokio::test(start_paused = true)]
async fn a_failed_liveness_probe_asks_once_per_run_to_kill() {
    let healthy = Arc::new(AtomicBool::new(false));
    let (wiring, mut woken) = wiring(&healthy);
    let spec = container(json!({"livenessProbe": {
        "exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 2,
    }}));
    let pod = Arc::new(Pod::default());
    let mut probes = PodProbes::default();
    let plans = || container_plans(&spec).unwrap();
    probes.sync(&wiring, &pod, "main", &unit(), plans, running(0));
    assert_eq!(
        probes.take_kill("main", 0),
        None,
        "not before the threshold"
    );
    woken.recv().await;
    assert_eq!(probes.take_kill("main", 0), Some(Kind::Liveness));
    assert_eq!(probes.take_kill("main", 0), None, "one kill per run");
    assert_eq!(
        probes.take_kill("main", 1),
        None,
        "a new run is not killed for the old"
    );
}

#[tokio::test(start_paused = true)]
async fn the_startup_probe_gates_readiness() {
    let healthy = Arc::new(AtomicBool::new(true));
    let (wiring, mut woken) = wiring(&healthy);
    let spec = container(json!({
        "startupProbe": {"exec": {"command": ["check"]}, "periodSeconds": 1},
        "readinessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 1},
    }));
    let pod = Arc::new(Pod::default());
    let mut probes = PodProbes::default();
    let plans = || container_plans(&spec).unwrap();
    probes.sync(&wiring, &pod, "main", &unit(), plans, running(0));
    let probed = probes.probed("main", 0);
    assert_eq!(
        (probed.startup, probed.readiness),
        (Some(None), Some(Some(false)))
    );
    woken.recv().await;
    assert_eq!(probes.probed("main", 0).startup, Some(Some(true)));
    // Readiness waits for the pass to tell it the container started.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(probes.probed("main", 0).readiness, Some(Some(false)));
    probes.sync(&wiring, &pod, "main", &unit(), Vec::new, running(0));
    woken.recv().await;
    assert_eq!(probes.probed("main", 0).readiness, Some(Some(true)));
}
