//! Pod lifecycle events (installing the package, installed, created, started, killing,
//! back-off, failed) as the reconciler reports them, published with kube-runtime's
//! `Recorder` (events.k8s.io/v1, deduplicated into series) so they show in
//! `kubectl describe pod`; node events (garbage collection) show in `kubectl describe
//! node`. Best effort, as the kubelet's: an event that cannot be published is logged and
//! dropped. Layer 5.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::pod::EventKind;

/// The reporting controller named in events, as the kubelet names itself `kubelet`.
pub const REPORTING_CONTROLLER: &str = "systemk";

/// Publishes pod events for this node.
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
}

impl EventPublisher {
    /// A publisher reporting as `systemk` on node `node_name`.
    pub fn new(client: Client, node_name: &str) -> Self {
        let reporter = Reporter {
            controller: REPORTING_CONTROLLER.to_owned(),
            instance: Some(node_name.to_owned()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes `reason`/`message` about `pod`.
    pub async fn publish(&self, pod: &Pod, kind: EventKind, reason: &str, message: &str) {
        let regarding = reference(pod);
        self.publish_about(&regarding, kind, reason, message).await;
    }

    /// Publishes `reason`/`message` about the Node `node_name` (UID `node_uid`), for what
    /// concerns no pod, e.g. garbage collection; the kubelet's node events go the same way.
    pub async fn publish_node(
        &self,
        node_name: &str,
        node_uid: &str,
        kind: EventKind,
        reason: &str,
        message: &str,
    ) {
        let regarding = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Node".to_owned()),
            name: Some(node_name.to_owned()),
            uid: Some(node_uid.to_owned()),
            ..ObjectReference::default()
        };
        self.publish_about(&regarding, kind, reason, message).await;
    }

    async fn publish_about(
        &self,
        regarding: &ObjectReference,
        kind: EventKind,
        reason: &str,
        message: &str,
    ) {
        let event = Event {
            type_: match kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: reason.to_owned(),
            note: Some(message.to_owned()),
            action: action(reason, message),
            secondary: None,
        };
        let publish = self.recorder.publish(&event, regarding);
        match tokio::time::timeout(super::API_CALL_TIMEOUT, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(regarding = ?regarding.name, reason, error = %crate::error_chain::Chain(&err), "cannot publish an event");
            }
            Err(_) => {
                tracing::warn!(regarding = ?regarding.name, reason, "publishing an event timed out");
            }
        }
    }
}

/// The event's `action`. kube-runtime's `Recorder` counts events of the same type,
/// reason, action and object as one series and keeps the first note; the kubelet's
/// correlator counts only those with the same message too. So the action is the reason
/// with a digest of the message: "Started unit a" and "Started unit b", or two probe
/// failures with different outputs, stay two events; repeats of one stay one series.
fn action(reason: &str, message: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, message.as_bytes());
    format!("{reason}-{}", hex::encode(&digest.as_ref()[..4]))
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::action;

    #[test]
    fn different_messages_are_different_series_and_repeats_one() {
        let a = action("Unhealthy", "Readiness probe failed: not yet");
        assert_eq!(a, action("Unhealthy", "Readiness probe failed: not yet"));
        assert_ne!(a, action("Unhealthy", "Liveness probe failed: stop asked"));
        assert!(a.starts_with("Unhealthy-") && a.len() == "Unhealthy-".len() + 8);
    }
}
