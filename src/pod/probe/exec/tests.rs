use std::sync::Mutex;

use super::*;
use crate::pod::probe::outcome::Result;

/// What the fake was asked: unit, argv, timeout, output bound.
type Asked = (String, Vec<String>, Duration, usize);

/// Answers with a fixed end and records what it was asked to run.
struct Fake {
    answer: std::result::Result<(Ended, Vec<u8>), String>,
    asked: Mutex<Vec<Asked>>,
}

impl Fake {
    fn new(answer: std::result::Result<(Ended, Vec<u8>), String>) -> Self {
        Fake {
            answer,
            asked: Mutex::new(Vec::new()),
        }
    }
}

impl Runner for Fake {
    fn run(
        &self,
        unit: &str,
        argv: &[String],
        timeout: Duration,
        max_output: usize,
    ) -> BoxFuture<'static, std::result::Result<(Ended, Vec<u8>), String>> {
        self.asked
            .lock()
            .unwrap()
            .push((unit.into(), argv.to_vec(), timeout, max_output));
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}

fn argv() -> Vec<String> {
    vec!["cat".into(), "/tmp/healthy".into()]
}

#[tokio::test]
async fn exit_zero_passes_and_the_runner_gets_the_units_context_and_bounds() {
    let fake = Fake::new(Ok((Ended::Exited(0), b"ok".to_vec())));
    let outcome = probe(&fake, "pod-x-main.service", &argv(), Duration::from_secs(2)).await;
    assert_eq!(outcome, Outcome::success("ok"));
    let asked = fake.asked.lock().unwrap();
    assert_eq!(
        asked[0],
        (
            "pod-x-main.service".into(),
            argv(),
            Duration::from_secs(2),
            MAX_OUTPUT
        )
    );
}

#[tokio::test]
async fn non_zero_signals_timeouts_and_errors_fail() {
    let cases = [
        (
            Ok((Ended::Exited(1), b"cat: no such file".to_vec())),
            "cat: no such file",
        ),
        (Ok((Ended::Signaled(9), b"".to_vec())), ""),
        (
            Ok((Ended::TimedOut, b"partial".to_vec())),
            "command \"cat /tmp/healthy\" timed out",
        ),
        (
            Err("no such unit".to_string()),
            "exec probe could not run: no such unit",
        ),
    ];
    for (answer, output) in cases {
        let outcome = probe(&Fake::new(answer), "u", &argv(), Duration::from_secs(1)).await;
        assert_eq!(outcome.result, Result::Failure);
        assert_eq!(outcome.output, output);
    }
}
