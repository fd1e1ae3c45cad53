//! The garbage collection task: every [`GC_PERIOD`] one pass of
//! [`Installer::collect_garbage`] (unused packages systemk installed, the `.deb` cache),
//! its removals logged by the package layer and, with a cluster, reported as Normal
//! events on the Node (`kubectl describe node`): no pod is left to report them on.
//! Layer 7.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::package::{GcReport, GcSettings, Installer};
use crate::pod::EventKind;
use crate::sources::kube::EventPublisher;

/// How often garbage is collected. The first pass waits a period too, so systemk has
/// adopted the units of its earlier run (and their packages' holds) before any pass;
/// the grace of a package starts only at the first pass that sees it unused anyway.
pub(super) const GC_PERIOD: Duration = Duration::from_secs(60);

/// Where node events go, with a cluster.
pub(super) struct NodeEvents {
    /// The publisher.
    pub publisher: EventPublisher,
    /// The Node's name.
    pub node_name: String,
    /// The Node's UID, once registered.
    pub node_uid: watch::Receiver<Option<String>>,
}

/// Runs passes until `stop`; a failed pass is logged and tried again at the next period.
pub(super) async fn run(
    installer: Installer,
    settings: GcSettings,
    events: Option<NodeEvents>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tracing::info!(
        unused_package_age_secs = settings.unused_package_age.map(|age| age.as_secs()),
        deb_cache_max_bytes = settings.deb_cache_max_bytes,
        "garbage collection of packages and the .deb cache"
    );
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(GC_PERIOD) => {}
        }
        // A removal runs in its own task: dropping the pass at stop never stops dpkg halfway.
        let report = tokio::select! {
            () = &mut stop => return Ok(()),
            report = installer.collect_garbage(&settings) => report,
        };
        match report {
            Ok(report) => {
                if let Some(events) = &events {
                    publish(events, &report).await;
                }
            }
            Err(error) => {
                tracing::warn!(error = %crate::error_chain::Chain(&error), "garbage collection failed; trying again later");
            }
        }
    }
}

/// One Normal event per kind of thing removed, as the kubelet reports image GC.
async fn publish(events: &NodeEvents, report: &GcReport) {
    let Some(uid) = events.node_uid.borrow().clone() else {
        return;
    };
    for (reason, message) in messages(report) {
        events
            .publisher
            .publish_node(&events.node_name, &uid, EventKind::Normal, reason, &message)
            .await;
    }
}

/// The events' reasons and messages for `report`.
fn messages(report: &GcReport) -> Vec<(&'static str, String)> {
    let mut messages = Vec::new();
    if !report.removed.is_empty() {
        messages.push((
            "PackagesRemoved",
            format!(
                "removed packages systemk installed that no pod used for --image-minimum-gc-age: {}",
                report.removed.join(", ")
            ),
        ));
    }
    if !report.trimmed.is_empty() {
        messages.push((
            "DebCacheTrimmed",
            format!(
                "deleted {} least recently used .deb files to keep the cache under --deb-cache-max-size",
                report.trimmed.len()
            ),
        ));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_what_was_removed_and_nothing_is_said_of_an_empty_pass() {
        assert!(messages(&GcReport::default()).is_empty());
        let report = GcReport {
            removed: vec!["uptimed".into(), "libfoo1".into()],
            trimmed: vec!["a.deb".into()],
            ..GcReport::default()
        };
        let messages = messages(&report);
        assert_eq!(messages[0].0, "PackagesRemoved");
        assert!(
            messages[0].1.ends_with("uptimed, libfoo1"),
            "{}",
            messages[0].1
        );
        assert_eq!(messages[1].0, "DebCacheTrimmed");
    }
}
