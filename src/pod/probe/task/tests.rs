use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Probe;
use serde_json::json;

use super::*;
use crate::pod::probe::plan::plan;
use crate::systemd::Ended;

/// Passes while `healthy` is set.
struct Switch {
    healthy: Arc<AtomicBool>,
}

impl Runner for Switch {
    fn run(
        &self,
        _: &str,
        _: &[String],
        _: Duration,
        _: usize,
    ) -> BoxFuture<'static, std::result::Result<(Ended, Vec<u8>), String>> {
        let code = if self.healthy.load(Ordering::SeqCst) {
            0
        } else {
            1
        };
        Box::pin(async move { Ok((Ended::Exited(code), b"said".to_vec())) })
    }
}

fn started(run: u32) -> Observed {
    Observed {
        run,
        seen: Seen {
            running_for: Some(Duration::from_secs(60)),
            started: true,
        },
    }
}

fn spawn(
    kind: Kind,
    healthy: &Arc<AtomicBool>,
) -> (watch::Sender<Observed>, mpsc::Receiver<Report>) {
    let probe: Probe =
        serde_json::from_value(json!({"exec": {"command": ["check"]}, "periodSeconds": 1}))
            .unwrap();
    let plan = plan(kind, &probe, &[]).unwrap();
    let target = Target {
        unit: "pod-main.service".into(),
        pod_ip: "127.0.0.1".into(),
        runner: Arc::new(Switch {
            healthy: healthy.clone(),
        }),
        counter: crate::pod::PodMetrics::default().probe_counter(
            "Liveness",
            &Default::default(),
            "main",
        ),
    };
    let (observed, watching) = watch::channel(started(0));
    let (reports, received) = mpsc::channel(4);
    tokio::spawn(run(plan, target, watching, reports));
    (observed, received)
}

#[tokio::test(start_paused = true)]
async fn readiness_reports_only_changes_and_remarks_failures() {
    let healthy = Arc::new(AtomicBool::new(true));
    let (observed, mut reports) = spawn(Kind::Readiness, &healthy);
    let first = reports.recv().await.unwrap();
    assert!(
        matches!(
            first,
            Report::Changed {
                change: Change::Became(true),
                ..
            }
        ),
        "{first:?}"
    );
    healthy.store(false, Ordering::SeqCst);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(reports.recv().await.unwrap());
    }
    let remark = Report::Remark {
        kind: Kind::Readiness,
        outcome: Outcome::failure("said"),
    };
    assert_eq!(seen[..3], [remark.clone(), remark.clone(), remark]);
    assert!(matches!(
        seen[3],
        Report::Changed {
            change: Change::Became(false),
            ..
        }
    ));
    drop(observed);
    while reports.recv().await.is_some() {}
}

#[tokio::test(start_paused = true)]
async fn liveness_asks_for_one_kill_per_run() {
    let healthy = Arc::new(AtomicBool::new(false));
    let (observed, mut reports) = spawn(Kind::Liveness, &healthy);
    let kill = loop {
        if let Report::Changed {
            change: Change::Kill,
            run,
            ..
        } = reports.recv().await.unwrap()
        {
            break run;
        }
    };
    assert_eq!(kill, 0);
    tokio::time::sleep(Duration::from_secs(10)).await;
    while let Ok(report) = reports.try_recv() {
        assert!(
            matches!(report, Report::Remark { .. }),
            "held after the kill: {report:?}"
        );
    }
    observed.send(started(1)).unwrap();
    let again = loop {
        if let Report::Changed {
            change: Change::Kill,
            run,
            ..
        } = reports.recv().await.unwrap()
        {
            break run;
        }
    };
    assert_eq!(again, 1);
}
