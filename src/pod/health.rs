//! The reconciler's health as it publishes it for the node's `Ready` condition: when it
//! last made progress, how many pods wait for a pass, and whether systemd answered its
//! last call. The reconciler updates it through these methods and sends it on a
//! `tokio::sync::watch`; the node keeper (layer 5) judges it against its own clock, so a
//! reconciler that stops publishing altogether still shows as stuck. Pure: the time
//! comes in as a parameter. Layer 4.

use tokio::time::Instant;

use super::error::Error;

/// What the node needs to know about the reconciler to say whether it is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerHealth {
    /// When the reconciler last made progress: a pass finished, or pods started waiting
    /// while none did (work queued on an idle reconciler is not late yet).
    pub progress_at: Instant,
    /// Pods that need a pass and have none running.
    pub queued: usize,
    /// The last failure to reach systemd over D-Bus, until a pass succeeds again.
    pub systemd_error: Option<String>,
}

impl ReconcilerHealth {
    /// A reconciler that started at `now` with nothing queued.
    pub fn new(now: Instant) -> Self {
        Self {
            progress_at: now,
            queued: 0,
            systemd_error: None,
        }
    }

    /// `queued` pods wait for a pass at `now`. When the queue fills from empty, the wait
    /// starts now: an idle hour is not a stuck one.
    pub fn set_queued(&mut self, queued: usize, now: Instant) {
        if self.queued == 0 && queued > 0 {
            self.progress_at = now;
        }
        self.queued = queued;
    }

    /// A pass finished at `now` with `result`: progress. A success shows systemd
    /// answers; a failure to reach it over D-Bus shows it does not; other failures
    /// tell nothing about systemd.
    pub fn pass_finished<T>(&mut self, result: &Result<T, Error>, now: Instant) {
        self.progress_at = now;
        match result {
            Ok(_) => self.systemd_error = None,
            Err(err) if err.is_systemd_unreachable() => {
                self.systemd_error = Some(crate::error_chain::Chain(err).to_string());
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn bus_error() -> Error {
        Error::Systemd(crate::systemd::Error::Bus {
            operation: "StartUnit",
            unit: "a.service".to_owned(),
            message: "Connection refused".to_owned(),
        })
    }

    #[test]
    fn queue_filling_from_empty_restarts_the_wait() {
        let start = Instant::now();
        let mut health = ReconcilerHealth::new(start);
        let later = start + Duration::from_secs(3600);
        health.set_queued(2, later);
        assert_eq!((health.queued, health.progress_at), (2, later));
        // More work on a queue that waits already does not move the start of the wait.
        health.set_queued(3, later + Duration::from_secs(5));
        assert_eq!((health.queued, health.progress_at), (3, later));
    }

    #[test]
    fn a_finished_pass_is_progress() {
        let start = Instant::now();
        let mut health = ReconcilerHealth::new(start);
        health.set_queued(1, start);
        let done = start + Duration::from_secs(7);
        health.pass_finished(&Ok::<(), Error>(()), done);
        assert_eq!(health.progress_at, done);
    }

    #[test]
    fn systemd_unreachable_until_a_pass_succeeds() {
        let start = Instant::now();
        let mut health = ReconcilerHealth::new(start);
        health.pass_finished(&Err::<(), _>(bus_error()), start);
        let message = health.systemd_error.clone().unwrap();
        assert!(message.contains("Connection refused"), "{message}");
        // A failure of another kind says nothing about systemd.
        let other = Error::InvalidPod {
            why: "bad".to_owned(),
        };
        health.pass_finished(&Err::<(), _>(other), start);
        assert!(health.systemd_error.is_some());
        health.pass_finished(&Ok::<(), Error>(()), start);
        assert_eq!(health.systemd_error, None);
    }

    #[test]
    fn a_call_systemd_refused_is_not_unreachable() {
        let mut health = ReconcilerHealth::new(Instant::now());
        let refused = Error::Systemd(crate::systemd::Error::Call {
            operation: "StartUnit",
            unit: "a.service".to_owned(),
            name: "org.freedesktop.systemd1.NoSuchUnit".to_owned(),
            message: "no".to_owned(),
        });
        health.pass_finished(&Err::<(), _>(refused), Instant::now());
        assert_eq!(health.systemd_error, None);
    }
}
