//! `exec`: a command in the container's context (its user, groups, mount namespace,
//! cgroup and environment). Running it is the job of the `systemd` layer's
//! `run_in_unit`; this module only turns how it ended into the kubelet's result, so the
//! runner is a value the probe worker is given. Layer 4.

use std::time::Duration;

use futures::future::BoxFuture;

use super::outcome::{MAX_OUTPUT, Outcome, text};

/// How the command ended, as `run_in_unit` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
    /// It outlived the probe's timeout and was killed.
    TimedOut,
}

/// Runs `argv` in the context of `unit`, killed after `timeout`, keeping at most
/// `max_output` bytes of its output. `Err` is a failure to run it at all.
pub trait Runner: Send + Sync {
    /// One run.
    fn run(
        &self,
        unit: &str,
        argv: &[String],
        timeout: Duration,
        max_output: usize,
    ) -> BoxFuture<'static, Result<(Ended, Vec<u8>), String>>;
}

/// The runner of a build where commands cannot run in a container's context: every
/// exec probe fails with a message saying so, never passes silently.
pub struct Unavailable;

impl Runner for Unavailable {
    fn run(
        &self,
        _: &str,
        _: &[String],
        _: Duration,
        _: usize,
    ) -> BoxFuture<'static, Result<(Ended, Vec<u8>), String>> {
        Box::pin(async {
            Ok((
                Ended::Exited(126),
                b"exec probes are not available: this systemk cannot run commands in a container"
                    .to_vec(),
            ))
        })
    }
}

/// One attempt: exit 0 passes, anything else fails with the output (kubelet
/// `probe/exec`); a timeout fails with the kubelet's message.
pub async fn probe(runner: &dyn Runner, unit: &str, argv: &[String], timeout: Duration) -> Outcome {
    match runner.run(unit, argv, timeout, MAX_OUTPUT).await {
        Ok((Ended::Exited(0), output)) => Outcome::success(text(&output)),
        Ok((Ended::TimedOut, _)) => {
            Outcome::failure(format!("command {:?} timed out", argv.join(" ")))
        }
        Ok((_, output)) => Outcome::failure(text(&output)),
        Err(error) => Outcome::failure(format!("exec probe could not run: {error}")),
    }
}

#[cfg(test)]
#[path = "exec/tests.rs"]
mod tests;
