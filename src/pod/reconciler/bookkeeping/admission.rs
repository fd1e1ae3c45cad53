//! Admission in the bookkeeping: which desired pods were admitted, in the kubelet's order,
//! and what a refused pod is told. The decisions are [`crate::pod::admission`]'s. No I/O.
//! Layer 4.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::Bookkeeping;
use crate::pod::admission::{self, NodeView, Rejection};
use crate::pod::desired::SourceId;
use crate::pod::fields;
use crate::pod::progress::{EventKind, Progress};
use crate::pod::qos::{QosClass, pod_qos_class};
use crate::pod::worker::PodState;
use crate::unit;

impl Bookkeeping {
    /// Admits the desired pods that need a pass and were never admitted, as the kubelet
    /// does at pod add: pods found running on the machine first, without checks; then
    /// the others oldest first, each against `node` and the pods admitted before it that
    /// have not finished. A pod refused gets the kubelet's `Failed` status (started at
    /// `now`) and a Warning event, and never a pass but its termination; one whose
    /// object already says it finished (refused before systemk restarted) stays as it is.
    /// A pod admitted with fields systemk ignores gets one Warning event naming them.
    pub(in crate::pod::reconciler) fn admit_new(&mut self, node: &NodeView, now: Timestamp) {
        let undecided: Vec<String> = self
            .dirty
            .iter()
            .filter(|uid| !self.admitted.contains(*uid) && !self.refused.contains(*uid))
            .filter(|uid| self.desired.get(uid).is_some())
            .cloned()
            .collect();
        let (found, mut new): (Vec<String>, Vec<String>) = undecided
            .into_iter()
            .partition(|uid| self.states.contains_key(uid) || self.running.contains(uid));
        self.admitted.extend(found);
        new.sort_by_key(|uid| {
            let created = self
                .desired
                .get(uid)
                .and_then(|pod| pod.metadata.creation_timestamp.as_ref())
                .map(|time| time.0);
            (created, uid.clone())
        });
        for uid in new {
            let Some(pod) = self.desired.get(&uid).cloned() else {
                continue;
            };
            if pod.metadata.deletion_timestamp.is_some() {
                // Its termination pass runs; there is nothing to admit.
                continue;
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Failed" | "Succeeded")) {
                self.refused.insert(uid);
                continue;
            }
            let is_static = self.desired.source_of(&uid) == Some(SourceId::File);
            if !is_static && !node.from_api {
                // Decided once the Node is known; it stays dirty until then.
                continue;
            }
            let others = self.active_admitted();
            match admission::admit(&pod, is_static, &others, node) {
                Ok(()) => {
                    self.warn_ignored(&pod);
                    self.admitted.insert(uid);
                }
                Err(rejection) => {
                    self.reject(&pod, rejection, now);
                    self.refused.insert(uid);
                }
            }
        }
        let refused = &self.refused;
        let desired = &self.desired;
        self.dirty.retain(|uid| {
            !refused.contains(uid)
                || desired
                    .get(uid)
                    .is_none_or(|pod| pod.metadata.deletion_timestamp.is_some())
        });
        self.refused.retain(|uid| desired.get(uid).is_some());
        let (states, running) = (&self.states, &self.running);
        self.admitted.retain(|uid| {
            desired.get(uid).is_some() || states.contains_key(uid) || running.contains(uid)
        });
    }

    /// The admitted desired pods that have not finished: what a new pod must fit next to.
    fn active_admitted(&self) -> Vec<&Pod> {
        self.admitted
            .iter()
            .filter_map(|uid| Some((uid, self.desired.get(uid)?)))
            .filter(|(uid, _)| {
                let phase = self
                    .states
                    .get(*uid)
                    .and_then(PodState::status)
                    .and_then(|status| status.phase.as_deref());
                !matches!(phase, Some("Failed" | "Succeeded"))
            })
            .map(|(_, pod)| pod.as_ref())
            .collect()
    }

    /// The CPU the active Burstable pods request in all (millicores, `overhead`
    /// included), which the kubelet's QoS manager gives the Burstable tier as its weight;
    /// `None` until every source sent its pods, so a partial set never lowers it.
    pub(in crate::pod::reconciler) fn burstable_cpu_millis(&self) -> Option<u64> {
        if !self.desired.is_synced() {
            return None;
        }
        let millis = self
            .active_admitted()
            .into_iter()
            .filter(|pod| pod_qos_class(pod) == QosClass::Burstable)
            .filter_map(|pod| unit::pod_cpu_request_millis(pod.spec.as_ref()?).ok())
            .fold(0, u64::saturating_add);
        Some(millis)
    }

    /// Tells once, when the pod is admitted, which fields systemk ignores and what it does
    /// instead: one Warning event (for a static pod, whose events the API may not take,
    /// the warn log says it too). Pods found running at start were told before.
    fn warn_ignored(&self, pod: &Arc<Pod>) {
        let Some(message) = fields::review(pod).warning() else {
            return;
        };
        tracing::warn!(pod_uid = ?pod.metadata.uid, namespace = ?pod.metadata.namespace,
            name = ?pod.metadata.name, reason = fields::UNSUPPORTED_FIELD, %message,
            "pod asks for fields systemk ignores");
        self.progress.send(Progress::Event {
            pod: pod.clone(),
            reason: fields::UNSUPPORTED_FIELD,
            message,
            type_: EventKind::Warning,
        });
    }

    /// Tells of a pod refused at admission as the kubelet's `rejectPod`: a Warning event
    /// with the reason, and the status `Failed` with reason and message.
    fn reject(&self, pod: &Arc<Pod>, rejection: Rejection, now: Timestamp) {
        tracing::warn!(pod_uid = ?pod.metadata.uid, namespace = ?pod.metadata.namespace,
            name = ?pod.metadata.name, reason = rejection.reason, message = %rejection.message,
            "pod refused at admission");
        self.progress.send(Progress::Event {
            pod: pod.clone(),
            reason: rejection.reason,
            message: rejection.message.clone(),
            type_: EventKind::Warning,
        });
        let mut with_status = Pod::clone(pod);
        with_status.status = Some(PodStatus {
            phase: Some("Failed".to_owned()),
            reason: Some(rejection.reason.to_owned()),
            message: Some(format!("Pod was rejected: {}", rejection.message)),
            qos_class: Some(pod_qos_class(pod).as_str().to_owned()),
            start_time: Some(Time(now)),
            ..PodStatus::default()
        });
        self.progress.send(Progress::Status(Arc::new(with_status)));
    }
}
