//! `systemk` with no command: the node agent. Wires the static-pod source to the
//! reconciler, tells systemd when the first sync is done (`Type=notify`), and stops on
//! SIGTERM/SIGINT without touching the pods, which live in their own units.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sd_notify::NotifyState;
use tokio::sync::{mpsc, watch};

use crate::backoff::{LOCAL_SERVICE, RetryLimit};
use crate::config::{AgentArgs, detect_node_ips, host_addresses};
use crate::package::{Installer, InstallerConfig};
use crate::pod::{self, Context, PodDirs, Progress};
use crate::sources::{SourceId, manifests};
use crate::systemd::Systemd;
use crate::unit::{NodeInfo, SystemUsers};

/// How long the source may take to wind down after a signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let node_name = match args.nodename {
        Some(name) => name,
        None => super::hostname()?,
    };
    let addresses = host_addresses().context("cannot list the host's addresses")?;
    let ips = detect_node_ips(args.node_ip, args.node_external_ip, &addresses)
        .context("the host has no usable address (neither private nor global): set --node-ip")?;
    let installer = Installer::new(InstallerConfig {
        deb_cache_dir: args.cache_dir.clone(),
        ..InstallerConfig::default()
    })?;
    // D-Bus may come up after systemk at boot.
    let systemd = LOCAL_SERVICE
        .retry(
            "connect to systemd",
            RetryLimit::Forever,
            |err: &crate::systemd::Error| err.is_transient(),
            |_| Systemd::connect(),
        )
        .await
        .context("cannot connect to systemd")?;
    let ctx = Arc::new(Context {
        installer,
        systemd,
        dirs: PodDirs::new(&args.state_dir),
        unit_dir: args.unit_dir.clone(),
        node: NodeInfo {
            hostname: node_name.clone(),
            internal_ip: ips.internal.to_string(),
            external_ip: ips.external.to_string(),
        },
        host_ips: if ips.internal == ips.external {
            vec![ips.internal]
        } else {
            vec![ips.internal, ips.external]
        },
        users: Arc::new(SystemUsers),
    });
    tracing::info!(node = %node_name, internal_ip = %ips.internal, external_ip = %ips.external,
        manifests = %args.pod_manifest_path.display(), "systemk starting");

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let (updates_tx, updates_rx) = mpsc::channel(16);
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let source = tokio::spawn(manifests::watch(
        args.pod_manifest_path.clone(),
        node_name,
        updates_tx,
        stopped(stop_rx.clone()),
    ));
    tokio::spawn(report(progress_rx));
    pod::run(
        ctx,
        vec![SourceId::File],
        updates_rx,
        progress_tx,
        stopped(stop_rx),
    )
    .await?;
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    tracing::info!("systemk stopping; pods keep running in their units");
    match tokio::time::timeout(DRAIN_TIMEOUT, source).await {
        Ok(Ok(Err(err))) => tracing::warn!(error = %err, "the manifest watch failed"),
        Err(_) => tracing::warn!("the manifest watch did not stop in time"),
        _ => {}
    }
    Ok(())
}

/// Logs what the reconciler reports and tells systemd when the first sync is done.
async fn report(mut progress: mpsc::UnboundedReceiver<Progress>) {
    while let Some(event) = progress.recv().await {
        match event {
            Progress::Synced => {
                tracing::info!("all pods are in sync");
                if let Err(err) =
                    sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("pods in sync")])
                {
                    tracing::warn!(error = %err, "cannot notify systemd");
                }
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
        }
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens after it sent.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %err, "cannot listen for signals; stop systemk with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
