//! The owner of the agent's long-lived tasks (kubelet API, pod and manifest watches,
//! reconciler, eviction monitor, progress forwarder, status reporter, lease, node status).
//! Layer 7.
//!
//! Every task is spawned here with a name and a [`Stage`]; this type holds the join
//! handles, logs how each task ended ([`Outcome`]: returned, failed with its cause chain,
//! panicked, cancelled), and notices a task that ends before shutdown: that is always a
//! fault (each one runs until told to stop), logged at error and handed to the agent,
//! which then shuts down in order and exits non-zero, so that systemd (`Restart=on-failure`)
//! starts a fresh systemk. A kubelet whose pod watch died silently would look alive and
//! do nothing; a restart costs little, as pods run in their own units and are adopted.
//!
//! Shutdown goes stage by stage in the order of [`Stage`]: each stage is told to stop and
//! its tasks are awaited before the next stage is told, all under one grace period. A
//! stage still running when the grace is spent is cancelled (its tasks aborted); stages
//! after it still get [`STAGE_MINIMUM`] each to end on their own.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::Instant;

/// What each stage still gets to end on its own once the grace is spent: enough for a
/// task that only has to notice its stop signal.
pub(super) const STAGE_MINIMUM: Duration = Duration::from_millis(500);

/// When a task is told to stop, in shutdown order (the derived order is that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Stage {
    /// The sources of desired pods: first, so no new work arrives.
    Intake,
    /// The reconciler: it drains its in-flight passes, whose statuses still go out.
    Reconcile,
    /// Status reporting, lease and node status: after the last status was handed over.
    Report,
    /// The kubelet API: last, so logs stay readable to the end.
    Serve,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Intake, Stage::Reconcile, Stage::Report, Stage::Serve];
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// It returned `Ok`.
    Returned,
    /// It returned an error; its whole cause chain.
    Failed(String),
    /// It panicked; the panic message when there is one.
    Panicked(String),
    /// It was aborted: the grace ran out.
    Cancelled,
}

/// A task that ended, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ended {
    /// The name it was spawned with.
    pub name: &'static str,
    /// Its stage.
    pub stage: Stage,
    /// How it ended.
    pub outcome: Outcome,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Outcome::Returned => write!(f, "{} returned", self.name),
            Outcome::Failed(chain) => write!(f, "{} failed: {chain}", self.name),
            Outcome::Panicked(message) => write!(f, "{} panicked: {message}", self.name),
            Outcome::Cancelled => write!(f, "{} was cancelled", self.name),
        }
    }
}

/// A running task.
struct Running {
    name: &'static str,
    stage: Stage,
    abort: AbortHandle,
}

/// The agent's tasks; see the module documentation.
pub(super) struct Tasks {
    set: JoinSet<anyhow::Result<()>>,
    /// Each running task, by id.
    running: HashMap<Id, Running>,
    /// One stop signal per stage.
    stops: HashMap<Stage, watch::Sender<bool>>,
}

impl Tasks {
    /// No tasks yet.
    pub(super) fn new() -> Self {
        Self {
            set: JoinSet::new(),
            running: HashMap::new(),
            stops: Stage::ALL
                .into_iter()
                .map(|stage| (stage, watch::channel(false).0))
                .collect(),
        }
    }

    /// Completes when `stage` is told to stop; pass it to the stage's tasks.
    pub(super) fn stop_signal(&self, stage: Stage) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stops[&stage].subscribe();
        async move {
            // The sender lives as long as `self`; its loss also means stop.
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }

    /// Runs `task` as `name`, stopped with `stage`.
    pub(super) fn spawn(
        &mut self,
        name: &'static str,
        stage: Stage,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let abort = self.set.spawn(task);
        self.running
            .insert(abort.id(), Running { name, stage, abort });
    }

    /// Waits until `signal` completes (`None`), or until a task ends before it: that task
    /// is returned, after being logged at error.
    pub(super) async fn run_until(&mut self, signal: impl Future<Output = ()>) -> Option<Ended> {
        tokio::pin!(signal);
        tokio::select! {
            () = &mut signal => None,
            Some(done) = self.set.join_next_with_id() => {
                let ended = self.ended(done);
                tracing::error!(task = ended.name, outcome = %ended,
                    "a task of the agent ended unexpectedly; shutting down");
                Some(ended)
            }
        }
    }

    /// Stops the tasks stage by stage within `grace` (see the module documentation);
    /// returns how each ended, in the order they ended.
    pub(super) async fn shutdown(mut self, grace: Duration) -> Vec<Ended> {
        let deadline = Instant::now() + grace;
        let mut ended = Vec::new();
        for stage in Stage::ALL {
            self.stops[&stage].send_replace(true);
            let stage_deadline = deadline.max(Instant::now() + STAGE_MINIMUM);
            while self.running.values().any(|task| task.stage == stage) {
                match tokio::time::timeout_at(stage_deadline, self.set.join_next_with_id()).await {
                    Ok(Some(done)) => ended.push(self.log_stopped(done)),
                    Ok(None) => break,
                    Err(_) => {
                        self.abort(stage);
                        // Aborted tasks end at their next await; collect them.
                        while self.running.values().any(|task| task.stage == stage) {
                            match self.set.join_next_with_id().await {
                                Some(done) => ended.push(self.log_stopped(done)),
                                None => break,
                            }
                        }
                    }
                }
            }
        }
        ended
    }

    fn abort(&mut self, stage: Stage) {
        let late: Vec<&'static str> = self
            .running
            .values()
            .filter(|task| task.stage == stage)
            .map(|task| task.name)
            .collect();
        tracing::warn!(?stage, tasks = ?late, "the shutdown grace ran out; cancelling");
        for task in self.running.values().filter(|task| task.stage == stage) {
            task.abort.abort();
        }
    }

    fn log_stopped(&mut self, done: Result<(Id, anyhow::Result<()>), JoinError>) -> Ended {
        let ended = self.ended(done);
        match &ended.outcome {
            Outcome::Returned => tracing::info!(task = ended.name, "task stopped"),
            Outcome::Failed(_) | Outcome::Cancelled => {
                tracing::warn!(task = ended.name, outcome = %ended, "task stopped")
            }
            Outcome::Panicked(_) => {
                tracing::error!(task = ended.name, outcome = %ended, "task stopped")
            }
        }
        ended
    }

    fn ended(&mut self, done: Result<(Id, anyhow::Result<()>), JoinError>) -> Ended {
        let (id, outcome) = match done {
            Ok((id, Ok(()))) => (id, Outcome::Returned),
            Ok((id, Err(err))) => (id, Outcome::Failed(format!("{err:#}"))),
            Err(err) if err.is_cancelled() => (err.id(), Outcome::Cancelled),
            Err(err) => {
                let id = err.id();
                (id, Outcome::Panicked(panic_message(err.into_panic())))
            }
        };
        let (name, stage) = self
            .running
            .remove(&id)
            .map_or(("an unnamed task", Stage::Serve), |task| {
                (task.name, task.stage)
            });
        Ended {
            name,
            stage,
            outcome,
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "(no message)".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests;
