//! The wall clock, in one place: every time systemk shows (statuses, leases, node
//! conditions, log cut-offs, certificate validity) comes from [`now`]. Unit tests pin it
//! per thread with [`pin`]; timers use tokio's clock, which tests pause instead.
//! Layer 0.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::jiff::Timestamp;

/// The current time, as the API shows times (microseconds).
pub fn now() -> Timestamp {
    #[cfg(test)]
    if let Some(pinned) = pinned::get() {
        return pinned;
    }
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let micros = i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX);
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::MAX)
}

/// Makes [`now`] return `at` on this thread until the guard drops.
#[cfg(test)]
pub fn pin(at: Timestamp) -> pinned::Pinned {
    pinned::set(Some(at));
    pinned::Pinned(())
}

#[cfg(test)]
pub mod pinned {
    //! The per-thread pinned time of unit tests.

    use std::cell::Cell;

    use k8s_openapi::jiff::Timestamp;

    thread_local! {
        static PINNED: Cell<Option<Timestamp>> = const { Cell::new(None) };
    }

    pub(super) fn get() -> Option<Timestamp> {
        PINNED.with(Cell::get)
    }

    pub(super) fn set(at: Option<Timestamp>) {
        PINNED.with(|pinned| pinned.set(at));
    }

    /// Unpins the clock when dropped.
    #[must_use = "the clock is unpinned when this is dropped"]
    pub struct Pinned(pub(super) ());

    impl Drop for Pinned {
        fn drop(&mut self) {
            set(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_reads_the_system_time_unless_pinned() {
        let before = now();
        assert!(before > Timestamp::from_second(1_700_000_000).unwrap());
        let at = Timestamp::from_second(1_000).unwrap();
        {
            let _pinned = pin(at);
            assert_eq!(now(), at);
        }
        assert!(now() >= before, "unpinned again");
    }
}
