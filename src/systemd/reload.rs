//! daemon-reload, coalesced. systemd re-reads every unit file on each reload (tens to
//! hundreds of milliseconds with many units), and many pods starting at once each write
//! their units: one owner task runs the reloads, and every request that arrives while a
//! reload runs is served by the single next one. A request is answered only by a reload
//! that started after it, so the files its caller wrote before asking are always seen.

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};

use super::dbus_errors::DbusErrors;
use super::error::{Error, Result};
use super::proxy::ManagerProxy;

/// A caller waiting for a reload that covers its files.
type Waiter = oneshot::Sender<Result<()>>;

/// Hands reload requests to the owner task.
#[derive(Debug, Clone)]
pub(super) struct Reloader {
    requests: mpsc::UnboundedSender<Waiter>,
}

impl Reloader {
    /// Starts the owner task; it ends when every `Reloader` clone is dropped. Each reload
    /// done counts in `reloads`, each failed one also in `errors`.
    pub(super) fn spawn(
        manager: ManagerProxy<'static>,
        reloads: Counter,
        errors: DbusErrors,
    ) -> Self {
        // Unbounded on purpose: each request is one waiting caller (a pod pass, at most
        // `pod::MAX_CONCURRENT_PASSES` at once, or a `systemk` command), all answered by
        // the next reload, so the queue never outgrows the callers; a bound would only
        // add a second way to wait.
        let (requests, mut pending) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = pending.recv().await {
                let mut waiters = vec![first];
                while let Ok(waiter) = pending.try_recv() {
                    waiters.push(waiter);
                }
                let result = manager.reload().await;
                reloads.inc();
                if let Err(error) = &result {
                    errors.record_zbus("Reload", error);
                }
                tracing::debug!(
                    requests = waiters.len(),
                    ok = result.is_ok(),
                    "daemon-reload"
                );
                for waiter in waiters {
                    let answer = match &result {
                        Ok(()) => Ok(()),
                        Err(error) => Err(Error::from_zbus("Reload", "", error.clone())),
                    };
                    // A caller that gave up waiting needs no answer.
                    let _ = waiter.send(answer);
                }
            }
        });
        Self { requests }
    }

    /// Waits for a daemon-reload that started after this call.
    pub(super) async fn reload(&self) -> Result<()> {
        let gone = || Error::Bus {
            operation: "Reload",
            unit: String::new(),
            message: "the reload task has stopped".into(),
        };
        let (waiter, answer) = oneshot::channel();
        self.requests.send(waiter).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}
