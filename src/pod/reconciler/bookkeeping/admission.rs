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
    /// Only the dirty pods are looked at: the work of one new pod does not grow with the
    /// pods already admitted.
    pub(in crate::pod::reconciler) fn admit_new(&mut self, node: &NodeView, now: Timestamp) {
        let mut undecided = Vec::new();
        let mut refused_again = Vec::new();
        for uid in &self.dirty {
            let Some(pod) = self.desired.get(uid) else {
                continue;
            };
            if self.refused.contains(uid) {
                // Refused pods get no pass but their termination.
                if pod.metadata.deletion_timestamp.is_none() {
                    refused_again.push(uid.clone());
                }
            } else if !self.admitted.contains(uid) {
                undecided.push(uid.clone());
            }
        }
        for uid in refused_again {
            self.dirty.remove(&uid);
        }
        let (found, mut new): (Vec<String>, Vec<String>) = undecided
            .into_iter()
            .partition(|uid| self.states.contains_key(uid) || self.running.contains(uid));
        for uid in found {
            self.admitted.insert(uid.clone());
            self.recount(&uid);
        }
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
                self.dirty.remove(&uid);
                self.refused.insert(uid);
                continue;
            }
            let is_static = self.desired.source_of(&uid) == Some(SourceId::File);
            if !is_static && !node.from_api {
                // Decided once the Node is known; it stays dirty until then.
                continue;
            }
            match admission::admit(&pod, is_static, &self.usage, node) {
                Ok(()) => {
                    self.warn_ignored(&pod);
                    self.admitted.insert(uid.clone());
                    self.recount(&uid);
                }
                Err(rejection) => {
                    self.reject(&pod, rejection, now);
                    self.dirty.remove(&uid);
                    self.refused.insert(uid);
                }
            }
        }
    }

    /// Counts the pod `uid` in the node's usage and the Burstable tier's weight as it is
    /// now: while it is admitted, desired and not finished. Called whenever one of those
    /// may have changed; a pod whose pass runs keeps what it had (its state, with its
    /// phase, is the pass's until it ends).
    pub(super) fn recount(&mut self, uid: &str) {
        let pod = self
            .desired
            .get(uid)
            .filter(|_| self.admitted.contains(uid))
            .cloned();
        let Some(pod) = pod else {
            self.count(uid, None);
            return;
        };
        if self.running.contains(uid) && self.usage.contains(uid) {
            return;
        }
        let phase = self
            .states
            .get(uid)
            .and_then(PodState::status)
            .and_then(|status| status.phase.as_deref());
        let finished = matches!(phase, Some("Failed" | "Succeeded"));
        self.count(uid, (!finished).then_some(&pod));
    }

    /// Counts `pod` as what `uid` holds, or nothing.
    fn count(&mut self, uid: &str, pod: Option<&Pod>) {
        let burstable = pod
            .filter(|pod| pod_qos_class(pod) == QosClass::Burstable)
            .and_then(|pod| unit::pod_cpu_request_millis(pod.spec.as_ref()?).ok());
        match pod {
            Some(pod) => self.usage.set(uid, pod),
            None => self.usage.remove(uid),
        }
        let before = match burstable {
            Some(millis) => self.burstable.insert(uid.to_owned(), millis),
            None => self.burstable.remove(uid),
        };
        self.burstable_millis -= u128::from(before.unwrap_or(0));
        self.burstable_millis += u128::from(burstable.unwrap_or(0));
    }

    /// Forgets that `uid` was admitted once nothing is left of it: not desired, no state,
    /// no pass running.
    pub(super) fn forget_if_gone(&mut self, uid: &str) {
        if self.desired.get(uid).is_none()
            && !self.states.contains_key(uid)
            && !self.running.contains(uid)
        {
            self.admitted.remove(uid);
        }
    }

    /// The CPU the active Burstable pods request in all (millicores, `overhead`
    /// included), which the kubelet's QoS manager gives the Burstable tier as its weight;
    /// `None` until every source sent its pods, so a partial set never lowers it.
    pub(in crate::pod::reconciler) fn burstable_cpu_millis(&self) -> Option<u64> {
        if !self.desired.is_synced() {
            return None;
        }
        Some(u64::try_from(self.burstable_millis).unwrap_or(u64::MAX))
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
