//! daemon-reload, coalesced. systemd re-reads every unit file on each reload (tens of
//! milliseconds to seconds, growing with the units loaded) and answers no other call
//! meanwhile, so reloads are few:
//!
//! - A caller that needs one now (it changed a unit systemd had loaded) asks and waits;
//!   every request that arrives while a reload runs is served by the single next one. A
//!   request is answered only by a reload that started after it, so the files its caller
//!   wrote before asking are always seen.
//! - A caller that removed unit files only *owes* one: systemd may still hold the removed
//!   units (inactive, their files gone) until it re-reads, which matters to nobody but an
//!   operator reading `systemctl list-units`. Debts are paid by the next reload anyway, or
//!   once no debt came for [`DEBT_QUIET`] (at the latest [`DEBT_MAX`] after the first), so
//!   deleting a hundred pods costs one reload, not a hundred, and a pod started meanwhile
//!   never waits behind one.
//!
//! One owner task runs them all; it ends when every [`Reloader`] is dropped.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::dbus_errors::DbusErrors;
use super::error::{Error, Result};
use super::proxy::ManagerProxy;

/// How long after the last debt the owed reload runs.
pub(super) const DEBT_QUIET: Duration = Duration::from_secs(2);
/// How long after the first unpaid debt the owed reload runs, however many follow.
const DEBT_MAX: Duration = Duration::from_secs(30);

/// A caller waiting for a reload that covers its files.
type Waiter = oneshot::Sender<Result<()>>;

/// Hands reload requests and debts to the owner task.
#[derive(Debug, Clone)]
pub(super) struct Reloader {
    requests: mpsc::UnboundedSender<Waiter>,
    debts: Arc<Notify>,
}

impl Reloader {
    /// Starts the owner task. Each reload done counts in `reloads`, each failed one also
    /// in `errors`.
    pub(super) fn spawn(
        manager: ManagerProxy<'static>,
        reloads: Counter,
        errors: DbusErrors,
    ) -> Self {
        // Unbounded on purpose: each request is one waiting caller (a pod pass, at most
        // `pod::MAX_CONCURRENT_PASSES` at once, or a `systemk` command), all answered by
        // the next reload, so the queue never outgrows the callers; a bound would only
        // add a second way to wait.
        let (requests, pending) = mpsc::unbounded_channel::<Waiter>();
        let debts = Arc::new(Notify::new());
        let owner = Owner {
            manager,
            reloads,
            errors,
            pending,
            debts: debts.clone(),
        };
        tokio::spawn(owner.run());
        Self { requests, debts }
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

    /// Records that unit files were removed: a reload is owed, paid later (see the
    /// module doc). Never waits.
    pub(super) fn owe(&self) {
        self.debts.notify_one();
    }
}

/// The task that runs the reloads.
struct Owner {
    manager: ManagerProxy<'static>,
    reloads: Counter,
    errors: DbusErrors,
    pending: mpsc::UnboundedReceiver<Waiter>,
    debts: Arc<Notify>,
}

impl Owner {
    async fn run(mut self) {
        // When the owed reload is due, and the latest it may be put off to.
        let mut owed: Option<(Instant, Instant)> = None;
        loop {
            let due = owed.map(|(due, _)| due);
            tokio::select! {
                request = self.pending.recv() => {
                    let Some(first) = request else { break };
                    let mut waiters = vec![first];
                    while let Ok(waiter) = self.pending.try_recv() {
                        waiters.push(waiter);
                    }
                    let result = self.reload(waiters.len()).await;
                    owed = None;
                    for waiter in waiters {
                        let answer = match &result {
                            Ok(()) => Ok(()),
                            Err(error) => Err(Error::from_zbus("Reload", "", error.clone())),
                        };
                        // A caller that gave up waiting needs no answer.
                        let _ = waiter.send(answer);
                    }
                }
                () = self.debts.notified() => {
                    let now = Instant::now();
                    let latest = owed.map_or(now + DEBT_MAX, |(_, latest)| latest);
                    owed = Some(((now + DEBT_QUIET).min(latest), latest));
                }
                () = sleep_until(due) => {
                    // A failure is counted and logged; the next reload pays the debt.
                    let _ = self.reload(0).await;
                    owed = None;
                }
            }
        }
    }

    async fn reload(&self, requests: usize) -> zbus::Result<()> {
        let result = self.manager.reload().await;
        self.reloads.inc();
        if let Err(error) = &result {
            self.errors.record_zbus("Reload", error);
        }
        tracing::debug!(requests, ok = result.is_ok(), "daemon-reload");
        result
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
