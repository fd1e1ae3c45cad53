//! The progress forwarder: logs what the reconciler reports, tells systemd when the first
//! sync is done (`READY=1`), and passes everything on to the cluster's status reporter.
//! It ends when the reconciler's progress ends. Layer 7.

use std::time::Duration;

use sd_notify::NotifyState;

use crate::pod::{Progress, ProgressReceiver, ProgressSender};

/// systemk tells systemd it is ready after this long even when the first sync has not
/// finished (an API server that is down at boot): systemd's default start timeout is
/// 90 s, and being killed for it would only restart systemk into the same wait. Static
/// pods and the pods already running are served meanwhile.
const READY_AT_THE_LATEST: Duration = Duration::from_secs(60);

/// Logs what the reconciler reports, tells systemd when the first sync is done, and
/// passes everything on to the cluster's status reporter when there is one.
pub(super) async fn report(mut progress: ProgressReceiver, forward: Option<ProgressSender>) {
    let ready_at_the_latest = tokio::time::sleep(READY_AT_THE_LATEST);
    tokio::pin!(ready_at_the_latest);
    let mut ready = false;
    loop {
        let event = tokio::select! {
            event = progress.recv() => match event {
                Some(event) => event,
                None => return,
            },
            () = &mut ready_at_the_latest, if !ready => {
                ready = true;
                tracing::warn!("not all pod sources answered yet (is the API server down?); ready anyway");
                notify_ready("waiting for the first sync of every pod source");
                continue;
            }
        };
        match &event {
            Progress::Synced => {
                tracing::info!("all pods are in sync");
                ready = true;
                notify_ready("pods in sync");
            }
            Progress::Status(pod) => {
                let phase = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("Unknown");
                let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                tracing::info!(namespace, pod = name, phase, "pod status");
            }
            Progress::Removed { uid } => tracing::info!(pod_uid = %uid, "pod removed"),
            Progress::Event {
                pod,
                reason,
                message,
                ..
            } => {
                tracing::info!(namespace = ?pod.metadata.namespace, pod = ?pod.metadata.name, reason, message, "pod event");
            }
        }
        if let Some(forward) = &forward {
            // Full or closed is logged by the channel; the reporter only ends at shutdown.
            forward.send(event);
        }
    }
}

fn notify_ready(status: &str) {
    if let Err(err) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]) {
        tracing::warn!(error = %crate::error_chain::Chain(&err), "cannot notify systemd");
    }
}
