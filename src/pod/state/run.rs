//! What runs of a pod: the units that exist, each container's restart state machine, when
//! systemk first worked on the pod and the status computed last. Pure. Layer 4.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::PodStatus;
use k8s_openapi::jiff::Timestamp;

use crate::pod::restart::ContainerRestarts;
use crate::unit::UnitName;

/// What runs of a pod.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    /// Units of this pod that exist.
    units: BTreeSet<UnitName>,
    /// Restart state machines by container name.
    restarts: HashMap<String, ContainerRestarts>,
    /// When systemk first worked on the pod.
    start_time: Option<Timestamp>,
    /// The status computed last.
    status: Option<PodStatus>,
    /// Whether the pod ran past its `activeDeadlineSeconds`: it stays failed and stopped.
    deadline_exceeded: bool,
}

impl RunState {
    /// A pod whose units already exist.
    pub(crate) fn adopted(units: impl IntoIterator<Item = UnitName>) -> Self {
        Self {
            units: units.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The units this pod has.
    pub(crate) fn units(&self) -> &BTreeSet<UnitName> {
        &self.units
    }

    /// Whether the unit `name` of this pod exists.
    pub(crate) fn has_unit(&self, name: &UnitName) -> bool {
        self.units.contains(name)
    }

    /// The pod's units are now exactly `units`.
    pub(crate) fn set_units(&mut self, units: BTreeSet<UnitName>) {
        self.units = units;
    }

    /// The pod's units are gone.
    pub(crate) fn clear_units(&mut self) {
        self.units.clear();
    }

    /// The restart machine of `container`, once it has one.
    pub(crate) fn restarts(&self, container: &str) -> Option<&ContainerRestarts> {
        self.restarts.get(container)
    }

    /// The restart machine of `container`, made by `resume` when it has none yet.
    pub(crate) fn restarts_or_resume(
        &mut self,
        container: &str,
        resume: impl FnOnce() -> ContainerRestarts,
    ) -> &mut ContainerRestarts {
        self.restarts
            .entry(container.to_owned())
            .or_insert_with(resume)
    }

    /// `container` starts over (its spec changed): its machine is dropped.
    pub(crate) fn forget_restarts(&mut self, container: &str) {
        self.restarts.remove(container);
    }

    /// When systemk first worked on the pod.
    pub(crate) fn start_time(&self) -> Option<Timestamp> {
        self.start_time
    }

    /// systemk works on the pod at `now`; the first time counts as its start.
    pub(crate) fn working_at(&mut self, now: Timestamp) {
        self.start_time.get_or_insert(now);
    }

    /// The status computed last.
    pub(crate) fn status(&self) -> Option<&PodStatus> {
        self.status.as_ref()
    }

    /// The status computed now.
    pub(crate) fn set_status(&mut self, status: PodStatus) {
        self.status = Some(status);
    }

    /// Whether the pod ran past its active deadline.
    pub(crate) fn deadline_exceeded(&self) -> bool {
        self.deadline_exceeded
    }

    /// The pod ran past its active deadline; returns whether that is news.
    pub(crate) fn exceed_deadline(&mut self) -> bool {
        !std::mem::replace(&mut self.deadline_exceeded, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::restart::{RestartPolicy, Role};

    #[test]
    fn the_first_work_is_the_start() {
        let mut run = RunState::default();
        let first = Timestamp::from_second(10).unwrap();
        run.working_at(first);
        run.working_at(Timestamp::from_second(20).unwrap());
        assert_eq!(run.start_time(), Some(first));
    }

    #[test]
    fn a_machine_is_made_once_and_forgotten_on_request() {
        let mut run = RunState::default();
        let fresh = || ContainerRestarts::new("app", RestartPolicy::Never, Role::App);
        run.restarts_or_resume("app", fresh);
        run.restarts_or_resume("app", || panic!("made twice"));
        assert!(run.restarts("app").is_some());
        run.forget_restarts("app");
        assert!(run.restarts("app").is_none());
    }
}
