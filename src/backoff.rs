//! The one retry schedule used everywhere (apt, D-Bus, watches, container restarts), and
//! [`Retry`], the growing-delay state every retrying loop (lease, node status, failed pod
//! passes, status reports) keeps.
//!
//! Layer 0: owns the arithmetic of exponential back-off and the single place where a
//! failed operation is either retried or given up. The schedule itself is pure: no clock,
//! no I/O; randomness for jitter is passed in ([`Backoff::delay_with`]) or drawn from the
//! standard library's per-process hash keys ([`Backoff::jittered_delay`]) so no RNG crate
//! is needed. Only [`Backoff::retry`] sleeps, through `tokio::time`, so tests pause time.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU32;
use std::time::Duration;

mod retry;

pub use retry::Retry;

/// First delay before restarting a crashed container: the kubelet's `backOffPeriod`
/// (10 s, pkg/kubelet/kubelet.go).
pub const CONTAINER_RESTART_INITIAL: Duration = Duration::from_secs(10);

/// Longest delay between container restarts: the kubelet's `MaxContainerBackOff`
/// (300 s, pkg/kubelet/kubelet.go).
pub const CONTAINER_RESTART_MAX: Duration = Duration::from_secs(300);

/// A container that ran at least this long before exiting starts again from
/// [`CONTAINER_RESTART_INITIAL`]: 10 minutes, as documented for the kubelet ("Container
/// restart policy", kubernetes.io pod lifecycle; twice `MaxContainerBackOff` in its
/// `flowcontrol.Backoff`).
pub const CONTAINER_RESTART_RESET_AFTER: Duration = Duration::from_secs(600);

/// The kubelet's container restart schedule: 10 s doubling to 300 s, without jitter (the
/// kubelet's `flowcontrol.NewBackOff` has none, and `kubectl describe` users expect
/// exactly 10 s, 20 s, 40 s…).
pub const CONTAINER_RESTART: Backoff = Backoff {
    initial: CONTAINER_RESTART_INITIAL,
    max: CONTAINER_RESTART_MAX,
    factor: 2.0,
    jitter: 0.0,
};

/// Reconnecting to a local service (the system bus, systemd): 200 ms doubling to 10 s,
/// with jitter so many retries do not line up.
pub const LOCAL_SERVICE: Backoff = Backoff {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(10),
    factor: 2.0,
    jitter: 0.2,
};

/// Retrying a call to the Kubernetes API server (node status, lease, pod status, deletes):
/// 500 ms doubling to 10 s, with jitter. The cap stays well below the 40 s node lease so a
/// node recovers within one lease period once the server is back.
pub const API_SERVER: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(10),
    factor: 2.0,
    jitter: 0.2,
};

/// A back-off schedule whose bounds were rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The first delay is zero, which would make retries spin.
    #[error("initial back-off must be greater than zero")]
    ZeroInitial,
    /// The largest delay is below the first one.
    #[error("maximum back-off {max:?} is below the initial back-off {initial:?}")]
    MaxBelowInitial {
        /// The first delay asked for.
        initial: Duration,
        /// The largest delay asked for.
        max: Duration,
    },
    /// The growth factor is below 1 or not a finite number.
    #[error("back-off factor {factor} must be a finite number of at least 1")]
    InvalidFactor {
        /// The factor asked for.
        factor: f64,
    },
    /// The jitter fraction is outside `0..=1`.
    #[error("back-off jitter {jitter} must be between 0 and 1")]
    InvalidJitter {
        /// The jitter asked for.
        jitter: f64,
    },
}

impl Error {
    /// A CamelCase reason for events and status.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ZeroInitial => "BackoffZeroInitial",
            Self::MaxBelowInitial { .. } => "BackoffMaxBelowInitial",
            Self::InvalidFactor { .. } => "BackoffInvalidFactor",
            Self::InvalidJitter { .. } => "BackoffInvalidJitter",
        }
    }

    /// Bad bounds are a programming or configuration error: retrying cannot fix them.
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// Result of this layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many times [`Backoff::retry`] calls the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryLimit {
    /// Until it succeeds or fails permanently; for loops that must never give up
    /// (D-Bus reconnects, watches). Stop them with the caller's shutdown future.
    Forever,
    /// At most this many calls in total, the first one included.
    Attempts(NonZeroU32),
}

/// An exponential back-off schedule with validated bounds: `initial * factor^attempt`,
/// capped at `max`, then shortened by up to `jitter` of itself so that many retrying
/// callers spread out while `max` stays a true upper bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
}

impl Backoff {
    /// A schedule, or why its bounds make no sense: `initial > 0`, `max >= initial`,
    /// `factor >= 1` and finite, `jitter` in `0..=1`.
    pub fn try_new(initial: Duration, max: Duration, factor: f64, jitter: f64) -> Result<Self> {
        if initial.is_zero() {
            return Err(Error::ZeroInitial);
        }
        if max < initial {
            return Err(Error::MaxBelowInitial { initial, max });
        }
        if !factor.is_finite() || factor < 1.0 {
            return Err(Error::InvalidFactor { factor });
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(Error::InvalidJitter { jitter });
        }
        Ok(Self {
            initial,
            max,
            factor,
            jitter,
        })
    }

    /// The first delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The largest delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay before retry number `attempt` (0 = the first retry) without jitter:
    /// the upper bound of what [`Backoff::delay_with`] returns.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let seconds = self.initial.as_secs_f64() * self.factor.powi(exponent);
        // An overflowing power is infinite; `min` then picks `max`, so no panic is possible.
        Duration::try_from_secs_f64(seconds.min(self.max.as_secs_f64())).unwrap_or(self.max)
    }

    /// The delay before retry number `attempt` with jitter drawn from `unit_random`, a
    /// number in `0..1` (clamped; NaN counts as 0): deterministic, for tests and callers
    /// that own their randomness.
    pub fn delay_with(&self, attempt: u32, unit_random: f64) -> Duration {
        let random = if unit_random.is_nan() {
            0.0
        } else {
            unit_random.clamp(0.0, 1.0)
        };
        self.delay(attempt).mul_f64(1.0 - self.jitter * random)
    }

    /// The delay before retry number `attempt` with fresh jitter.
    pub fn jittered_delay(&self, attempt: u32) -> Duration {
        if self.jitter == 0.0 {
            return self.delay(attempt);
        }
        self.delay_with(attempt, unit_random())
    }

    /// Runs `operation` (given the attempt number, 0 first) until it succeeds, fails with
    /// an error `is_transient` rejects, or `limit` is reached; sleeps the jittered
    /// schedule between attempts and logs each retry with `what` as its subject.
    /// The last error is returned as is.
    pub async fn retry<T, E, Op, Fut>(
        &self,
        what: &str,
        limit: RetryLimit,
        is_transient: impl Fn(&E) -> bool,
        mut operation: Op,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        Op: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0u32;
        loop {
            let error = match operation(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let calls = attempt.saturating_add(1);
            let exhausted = matches!(limit, RetryLimit::Attempts(max) if calls >= max.get());
            if !is_transient(&error) || exhausted {
                return Err(error);
            }
            let delay = self.jittered_delay(attempt);
            tracing::warn!(
                what,
                attempt = calls,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                %error,
                "transient failure, retrying"
            );
            tokio::time::sleep(delay).await;
            attempt = calls;
        }
    }
}

/// A number in `0..1` from the standard library's randomly keyed SipHash: each
/// `RandomState` gets fresh keys, which is all the randomness jitter needs.
fn unit_random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    // The top 53 bits fill an f64 mantissa exactly.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn schedule(backoff: &Backoff, attempts: u32) -> Vec<u64> {
        (0..attempts).map(|a| backoff.delay(a).as_secs()).collect()
    }

    #[test]
    fn container_restart_doubles_from_10s_to_300s() {
        assert_eq!(
            schedule(&CONTAINER_RESTART, 8),
            [10, 20, 40, 80, 160, 300, 300, 300]
        );
    }

    #[test]
    fn container_restart_constant_passes_validation() {
        let checked = Backoff::try_new(CONTAINER_RESTART_INITIAL, CONTAINER_RESTART_MAX, 2.0, 0.0);
        assert_eq!(checked, Ok(CONTAINER_RESTART));
    }

    #[test]
    fn huge_attempt_saturates_at_max() {
        assert_eq!(CONTAINER_RESTART.delay(u32::MAX), secs(300));
    }

    #[test]
    fn factor_one_is_constant() {
        let backoff = Backoff::try_new(secs(3), secs(60), 1.0, 0.0).unwrap();
        assert_eq!(schedule(&backoff, 3), [3, 3, 3]);
    }

    #[test]
    fn rejects_zero_initial() {
        assert_eq!(
            Backoff::try_new(Duration::ZERO, secs(1), 2.0, 0.0),
            Err(Error::ZeroInitial)
        );
    }

    #[test]
    fn rejects_max_below_initial() {
        let err = Backoff::try_new(secs(5), secs(1), 2.0, 0.0).unwrap_err();
        assert_eq!(err.reason(), "BackoffMaxBelowInitial");
        assert!(!err.is_transient());
    }

    #[test]
    fn rejects_factor_below_one_or_nan() {
        for factor in [0.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Backoff::try_new(secs(1), secs(2), factor, 0.0),
                Err(Error::InvalidFactor { .. })
            ));
        }
    }

    #[test]
    fn rejects_jitter_outside_unit_interval() {
        for jitter in [-0.1, 1.1, f64::NAN] {
            assert!(matches!(
                Backoff::try_new(secs(1), secs(2), 2.0, jitter),
                Err(Error::InvalidJitter { .. })
            ));
        }
    }

    #[test]
    fn jitter_shortens_by_at_most_its_fraction() {
        let backoff = Backoff::try_new(secs(10), secs(100), 2.0, 0.5).unwrap();
        assert_eq!(backoff.delay_with(0, 0.0), secs(10));
        assert_eq!(backoff.delay_with(0, 1.0), secs(5));
        assert_eq!(backoff.delay_with(1, 0.5), secs(15));
    }

    #[test]
    fn jitter_input_is_clamped() {
        let backoff = Backoff::try_new(secs(10), secs(100), 2.0, 0.5).unwrap();
        assert_eq!(backoff.delay_with(0, 7.0), secs(5));
        assert_eq!(backoff.delay_with(0, -3.0), secs(10));
        assert_eq!(backoff.delay_with(0, f64::NAN), secs(10));
    }

    #[test]
    fn jittered_delay_stays_within_bounds() {
        let backoff = Backoff::try_new(secs(10), secs(100), 2.0, 1.0).unwrap();
        for _ in 0..100 {
            assert!(backoff.jittered_delay(3) <= secs(80));
        }
    }

    #[test]
    fn unit_random_is_in_unit_interval() {
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&unit_random()));
        }
    }

    #[derive(Debug, PartialEq)]
    enum Failure {
        Transient,
        Permanent,
    }

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    fn transient(f: &Failure) -> bool {
        *f == Failure::Transient
    }

    #[tokio::test(start_paused = true)]
    async fn retry_sleeps_the_schedule_until_success() {
        let started = tokio::time::Instant::now();
        let result = CONTAINER_RESTART
            .retry(
                "test",
                RetryLimit::Forever,
                transient,
                |attempt| async move {
                    if attempt < 3 {
                        Err(Failure::Transient)
                    } else {
                        Ok(attempt)
                    }
                },
            )
            .await;
        assert_eq!(result, Ok(3));
        assert_eq!(started.elapsed(), secs(10 + 20 + 40));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_at_once_on_permanent_error() {
        let calls = Cell::new(0);
        let result: Result<(), Failure> = CONTAINER_RESTART
            .retry("test", RetryLimit::Forever, transient, |_| {
                calls.set(calls.get() + 1);
                async { Err(Failure::Permanent) }
            })
            .await;
        assert_eq!(result, Err(Failure::Permanent));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_after_the_attempt_limit() {
        let calls = Cell::new(0);
        let limit = RetryLimit::Attempts(NonZeroU32::new(3).unwrap());
        let result: Result<(), Failure> = CONTAINER_RESTART
            .retry("test", limit, transient, |_| {
                calls.set(calls.get() + 1);
                async { Err(Failure::Transient) }
            })
            .await;
        assert_eq!(result, Err(Failure::Transient));
        assert_eq!(calls.get(), 3);
    }
}
