//! Image failures reach the pod as the kubelet's reasons, and drive retries (issue 16,
//! item 3): an image name systemk cannot parse is `InvalidImageName` and is never tried
//! again for the same spec; a package apt does not know is `ErrImagePull` on the pass
//! that tried, `ImagePullBackOff` while the retry waits, and the retries come later each
//! time (10 s, then 20 s, …).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use systemk::pod::Pass;

use crate::support::TestContext;
use crate::support::engine::{Engine, PodRun, container_status, unique_uid};
use crate::support::wait_for;

/// Long enough for the first retry (10 s) plus an apt-get update and install attempt.
const RETRY_DEADLINE: Duration = Duration::from_secs(60);

fn pod(context: &TestContext, name: &str, image: &str) -> Pod {
    let spec: Value = json!({ "containers": [{
        "name": "main", "image": image, "command": ["/bin/true"],
    }] });
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": context.namespace(), "uid": unique_uid() },
        "spec": spec,
    }))
    .unwrap()
}

/// The waiting reason and message of the container `main`.
fn waiting(status: &PodStatus) -> (String, String) {
    let waiting = container_status(status, "main")
        .and_then(|c| c.state.as_ref()?.waiting.clone())
        .unwrap_or_default();
    (
        waiting.reason.unwrap_or_default(),
        waiting.message.unwrap_or_default(),
    )
}

fn wall_clock() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    Timestamp::from_microsecond(i64::try_from(micros).unwrap()).unwrap()
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 1000.0
}

/// Runs passes until `main` waits with `reason`; returns that pass and when it ended.
async fn pass_until(run: &PodRun, reason: &str) -> (Pass, PodStatus, Timestamp) {
    wait_for(
        RETRY_DEADLINE,
        &format!("main to wait with {reason}"),
        || async {
            let (pass, status) = run.pass_report().await;
            (waiting(&status).0 == reason).then(|| (pass, status, wall_clock()))
        },
    )
    .await
}

#[tokio::test]
async fn an_invalid_image_name_is_invalid_image_name_and_not_retried() {
    let context = TestContext::new("image_invalid_name");
    let engine = Engine::new(None).await;
    let image = "systemk-Invalid_Name";
    let run = engine.run(pod(&context, "invalid", image));

    let (pass, status) = run.pass_report().await;
    let (reason, message) = waiting(&status);
    assert_eq!(reason, "InvalidImageName", "{message}");
    assert!(message.contains(image), "{message}");
    assert_eq!(
        pass.wake, None,
        "a name that cannot parse gets no retry timer"
    );
    // A pass woken by anything else does not try again either: same status, no timer.
    let (again, status_again) = run.pass_report().await;
    assert_eq!(again.wake, None);
    assert!(!again.status_changed);
    assert_eq!(waiting(&status_again), (reason, message));
    assert_eq!(run.units().await, []);

    run.finish().await;
}

#[tokio::test]
async fn a_missing_package_is_err_image_pull_then_image_pull_back_off_with_a_growing_delay() {
    let context = TestContext::new("image_missing_package");
    let engine = Engine::new(None).await;
    let missing = "systemk-no-such-package-backoff";
    let run = engine.run(pod(&context, "missing", missing));

    // The pass that tried shows ErrImagePull, with apt's answer.
    let (failed, status) = run.pass_report().await;
    let first_failure = wall_clock();
    let (reason, message) = waiting(&status);
    assert_eq!(reason, "ErrImagePull", "{message}");
    assert!(message.contains(missing), "{message}");
    assert!(failed.wake.is_some(), "a missing package is retried");

    // While the retry waits: ImagePullBackOff, keeping why, and the retry ~10 s after.
    let (backing, status, _) = pass_until(&run, "ImagePullBackOff").await;
    let (_, message) = waiting(&status);
    assert!(
        message.starts_with(&format!(
            "Back-off pulling image \"{missing}\": ErrImagePull: "
        )),
        "{message}"
    );
    let first_delay = seconds_between(first_failure, backing.wake.expect("a retry is due"));
    assert!(
        (8.0..=10.5).contains(&first_delay),
        "first retry after {first_delay} s"
    );

    // The retry pulls again and fails again; the next one waits twice as long.
    let (_, _, second_failure) = pass_until(&run, "ErrImagePull").await;
    assert!(
        seconds_between(first_failure, second_failure) >= 9.0,
        "not retried before its back-off"
    );
    let (backing, _, _) = pass_until(&run, "ImagePullBackOff").await;
    let second_delay = seconds_between(second_failure, backing.wake.expect("a retry is due"));
    assert!(
        (18.0..=20.5).contains(&second_delay),
        "second retry after {second_delay} s (first {first_delay} s)"
    );

    run.finish().await;
}
