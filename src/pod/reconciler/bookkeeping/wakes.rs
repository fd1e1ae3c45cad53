//! When pods want their next pass, kept in time order: the reconciler asks for the
//! earliest on every turn of its loop, which must not cost a walk over every pod with
//! probes or a restart pending. Pure.

use std::collections::{BTreeSet, HashMap};

use tokio::time::Instant;

/// At most one wake per pod; a later one replaces it.
#[derive(Debug, Default)]
pub(super) struct Wakes {
    by_pod: HashMap<String, Instant>,
    in_order: BTreeSet<(Instant, String)>,
}

impl Wakes {
    /// Wakes the pod `uid` at `at`, instead of any wake it had.
    pub(super) fn set(&mut self, uid: &str, at: Instant) {
        if let Some(earlier) = self.by_pod.insert(uid.to_owned(), at) {
            self.in_order.remove(&(earlier, uid.to_owned()));
        }
        self.in_order.insert((at, uid.to_owned()));
    }

    /// The earliest wake.
    pub(super) fn next(&self) -> Option<Instant> {
        self.in_order.first().map(|(at, _)| *at)
    }

    /// Takes out the pods whose wake is `now` or earlier.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.in_order.first()
            && *at <= now
        {
            if let Some((_, uid)) = self.in_order.pop_first() {
                self.by_pod.remove(&uid);
                due.push(uid);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pods_come_due_in_time_order_and_a_new_wake_replaces_the_old() {
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        let mut wakes = Wakes::default();
        assert_eq!(wakes.next(), None);
        wakes.set("a", at(5));
        wakes.set("b", at(3));
        wakes.set("c", at(9));
        wakes.set("a", at(10));
        assert_eq!(wakes.next(), Some(at(3)));
        assert_eq!(wakes.take_due(at(2)), Vec::<String>::new());
        assert_eq!(wakes.take_due(at(9)), ["b", "c"]);
        assert_eq!(wakes.next(), Some(at(10)));
        wakes.set("a", at(1));
        assert_eq!(wakes.take_due(at(1)), ["a"]);
        assert_eq!(wakes.next(), None);
        assert!(wakes.by_pod.is_empty());
    }
}
