//! What preparing a pod's units produced: the pod they were made from, why containers
//! could not be prepared, what their images resolved to and whom their units run as, and
//! the back-off of a preparation that left problems. Pure: the time comes in. Layer 4.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::pod::failure::{self, EventText};
use crate::pod::status::Problem;

/// The retry time of a failed preparation that is not retried.
const NEVER: Timestamp = Timestamp::MAX;

/// Whether a pass prepares the pod's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrepareDecision {
    /// The units were prepared from this very pod.
    UpToDate,
    /// Preparing this pod failed; the retry is due then.
    RetryAt(Timestamp),
    /// Preparing this pod failed in a way no retry heals: it waits for the pod, or an
    /// object it names, to change.
    StayFailed,
    /// The pod is new or changed, or its retry is due.
    Prepare,
}

/// What preparing a pod's units produced.
#[derive(Debug, Default)]
pub(crate) struct PrepareState {
    /// The pod its units were last prepared from, once preparing fully succeeded.
    applied: Option<Arc<Pod>>,
    /// Preparations that failed in a row, for the retry back-off.
    failed_prepares: u32,
    /// The pod the last preparation that left problems worked on, and when it may be
    /// tried again: passes woken by other events before then do not retry it.
    failed_prepare: Option<(Arc<Pod>, Timestamp)>,
    /// Why containers could not be prepared, by container name.
    problems: HashMap<String, Problem>,
    /// What each container's image resolved to.
    image_ids: HashMap<String, String>,
    /// The `(uid, gid)` each container's unit runs as (`None`: unknown), for the owner
    /// of volume files.
    identities: HashMap<String, Option<(u32, u32)>>,
}

impl PrepareState {
    /// Whether a pass at `now` prepares `pod`.
    pub(crate) fn decision(&self, pod: &Arc<Pod>, now: Timestamp) -> PrepareDecision {
        prepare_decision(
            self.applied.as_ref(),
            self.failed_prepare.as_ref(),
            pod,
            now,
        )
    }

    /// The pod the units were last fully prepared from (or are being removed for).
    pub(crate) fn applied(&self) -> Option<&Arc<Pod>> {
        self.applied.as_ref()
    }

    /// The pod's units now stand for `pod`: it is being deleted, and stopping them
    /// follows its grace period.
    pub(crate) fn applied_to(&mut self, pod: &Arc<Pod>) {
        self.applied = Some(pod.clone());
    }

    /// A unit may be gone or broken behind systemk's back: the next pass prepares the pod
    /// again, which writes what is missing.
    pub(crate) fn forget_applied(&mut self) {
        self.applied = None;
    }

    /// A failed preparation is retried at the next pass, not after its back-off.
    pub(crate) fn retry_now(&mut self) {
        self.failed_prepare = None;
    }

    /// A preparation begins: the problems of the last one are forgotten.
    pub(crate) fn begin(&mut self) {
        self.problems.clear();
    }

    /// While a pull's retry waits, its container shows `ImagePullBackOff`; returns the
    /// events that tell of it.
    pub(crate) fn show_back_off(&mut self, images: &[(&str, &str)]) -> Vec<EventText> {
        let mut events = Vec::new();
        for &(container, image) in images {
            let Some(backing) = self
                .problems
                .get(container)
                .and_then(|problem| failure::backing_off(problem, image))
            else {
                continue;
            };
            events.extend(failure::failure_events(&backing, image));
            self.problems.insert(container.to_owned(), backing);
        }
        events
    }

    /// `container` cannot be prepared, or started, for this reason.
    pub(crate) fn add_problem(&mut self, container: impl Into<String>, problem: Problem) {
        self.problems.insert(container.into(), problem);
    }

    /// Why `container` could not be prepared, if so.
    pub(crate) fn problem(&self, container: &str) -> Option<&Problem> {
        self.problems.get(container)
    }

    /// The unit of `container` was built: its image resolved to `image_id`, and it runs
    /// as `identity`.
    pub(crate) fn built(
        &mut self,
        container: &str,
        image_id: String,
        identity: Option<(u32, u32)>,
    ) {
        self.image_ids.insert(container.to_owned(), image_id);
        self.identities.insert(container.to_owned(), identity);
    }

    /// What the image of `container` resolved to, when known.
    pub(crate) fn image_id(&self, container: &str) -> Option<&str> {
        self.image_ids.get(container).map(String::as_str)
    }

    /// Whom each container's unit runs as, by container name.
    pub(crate) fn identities(&self) -> &HashMap<String, Option<(u32, u32)>> {
        &self.identities
    }

    /// The preparation of `pod` ran to its end: without problems, the units now stand
    /// for `pod`; with some, it counts as failed.
    pub(crate) fn finish(&mut self, pod: &Arc<Pod>) {
        if self.problems.is_empty() {
            self.applied = Some(pod.clone());
            self.failed_prepares = 0;
        } else {
            self.abandon();
        }
    }

    /// The preparation stopped early (the pod's directories could not be made).
    pub(crate) fn abandon(&mut self) {
        self.failed_prepares = self.failed_prepares.saturating_add(1);
    }

    /// After a preparation of `pod`: when the next pass is due if it left problems.
    /// Problems that may heal are retried after the back-off (and until then passes do
    /// not prepare the same pod again); problems that cannot wait for the pod, or an
    /// object it names, to change, instead of spinning on a timer. A failed pull asks
    /// for one more pass that shows its back-off.
    pub(crate) fn retry_after(&mut self, pod: &Arc<Pod>, now: Timestamp) -> Option<Timestamp> {
        self.failed_prepare = None;
        if self.problems.is_empty() {
            return None;
        }
        let retry_at = failure::prepare_retry(self.problems.values(), self.failed_prepares)
            .and_then(|delay| now.saturating_add(delay).ok());
        self.failed_prepare = Some((pod.clone(), retry_at.unwrap_or(NEVER)));
        let shown = failure::shows_back_off(self.problems.values())
            .then(|| now.saturating_add(failure::BACK_OFF_SHOWN_AFTER).ok())
            .flatten();
        [retry_at, shown].into_iter().flatten().min()
    }
}

/// Decides whether to prepare `pod`, given the pod its units were last fully prepared
/// from and the last preparation that left problems (with its retry time).
fn prepare_decision(
    applied: Option<&Arc<Pod>>,
    failed: Option<&(Arc<Pod>, Timestamp)>,
    pod: &Arc<Pod>,
    now: Timestamp,
) -> PrepareDecision {
    if applied.is_some_and(|applied| applied == pod) {
        return PrepareDecision::UpToDate;
    }
    match failed {
        Some((failed, retry_at)) if failed == pod && *retry_at == NEVER => {
            PrepareDecision::StayFailed
        }
        Some((failed, retry_at)) if failed == pod && now < *retry_at => {
            PrepareDecision::RetryAt(*retry_at)
        }
        _ => PrepareDecision::Prepare,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::status::WaitingReason;

    fn pod(image: &str) -> Arc<Pod> {
        let container = k8s_openapi::api::core::v1::Container {
            name: "main".into(),
            image: Some(image.into()),
            ..Default::default()
        };
        Arc::new(Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![container],
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn a_new_pod_is_prepared() {
        assert_eq!(
            prepare_decision(None, None, &pod("a"), at(0)),
            PrepareDecision::Prepare
        );
    }

    #[test]
    fn an_applied_pod_is_not_prepared_again() {
        let applied = pod("a");
        assert_eq!(
            prepare_decision(Some(&pod("a")), None, &applied, at(0)),
            PrepareDecision::UpToDate
        );
        assert_eq!(
            prepare_decision(Some(&pod("a")), None, &pod("b"), at(0)),
            PrepareDecision::Prepare
        );
    }

    #[test]
    fn a_failed_preparation_waits_for_its_retry() {
        let failed = (pod("bad"), at(10));
        assert_eq!(
            prepare_decision(None, Some(&failed), &pod("bad"), at(5)),
            PrepareDecision::RetryAt(at(10))
        );
        assert_eq!(
            prepare_decision(None, Some(&failed), &pod("bad"), at(10)),
            PrepareDecision::Prepare
        );
    }

    #[test]
    fn a_changed_pod_does_not_wait_for_the_failed_ones_retry() {
        let failed = (pod("bad"), at(10));
        assert_eq!(
            prepare_decision(None, Some(&failed), &pod("fixed"), at(5)),
            PrepareDecision::Prepare
        );
    }

    #[test]
    fn a_permanent_failure_stays_failed_until_the_pod_changes() {
        let failed = (pod("bad name"), NEVER);
        assert_eq!(
            prepare_decision(None, Some(&failed), &pod("bad name"), at(1_000_000)),
            PrepareDecision::StayFailed
        );
        assert_eq!(
            prepare_decision(None, Some(&failed), &pod("fixed"), at(5)),
            PrepareDecision::Prepare
        );
    }

    fn problem() -> Problem {
        Problem {
            reason: WaitingReason::CreateContainerError,
            message: "no such unit".into(),
            transient: true,
        }
    }

    #[test]
    fn a_permanent_problem_is_not_retried_and_a_failed_pull_shows_its_back_off() {
        let bad = pod("bad name");
        let mut state = PrepareState::default();
        state.begin();
        let invalid = Problem {
            reason: WaitingReason::InvalidImageName,
            message: "invalid".into(),
            transient: false,
        };
        state.add_problem("main", invalid);
        state.finish(&bad);
        assert_eq!(state.retry_after(&bad, at(0)), None);
        assert_eq!(state.decision(&bad, at(1_000)), PrepareDecision::StayFailed);

        let missing = pod("missing");
        state.begin();
        let pull = Problem {
            reason: WaitingReason::ErrImagePull,
            message: "no such package".into(),
            transient: true,
        };
        state.add_problem("main", pull);
        state.finish(&missing);
        assert_eq!(
            state.retry_after(&missing, at(0)),
            Some(at(5)),
            "shows the back-off"
        );
        assert_eq!(
            state.decision(&missing, at(5)),
            PrepareDecision::RetryAt(at(20)),
            "the second failure in a row waits 20 s"
        );
        let events = state.show_back_off(&[("main", "missing")]);
        assert_eq!(
            state.problem("main").map(|problem| problem.reason),
            Some(WaitingReason::ImagePullBackOff)
        );
        assert!(events.iter().any(|(_, reason, _)| *reason == "BackOff"));
    }

    #[test]
    fn failed_preparations_back_off_and_a_clean_one_applies() {
        let bad = pod("bad");
        let mut state = PrepareState::default();
        state.begin();
        state.add_problem("main", problem());
        state.finish(&bad);
        assert_eq!(state.retry_after(&bad, at(0)), Some(at(10)));
        assert_eq!(
            state.decision(&bad, at(5)),
            PrepareDecision::RetryAt(at(10))
        );
        state.begin();
        state.add_problem("main", problem());
        state.finish(&bad);
        assert_eq!(state.retry_after(&bad, at(10)), Some(at(30)), "doubles");
        state.retry_now();
        assert_eq!(state.decision(&bad, at(11)), PrepareDecision::Prepare);
        state.begin();
        state.finish(&bad);
        assert_eq!(state.retry_after(&bad, at(12)), None);
        assert_eq!(state.decision(&bad, at(12)), PrepareDecision::UpToDate);
        assert!(state.problem("main").is_none());
        state.forget_applied();
        assert_eq!(state.decision(&bad, at(12)), PrepareDecision::Prepare);
    }

    #[test]
    fn an_abandoned_preparation_counts_as_failed() {
        let bad = pod("bad");
        let mut state = PrepareState::default();
        state.begin();
        state.add_problem("main", problem());
        state.abandon();
        assert_eq!(state.retry_after(&bad, at(0)), Some(at(10)));
        assert!(state.applied().is_none());
    }
}
