//! The kubelet prober worker's state machine (pkg/kubelet/prober/worker.go `doProbe`),
//! without clock or I/O: when to attempt, how attempts add up to a result through the
//! thresholds, and when a failure kills the container. Pure. Layer 4.

use std::time::Duration;

use super::plan::{Kind, Plan};

/// What the container looks like when an attempt is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// How long the current run of the container has been running; `None` if not running.
    pub running_for: Option<Duration>,
    /// Whether its startup probe succeeded (true when it has none).
    pub started: bool,
}

/// What one attempt changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The reported result is the same as before: nobody needs waking.
    None,
    /// The reported result turned to this (true = success).
    Became(bool),
    /// A liveness or startup probe reached its failure threshold: kill the container.
    /// The worker holds until the container runs again.
    Kill,
}

/// One probe of one container: the kubelet worker's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    kind: Kind,
    success_threshold: u32,
    failure_threshold: u32,
    initial_delay: Duration,
    /// The result the status shows; `None` is the kubelet's `Unknown`.
    reported: Option<bool>,
    /// The last attempt's result and how many attempts in a row gave it.
    last: Option<bool>,
    run: u32,
    /// After a kill, no attempts until the container restarts.
    on_hold: bool,
}

impl Verdict {
    /// A fresh worker, with the kubelet's initial values: readiness failed until its
    /// first success, liveness successful, startup unknown.
    pub fn new(plan: &Plan) -> Self {
        Verdict {
            kind: plan.kind,
            success_threshold: plan.success_threshold,
            failure_threshold: plan.failure_threshold,
            initial_delay: plan.initial_delay,
            reported: initial(plan.kind),
            last: None,
            run: 0,
            on_hold: false,
        }
    }

    /// The result the container's status shows (`None`: not yet known).
    pub fn reported(&self) -> Option<bool> {
        self.reported
    }

    /// The container runs again (a new run after a restart): back to the initial value.
    pub fn restarted(&mut self) {
        self.reported = initial(self.kind);
        self.last = None;
        self.run = 0;
        self.on_hold = false;
    }

    /// Whether an attempt runs now. A stopped container fails readiness, as the
    /// kubelet's `Non-running container probed`; the startup probe gates the others.
    pub fn due(&mut self, seen: Seen) -> (bool, Change) {
        let Some(running_for) = seen.running_for else {
            let change = self.report(false);
            return (false, change);
        };
        let gated = match self.kind {
            Kind::Startup => seen.started,
            Kind::Liveness | Kind::Readiness => !seen.started,
        };
        let attempt = !self.on_hold && !gated && running_for >= self.initial_delay;
        (attempt, Change::None)
    }

    /// One attempt's result through the thresholds.
    pub fn record(&mut self, success: bool) -> Change {
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let threshold = if success {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run < threshold {
            return Change::None;
        }
        let change = self.report(success);
        if !success && self.kind.kills() {
            self.on_hold = true;
            self.run = 0;
            return Change::Kill;
        }
        change
    }

    fn report(&mut self, success: bool) -> Change {
        if self.reported == Some(success) {
            return Change::None;
        }
        self.reported = Some(success);
        Change::Became(success)
    }
}

/// The result a probe shows before its first verdict on a run of its container: readiness
/// failed, liveness successful, startup unknown (the kubelet's `initialValue`).
pub fn initial(kind: Kind) -> Option<bool> {
    match kind {
        Kind::Readiness => Some(false),
        Kind::Liveness => Some(true),
        Kind::Startup => None,
    }
}

#[cfg(test)]
#[path = "verdict/tests.rs"]
mod tests;
