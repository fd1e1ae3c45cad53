//! The probes of one pod, owned by its state between passes: one task per probe of each
//! container (see [`task`]), started once the container's unit exists, told what the
//! container looks like at every pass, and dropped with the container or the pod
//! (dropping the [`JoinSet`] aborts them). What the tasks find comes back as one watched
//! value per probe, read by the pass, and as a wake of the pod (its unit's name on the
//! reconciler's bounded channel) when it changes. Layer 4.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::effect::{self, Probed};
use super::exec::Runner;
use super::plan::{Kind, Plan};
use super::task::{self, Observed, Report, Target};
use super::verdict::{Change, Seen, initial};
use crate::pod::metrics::{PodMetrics, ProbeCounter};
use crate::pod::progress::{EventKind, Progress};
use crate::pod::progress_channel::ProgressSender;
use crate::unit::UnitName;

/// Reports a probe task may queue before it waits for the pod's forwarder.
const REPORTS: usize = 4;

/// What the probes of a pod reach out with.
#[derive(Clone)]
pub struct Wiring {
    /// Runs exec probes in the container's context.
    pub runner: Arc<dyn Runner>,
    /// Wakes the pod's pass: the reconciler reads unit names from it.
    pub wakes: mpsc::Sender<UnitName>,
    /// Where `Unhealthy` events go.
    pub events: Option<ProgressSender>,
    /// The pod's IP (the node's): the host of probes that name none.
    pub pod_ip: String,
    /// Where attempts are counted.
    pub metrics: PodMetrics,
}

/// What one container looks like to its probes at a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sight {
    /// Its run: the restart count.
    pub run: u32,
    /// How long the current run has been running; `None` when it does not run.
    pub running_for: Option<Duration>,
}

/// The last result a probe task published: for which run, and whether it asks for a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Published {
    run: u32,
    reported: Option<bool>,
    kill: bool,
}

/// The probes of one pod.
#[derive(Debug, Default)]
pub struct PodProbes {
    containers: HashMap<String, ContainerProbes>,
}

#[derive(Debug)]
struct ContainerProbes {
    observed: watch::Sender<Observed>,
    published: Vec<(Kind, watch::Receiver<Published>)>,
    /// The run a probe last killed, so one failure kills once.
    killed_run: Option<u32>,
    tasks: JoinSet<()>,
    /// One per probe, to drop their series with them.
    counters: Vec<ProbeCounter>,
}

impl Drop for ContainerProbes {
    fn drop(&mut self) {
        for counter in &self.counters {
            counter.forget();
        }
    }
}

impl PodProbes {
    /// Starts the probes of `container` (unit `unit`) unless they run, and tells them
    /// what it looks like now.
    pub fn sync(
        &mut self,
        wiring: &Wiring,
        pod: &Arc<Pod>,
        container: &str,
        unit: &UnitName,
        plans: impl FnOnce() -> Vec<Plan>,
        sight: Sight,
    ) {
        let probes = match self.containers.entry(container.to_owned()) {
            Entry::Occupied(probes) => probes.into_mut(),
            Entry::Vacant(vacant) => {
                let plans = plans();
                if plans.is_empty() {
                    return;
                }
                vacant.insert(ContainerProbes::start(
                    wiring, pod, container, unit, plans, sight,
                ))
            }
        };
        probes.reap(container);
        let seen = Seen {
            running_for: sight.running_for,
            started: probes.started(sight),
        };
        probes.observed.send_if_modified(|observed| {
            let now = Observed {
                run: sight.run,
                seen,
            };
            std::mem::replace(observed, now) != now
        });
    }

    /// Stops probing containers other than `keep` (gone from the spec, or done for good).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.containers.retain(|name, _| keep(name));
    }

    /// What the probes of `container` report for its run `run`.
    pub fn probed(&self, container: &str, run: u32) -> Probed {
        let Some(probes) = self.containers.get(container) else {
            return Probed::default();
        };
        Probed {
            readiness: probes.result(Kind::Readiness, run),
            startup: probes.result(Kind::Startup, run),
        }
    }

    /// The probe that asks to kill the run `run` of `container`, the first time it asks.
    pub fn take_kill(&mut self, container: &str, run: u32) -> Option<Kind> {
        let probes = self.containers.get_mut(container)?;
        if probes.killed_run == Some(run) {
            return None;
        }
        let kind = probes.published.iter().find_map(|(kind, published)| {
            let published = *published.borrow();
            (published.kill && published.run == run).then_some(*kind)
        })?;
        probes.killed_run = Some(run);
        Some(kind)
    }
}

impl ContainerProbes {
    fn start(
        wiring: &Wiring,
        pod: &Arc<Pod>,
        container: &str,
        unit: &UnitName,
        plans: Vec<Plan>,
        sight: Sight,
    ) -> Self {
        let (observed, watching) = watch::channel(Observed {
            run: sight.run,
            seen: Seen {
                running_for: sight.running_for,
                started: !plans.iter().any(|plan| plan.kind == Kind::Startup),
            },
        });
        let mut tasks = JoinSet::new();
        let mut published = Vec::with_capacity(plans.len());
        let mut counters = Vec::with_capacity(plans.len());
        for plan in plans {
            let kind = plan.kind;
            let (publish, results) = watch::channel(Published {
                run: sight.run,
                reported: initial(kind),
                kill: false,
            });
            published.push((kind, results));
            let counter = wiring.metrics.probe_counter(kind.title(), pod, container);
            counters.push(counter.clone());
            let target = Target {
                unit: unit.as_str().to_owned(),
                pod_ip: wiring.pod_ip.clone(),
                runner: wiring.runner.clone(),
                counter,
            };
            let forward = Forward {
                publish,
                wakes: wiring.wakes.clone(),
                unit: unit.clone(),
                events: wiring.events.clone(),
                pod: pod.clone(),
            };
            tasks.spawn(probe(plan, target, watching.clone(), forward));
        }
        ContainerProbes {
            observed,
            published,
            killed_run: None,
            tasks,
            counters,
        }
    }

    /// Notices probe tasks that ended: each ends only when its container's watch closes,
    /// so one that ended while the container is probed could not build its client.
    fn reap(&mut self, container: &str) {
        while let Some(ended) = self.tasks.try_join_next() {
            if let Err(error) = ended {
                tracing::error!(container, %error, "a probe task failed");
            } else {
                tracing::warn!(container, "a probe task ended; see its earlier error");
            }
        }
    }

    fn result(&self, kind: Kind, run: u32) -> Option<Option<bool>> {
        let (_, published) = self.published.iter().find(|(k, _)| *k == kind)?;
        let published = *published.borrow();
        Some(if published.run == run {
            published.reported
        } else {
            initial(kind)
        })
    }

    fn started(&self, sight: Sight) -> bool {
        effect::started(
            sight.running_for.is_some(),
            self.result(Kind::Startup, sight.run),
        )
    }
}

/// Carries one probe task's reports out of it: results to the pass, events to the
/// pod's event stream.
struct Forward {
    publish: watch::Sender<Published>,
    wakes: mpsc::Sender<UnitName>,
    unit: UnitName,
    events: Option<ProgressSender>,
    pod: Arc<Pod>,
}

/// One probe: the task and its forwarder, which ends when the task drops its sender.
async fn probe(plan: Plan, target: Target, observed: watch::Receiver<Observed>, out: Forward) {
    let (reports, mut received) = mpsc::channel(REPORTS);
    let forward = async {
        while let Some(report) = received.recv().await {
            out.deliver(report).await;
        }
    };
    tokio::join!(task::run(plan, target, observed, reports), forward);
}

impl Forward {
    async fn deliver(&self, report: Report) {
        match report {
            Report::Changed {
                change, run, kind, ..
            } => {
                let published = match change {
                    Change::None => return,
                    Change::Became(result) => Published {
                        run,
                        reported: Some(result),
                        kill: false,
                    },
                    Change::Kill => Published {
                        run,
                        reported: Some(false),
                        kill: true,
                    },
                };
                tracing::debug!(unit = %self.unit, probe = kind.lower(), ?change, "probe result");
                self.publish.send_replace(published);
                // The reconciler gone means systemk stops: nothing to wake.
                let _ = self.wakes.send(self.unit.clone()).await;
            }
            Report::Remark { kind, outcome } => {
                let (reason, message) = effect::remark(kind, &outcome);
                if let Some(events) = &self.events {
                    events.send(Progress::Event {
                        pod: self.pod.clone(),
                        reason,
                        message,
                        type_: EventKind::Warning,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "set/tests.rs"]
mod tests;
