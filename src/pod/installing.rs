//! How many passes are installing an image right now. The package layer runs one install
//! at a time, and one can take minutes (a slow mirror, a large package, another package
//! manager holding dpkg); a pass waiting for it does no D-Bus work. So the reconciler
//! does not count such a pass against [`super::MAX_CONCURRENT_PASSES`], and a burst of
//! pods whose images are being installed never holds up another pod's pass (a restart,
//! a deletion, a pod whose image is a path). Layer 4.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The passes in an install, and a wake for the reconciler when one more enters.
#[derive(Debug, Default)]
pub struct Installing {
    count: AtomicUsize,
    entered: Notify,
}

impl Installing {
    /// Counts the calling pass as installing until the guard is dropped, and wakes the
    /// reconciler: it may start another pass in its place.
    pub fn enter(&self) -> InstallingGuard<'_> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.entered.notify_one();
        InstallingGuard(self)
    }

    /// The passes installing now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Completes once a pass entered an install since the last call (at once when one
    /// did meanwhile: the wake is kept until taken).
    pub async fn entered(&self) {
        self.entered.notified().await;
    }
}

/// A pass in an install; leaving it (dropping this) stops counting it.
#[derive(Debug)]
pub struct InstallingGuard<'a>(&'a Installing);

impl Drop for InstallingGuard<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pass_counts_while_it_installs_and_its_entry_wakes_the_reconciler() {
        let installing = Installing::default();
        let first = installing.enter();
        let second = installing.enter();
        assert_eq!(installing.count(), 2);
        // Entered before anyone waited: the wake is kept, not lost.
        installing.entered().await;
        drop(first);
        assert_eq!(installing.count(), 1);
        drop(second);
        assert_eq!(installing.count(), 0);
    }
}
