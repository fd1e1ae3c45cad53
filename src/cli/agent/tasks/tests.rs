//! The supervisor's cases: every way a task ends is reported, a task ending early is
//! noticed, and shutdown goes stage by stage under the grace period. Time is paused.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use super::*;

type Log = Arc<Mutex<Vec<&'static str>>>;

/// A task that records when it was told to stop, then ends.
fn stops_when_told(
    tasks: &Tasks,
    stage: Stage,
    name: &'static str,
    log: &Log,
) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    let stop = tasks.stop_signal(stage);
    let log = log.clone();
    async move {
        stop.await;
        log.lock().unwrap().push(name);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_that_returns_early_is_noticed() {
    let mut tasks = Tasks::new();
    tasks.spawn("pod watch", Stage::Intake, async { Ok(()) });
    let ended = tasks.run_until(std::future::pending()).await;
    assert_eq!(
        ended,
        Some(Ended {
            name: "pod watch",
            stage: Stage::Intake,
            outcome: Outcome::Returned
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_task_is_reported_with_its_cause_chain() {
    let mut tasks = Tasks::new();
    tasks.spawn("reconciler", Stage::Reconcile, async {
        Err(std::io::Error::other("bus gone")).context("cannot subscribe")
    });
    let ended = tasks.run_until(std::future::pending()).await.unwrap();
    assert_eq!(
        ended.outcome,
        Outcome::Failed("cannot subscribe: bus gone".to_owned())
    );
    assert_eq!(
        ended.to_string(),
        "reconciler failed: cannot subscribe: bus gone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_reported_with_its_message() {
    let mut tasks = Tasks::new();
    tasks.spawn("lease", Stage::Report, async {
        let fail = true;
        if fail {
            panic!("lease exploded");
        }
        Ok(())
    });
    let ended = tasks.run_until(std::future::pending()).await.unwrap();
    assert_eq!(ended.name, "lease");
    assert_eq!(
        ended.outcome,
        Outcome::Panicked("lease exploded".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn the_signal_ends_the_wait_without_a_task_ending() {
    let mut tasks = Tasks::new();
    let log = Log::default();
    let task = stops_when_told(&tasks, Stage::Serve, "kubelet API", &log);
    tasks.spawn("kubelet API", Stage::Serve, task);
    assert_eq!(tasks.run_until(async {}).await, None);
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_stages_in_order() {
    let mut tasks = Tasks::new();
    let log = Log::default();
    // Spawned in reverse so the order comes from the stages, not from spawning.
    for (name, stage) in [
        ("kubelet API", Stage::Serve),
        ("lease", Stage::Report),
        ("reconciler", Stage::Reconcile),
        ("pod watch", Stage::Intake),
        ("manifests", Stage::Intake),
    ] {
        let task = stops_when_told(&tasks, stage, name, &log);
        tasks.spawn(name, stage, task);
    }
    let ended = tasks.shutdown(Duration::from_secs(30)).await;
    let stopped = log.lock().unwrap().clone();
    assert_eq!(stopped.len(), 5);
    let stage_of = |name: &str| ended.iter().find(|e| e.name == name).unwrap().stage;
    let stages: Vec<Stage> = stopped.iter().map(|name| stage_of(name)).collect();
    let mut sorted = stages.clone();
    sorted.sort();
    assert_eq!(stages, sorted, "stopped in order {stopped:?}");
    assert!(ended.iter().all(|e| e.outcome == Outcome::Returned));
}

#[tokio::test(start_paused = true)]
async fn a_later_stage_waits_for_the_earlier_one_to_drain() {
    let mut tasks = Tasks::new();
    let log = Log::default();
    let stop = tasks.stop_signal(Stage::Reconcile);
    let drained = log.clone();
    tasks.spawn("reconciler", Stage::Reconcile, async move {
        stop.await;
        // An in-flight pass that takes a while to finish.
        tokio::time::sleep(Duration::from_secs(3)).await;
        drained.lock().unwrap().push("reconciler drained");
        Ok(())
    });
    let task = stops_when_told(&tasks, Stage::Report, "status reporter", &log);
    tasks.spawn("status reporter", Stage::Report, task);
    let started = Instant::now();
    tasks.shutdown(Duration::from_secs(30)).await;
    assert_eq!(
        *log.lock().unwrap(),
        ["reconciler drained", "status reporter"]
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_stage_past_the_grace_is_cancelled_and_later_stages_still_stop() {
    let mut tasks = Tasks::new();
    let log = Log::default();
    tasks.spawn("stuck", Stage::Reconcile, std::future::pending());
    let task = stops_when_told(&tasks, Stage::Serve, "kubelet API", &log);
    tasks.spawn("kubelet API", Stage::Serve, task);
    let started = Instant::now();
    let ended = tasks.shutdown(Duration::from_secs(5)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(
        ended,
        [
            Ended {
                name: "stuck",
                stage: Stage::Reconcile,
                outcome: Outcome::Cancelled
            },
            Ended {
                name: "kubelet API",
                stage: Stage::Serve,
                outcome: Outcome::Returned
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_its_stop_gets_the_stage_minimum_after_the_grace() {
    let mut tasks = Tasks::new();
    tasks.spawn("stuck", Stage::Reconcile, std::future::pending());
    tasks.spawn("deaf", Stage::Serve, std::future::pending());
    let started = Instant::now();
    let ended = tasks.shutdown(Duration::from_secs(5)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5) + STAGE_MINIMUM);
    assert!(ended.iter().all(|e| e.outcome == Outcome::Cancelled));
}
