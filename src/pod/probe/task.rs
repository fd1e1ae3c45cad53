//! One probe of one container as a task: one timer, an attempt each period, results
//! through [`Verdict`], and a bounded channel to the pod's worker that carries a
//! result only when it changes (and the kubelet's `Unhealthy` remarks, best effort).
//! The task ends when the worker drops the container's [`watch`] sender or the
//! receiving end. Layer 4.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::{MissedTickBehavior, interval};

use super::exec::{self, Runner};
use super::outcome::{Outcome, Result};
use super::plan::{Action, Kind, Plan};
use super::verdict::{Change, Seen, Verdict};
use super::{grpc, http, tcp};
use crate::pod::metrics::ProbeCounter;

/// What the worker tells the probe about its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Which run of the container this is (its restart count): a new run resets the
    /// probe to its initial value.
    pub run: u32,
    /// Running time and whether it started.
    pub seen: Seen,
}

/// What the probe tells the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The probe's result changed, or a liveness/startup probe asks for a kill.
    Changed {
        /// Which probe.
        kind: Kind,
        /// What changed.
        change: Change,
        /// The run of the container the change is about.
        run: u32,
        /// The attempt that made it, for the `Killing` event.
        outcome: Option<Outcome>,
    },
    /// An attempt failed (`Unhealthy`, "Liveness probe failed: …") or passed with a
    /// warning (`ProbeWarning`).
    Remark {
        /// Which probe.
        kind: Kind,
        /// The attempt.
        outcome: Outcome,
    },
}

/// Where the probe reaches the container.
pub struct Target {
    /// The container's unit, for exec probes.
    pub unit: String,
    /// The pod's IP: the node's, on the host network. The host of probes without one.
    pub pod_ip: String,
    /// Runs exec probes in the container's context.
    pub runner: Arc<dyn Runner>,
    /// Counts the attempts (`prober_probe_total`).
    pub counter: ProbeCounter,
}

/// Runs until the container's watch or the report channel closes.
pub async fn run(
    plan: Plan,
    target: Target,
    mut observed: watch::Receiver<Observed>,
    reports: mpsc::Sender<Report>,
) {
    let handler = match Handler::new(&plan) {
        Ok(handler) => handler,
        Err(error) => {
            tracing::warn!(unit = %target.unit, kind = plan.kind.lower(), %error, "probe client");
            return;
        }
    };
    let mut verdict = Verdict::new(&plan);
    let mut run = observed.borrow().run;
    let mut ticks = interval(plan.period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = observed.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let now = *observed.borrow();
        if now.run != run {
            run = now.run;
            verdict.restarted();
        }
        let (attempt, change) = verdict.due(now.seen);
        if !send(&reports, plan.kind, change, run, None).await {
            return;
        }
        if !attempt {
            continue;
        }
        let outcome = handler.attempt(&plan, &target).await;
        target.counter.count(outcome.passed());
        if outcome.result != Result::Success {
            let remark = Report::Remark {
                kind: plan.kind,
                outcome: outcome.clone(),
            };
            // Remarks are events: dropped rather than waited for when the worker is behind.
            if let Err(mpsc::error::TrySendError::Closed(_)) = reports.try_send(remark) {
                return;
            }
        }
        let change = verdict.record(outcome.passed());
        if !send(&reports, plan.kind, change, run, Some(outcome)).await {
            return;
        }
    }
}

/// Sends a change, if any; false once the worker has gone.
async fn send(
    reports: &mpsc::Sender<Report>,
    kind: Kind,
    change: Change,
    run: u32,
    outcome: Option<Outcome>,
) -> bool {
    if change == Change::None {
        return true;
    }
    let report = Report::Changed {
        kind,
        change,
        run,
        outcome,
    };
    reports.send(report).await.is_ok()
}

/// The per-probe state an attempt needs: HTTP clients are built once.
enum Handler {
    Http(reqwest::Client),
    Grpc(reqwest::Client),
    Plain,
}

impl Handler {
    fn new(plan: &Plan) -> reqwest::Result<Self> {
        Ok(match plan.action {
            Action::Http { .. } => Handler::Http(http::client(plan.timeout)?),
            Action::Grpc { .. } => Handler::Grpc(grpc::client(plan.timeout)?),
            Action::Exec { .. } | Action::Tcp { .. } => Handler::Plain,
        })
    }

    async fn attempt(&self, plan: &Plan, target: &Target) -> Outcome {
        let host = |host: &Option<String>| host.clone().unwrap_or_else(|| target.pod_ip.clone());
        match (&plan.action, self) {
            (Action::Exec { argv }, _) => {
                exec::probe(target.runner.as_ref(), &target.unit, argv, plan.timeout).await
            }
            (Action::Tcp { host: h, port }, _) => tcp::probe(&host(h), *port, plan.timeout).await,
            (
                Action::Http {
                    scheme,
                    host: h,
                    port,
                    path,
                    headers,
                },
                Handler::Http(client),
            ) => {
                let host = host(h);
                let request = http::Request {
                    scheme: *scheme,
                    host: &host,
                    port: *port,
                    path,
                    headers,
                };
                http::probe(client, &request).await
            }
            (Action::Grpc { port, service }, Handler::Grpc(client)) => {
                grpc::probe(client, &target.pod_ip, *port, service).await
            }
            _ => Outcome::failure("probe handler does not match its action"),
        }
    }
}

#[cfg(test)]
#[path = "task/tests.rs"]
mod tests;
