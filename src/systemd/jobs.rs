//! systemd jobs: what a finished job reports, and waiting for one. A job's completion is
//! the `JobRemoved` signal, so callers subscribe to it before they enqueue the job.

use std::fmt;

use futures::StreamExt;
use zbus::OwnedObjectPath;

use super::error::{Error, Result};
use super::proxy::JobRemovedStream;

/// How a job (start, stop, restart) ended, from `JobRemoved`'s `result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// The job completed: the unit reached the requested state.
    Done,
    /// Another job replaced it before it completed.
    Canceled,
    /// The unit's own timeout (e.g. `TimeoutStartSec`) expired.
    Timeout,
    /// The unit failed, e.g. its `ExecStart` could not run.
    Failed,
    /// A unit it depends on failed.
    Dependency,
    /// Nothing to do for this unit type and state.
    Skipped,
    /// Another result (`invalid`, `assert`, `unsupported`, `collected`, `once`, ...).
    Other(String),
}

impl JobResult {
    /// Maps systemd's string.
    pub fn parse(result: &str) -> Self {
        match result {
            "done" => Self::Done,
            "canceled" => Self::Canceled,
            "timeout" => Self::Timeout,
            "failed" => Self::Failed,
            "dependency" => Self::Dependency,
            "skipped" => Self::Skipped,
            other => Self::Other(other.to_owned()),
        }
    }

    /// systemd's string for this result.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Done => "done",
            Self::Canceled => "canceled",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
            Self::Dependency => "dependency",
            Self::Skipped => "skipped",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job systemd accepted, with the `JobRemoved` subscription made before it was
/// enqueued (so its end cannot be missed).
pub(super) struct PendingJob {
    /// The D-Bus method that enqueued it, e.g. `StopUnit`.
    operation: &'static str,
    unit: String,
    removed: JobRemovedStream,
    path: OwnedObjectPath,
}

impl PendingJob {
    pub(super) fn new(
        operation: &'static str,
        unit: &str,
        removed: JobRemovedStream,
        path: OwnedObjectPath,
    ) -> Self {
        Self {
            operation,
            unit: unit.to_owned(),
            removed,
            path,
        }
    }

    /// Waits until the job is removed and returns its result. Cancel-safe: after a
    /// timeout around it, waiting again still sees the result.
    pub(super) async fn wait(&mut self) -> Result<JobResult> {
        while let Some(signal) = self.removed.next().await {
            let Ok(args) = signal.args() else { continue };
            if args.job == self.path {
                tracing::debug!(unit = %self.unit, operation = self.operation, result = %args.result, "job finished");
                return Ok(JobResult::parse(&args.result));
            }
        }
        Err(Error::JobWatchLost {
            operation: self.operation,
            unit: self.unit.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip() {
        for result in [
            "done",
            "canceled",
            "timeout",
            "failed",
            "dependency",
            "skipped",
            "once",
        ] {
            assert_eq!(JobResult::parse(result).as_str(), result);
        }
        assert_eq!(
            JobResult::parse("assert"),
            JobResult::Other("assert".into())
        );
    }
}
