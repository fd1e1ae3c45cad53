//! `exec`: a command in the container's context (its user, groups, mount namespace,
//! cgroup and environment). Running it is the job of the `systemd` layer's
//! `run_in_unit`; this module only turns how it ended into the kubelet's result, so the
//! runner is a value the probe worker is given ([`InUnit`], or a fake in tests). Layer 4.

use std::time::Duration;

use futures::future::BoxFuture;

use super::outcome::{MAX_OUTPUT, Outcome, text};
pub use crate::systemd::Ended;
use crate::systemd::{EnterCommand, run_in_unit};

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

/// The runner of a running systemk: `run_in_unit`, which enters the unit's cgroup and
/// namespaces with its credentials, reading the unit through `systemd`'s connection.
pub struct InUnit(pub crate::systemd::Systemd);

impl Runner for InUnit {
    fn run(
        &self,
        unit: &str,
        argv: &[String],
        timeout: Duration,
        max_output: usize,
    ) -> BoxFuture<'static, Result<(Ended, Vec<u8>), String>> {
        let (systemd, unit) = (self.0.clone(), unit.to_owned());
        let command = EnterCommand {
            argv: argv.to_vec(),
            timeout,
            max_output,
        };
        Box::pin(async move {
            run_in_unit(&systemd, &unit, command)
                .await
                .map(|outcome| (outcome.ended, outcome.output))
                .map_err(|error| crate::error_chain::Chain(&error).to_string())
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
