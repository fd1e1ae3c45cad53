//! [`Retry`]: the growing-delay state of one retrying loop, on a [`Backoff`] schedule.
//! Pure: no clock, no sleeping; the loop sleeps the delay it is given. Layer 0.

use std::time::Duration;

use super::Backoff;

/// The retry state of one repeated operation (a lease renewal, a node status round, a pod's
/// pass): each failure asks for the next, longer delay of its schedule, and a success
/// starts the schedule over. The loops that renew, post or reconcile own one each and do
/// their own sleeping (they also wait for shutdown or other work); [`Backoff::retry`] is
/// for one call retried in place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    schedule: Backoff,
    failures: u32,
}

impl Retry {
    /// A retry state with no failures yet, growing along `schedule`.
    pub const fn new(schedule: Backoff) -> Self {
        Self {
            schedule,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before the next attempt (jittered as
    /// the schedule says): the schedule's first delay after one failure, growing after
    /// each further one up to its maximum.
    pub fn failed(&mut self) -> Duration {
        let delay = self.schedule.jittered_delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Records a success: the next failure waits the schedule's first delay again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay the last failure asked for (with fresh jitter); `None` after a success
    /// or before any attempt. For loops that wait for other work meanwhile and ask again
    /// on every turn.
    pub fn pending_delay(&self) -> Option<Duration> {
        self.failures
            .checked_sub(1)
            .map(|last| self.schedule.jittered_delay(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::{API_SERVER, CONTAINER_RESTART};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn retry_state_grows_with_failures_and_resets_on_success() {
        let mut retry = Retry::new(CONTAINER_RESTART);
        assert_eq!(retry.pending_delay(), None);
        let delays: Vec<u64> = (0..7).map(|_| retry.failed().as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(retry.failures(), 7);
        assert_eq!(retry.pending_delay(), Some(secs(300)));
        retry.succeeded();
        assert_eq!(retry.failures(), 0);
        assert_eq!(retry.pending_delay(), None);
        assert_eq!(retry.failed(), secs(10));
    }

    #[test]
    fn retry_state_with_jitter_stays_below_the_schedule() {
        let mut retry = Retry::new(API_SERVER);
        for attempt in 0..10 {
            let delay = retry.failed();
            assert!(delay <= API_SERVER.delay(attempt), "{delay:?} at {attempt}");
            assert!(delay >= API_SERVER.delay(attempt).mul_f64(0.8), "{delay:?}");
        }
    }

    #[test]
    fn retry_state_survives_endless_failures() {
        let mut retry = Retry {
            schedule: API_SERVER,
            failures: u32::MAX,
        };
        assert!(retry.failed() <= API_SERVER.max());
        assert_eq!(retry.failures(), u32::MAX);
    }
}
