//! What the reconciler keeps about a pod between passes, split by concern: what preparing
//! its units produced ([`PrepareState`]), the files and tokens of its volumes
//! ([`VolumeState`]), and what runs ([`RunState`]). Each part owns its fields and is
//! changed only through its methods, so a pass's rules about them live in one place.
//! No I/O, no clock. Layer 4.

mod prepare;
mod run;
mod volumes;

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodStatus};

use tokio::sync::mpsc;

use super::metrics::PodMetrics;
use super::probe::exec::InUnit;
use super::probe::{PodProbes, Wiring};
use super::progress::{EventKind, Progress};
use super::progress_channel::ProgressSender;
use crate::systemd::Systemd;
use crate::unit::UnitName;

pub(crate) use prepare::{PrepareDecision, PrepareState};
pub(crate) use run::RunState;
pub(crate) use volumes::{HeldToken, VolumeFailures, VolumeState};

/// What the reconciler keeps about a pod between passes.
#[derive(Debug, Default)]
pub struct PodState {
    /// What preparing the pod's units produced.
    prepared: PrepareState,
    /// The pod's volume tokens and failures.
    volumes: VolumeState,
    /// Its units, restart machines, start time and last status.
    run: RunState,
    /// Where events about the pod go, when someone listens.
    events: Option<ProgressSender>,
    /// Whether its eviction was announced (the `Evicted` event sent).
    eviction_announced: bool,
    /// Its containers' probe tasks.
    probes: PodProbes,
    /// Where probes say that the pod needs a pass, when someone listens.
    probe_wakes: Option<mpsc::Sender<UnitName>>,
}

impl PodState {
    /// The state of a pod whose units already exist (found when systemk starts).
    pub fn adopted(units: impl IntoIterator<Item = UnitName>) -> Self {
        Self {
            run: RunState::adopted(units),
            ..Self::default()
        }
    }

    /// True the first time it is called: the pod's eviction is to be announced.
    pub(crate) fn announce_eviction(&mut self) -> bool {
        !std::mem::replace(&mut self.eviction_announced, true)
    }

    /// The units this pod has.
    pub fn units(&self) -> &BTreeSet<UnitName> {
        self.run.units()
    }

    /// The status computed last.
    pub fn status(&self) -> Option<&PodStatus> {
        self.run.status()
    }

    /// A configMap or secret the pod names changed: a preparation that failed retries at
    /// once instead of after its back-off (the object may be what it lacked).
    pub fn object_changed(&mut self) {
        self.prepared.retry_now();
    }

    /// Sends the pod's events (installing, started, killing…) to `progress`.
    pub fn report_events_to(&mut self, progress: ProgressSender) {
        self.events = Some(progress);
    }

    /// Probes wake the pod's pass through `wakes` (the reconciler's channel).
    pub fn wake_probes_through(&mut self, wakes: mpsc::Sender<UnitName>) {
        self.probe_wakes = Some(wakes);
    }

    /// What the pod's probes reach out with; `None` when nobody listens to their wakes.
    pub(crate) fn probe_wiring(
        &self,
        pod_ip: String,
        systemd: &Systemd,
        metrics: &PodMetrics,
    ) -> Option<Wiring> {
        Some(Wiring {
            runner: Arc::new(InUnit(systemd.clone())),
            wakes: self.probe_wakes.clone()?,
            events: self.events.clone(),
            pod_ip,
            metrics: metrics.clone(),
        })
    }

    /// Its containers' probes.
    pub(crate) fn probes_mut(&mut self) -> &mut PodProbes {
        &mut self.probes
    }

    /// Its containers' probes, to read.
    pub(crate) fn probes(&self) -> &PodProbes {
        &self.probes
    }

    /// Tells whoever listens of an event about `pod`.
    pub(crate) fn event(
        &self,
        pod: &Arc<Pod>,
        type_: EventKind,
        reason: &'static str,
        message: String,
    ) {
        if let Some(events) = &self.events {
            // A closed channel means nobody reports events; the pass goes on.
            let _ = events.send(Progress::Event {
                pod: pod.clone(),
                reason,
                message,
                type_,
            });
        }
    }

    /// What preparing the pod's units produced.
    pub(crate) fn prepared(&self) -> &PrepareState {
        &self.prepared
    }

    /// What preparing the pod's units produced, to change.
    pub(crate) fn prepared_mut(&mut self) -> &mut PrepareState {
        &mut self.prepared
    }

    /// The pod's volume tokens and failures.
    pub(crate) fn volumes(&self) -> &VolumeState {
        &self.volumes
    }

    /// The pod's volume tokens and failures, to change.
    pub(crate) fn volumes_mut(&mut self) -> &mut VolumeState {
        &mut self.volumes
    }

    /// What runs.
    pub(crate) fn run(&self) -> &RunState {
        &self.run
    }

    /// What runs, to change.
    pub(crate) fn run_mut(&mut self) -> &mut RunState {
        &mut self.run
    }
}
