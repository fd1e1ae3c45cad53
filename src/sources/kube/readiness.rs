//! Whether the node is Ready, from the reconciler's health: not when systemd cannot be
//! reached, nor when pods have waited for a pass longer than [`RECONCILER_THRESHOLD`]
//! without one finishing (the kubelet's PLEG check: "PLEG is not healthy: pleg was last
//! seen active 3m0s ago; threshold is 3m0s"). Pure: the health and the time come in.
//! Layer 5.

use std::time::Duration;

use tokio::time::Instant;

use crate::pod::ReconcilerHealth;

/// How long queued work may wait without a pass finishing: the kubelet's PLEG
/// threshold (`relistThreshold`, 3 minutes).
pub const RECONCILER_THRESHOLD: Duration = Duration::from_secs(180);

/// The `Ready` condition's verdict: ready, or the problems that keep the node from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every check passed.
    Ready,
    /// The problems, each a sentence in the kubelet's manner.
    NotReady(Vec<String>),
}

/// The verdict on `health` at `now`.
pub fn readiness(health: &ReconcilerHealth, now: Instant) -> Readiness {
    let mut problems = Vec::new();
    if let Some(error) = &health.systemd_error {
        problems.push(format!("systemd is not reachable: {error}"));
    }
    let waited = now.saturating_duration_since(health.progress_at);
    if health.queued > 0 && waited >= RECONCILER_THRESHOLD {
        problems.push(format!(
            "reconciler is not healthy: {} pods waiting, last pass finished {} ago; threshold is {}",
            health.queued,
            go_duration(waited),
            go_duration(RECONCILER_THRESHOLD)
        ));
    }
    if problems.is_empty() {
        Readiness::Ready
    } else {
        Readiness::NotReady(problems)
    }
}

/// `duration` in whole seconds as Go prints one: `3m0s`, `1h2m3s`, `45s`.
pub fn go_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(queued: usize, systemd_error: Option<&str>) -> (ReconcilerHealth, Instant) {
        let start = Instant::now();
        let health = ReconcilerHealth {
            progress_at: start,
            queued,
            systemd_error: systemd_error.map(str::to_owned),
        };
        (health, start)
    }

    #[test]
    fn idle_reconciler_is_ready_however_long_ago_its_last_pass() {
        let (health, start) = health(0, None);
        let much_later = start + Duration::from_secs(86_400);
        assert_eq!(readiness(&health, much_later), Readiness::Ready);
    }

    #[test]
    fn queued_work_is_late_only_at_the_threshold() {
        let (health, start) = health(2, None);
        let before = start + RECONCILER_THRESHOLD - Duration::from_secs(1);
        assert_eq!(readiness(&health, before), Readiness::Ready);
        assert_eq!(
            readiness(&health, start + RECONCILER_THRESHOLD),
            Readiness::NotReady(vec![
                "reconciler is not healthy: 2 pods waiting, last pass finished 3m0s ago; \
                 threshold is 3m0s"
                    .to_owned()
            ])
        );
    }

    #[test]
    fn unreachable_systemd_is_not_ready_at_once() {
        let (health, start) = health(0, Some("D-Bus StartUnit: Connection refused"));
        assert_eq!(
            readiness(&health, start),
            Readiness::NotReady(vec![
                "systemd is not reachable: D-Bus StartUnit: Connection refused".to_owned()
            ])
        );
    }

    #[test]
    fn both_problems_are_listed() {
        let (health, start) = health(1, Some("gone"));
        let Readiness::NotReady(problems) = readiness(&health, start + Duration::from_secs(600))
        else {
            panic!("expected NotReady");
        };
        assert_eq!(problems.len(), 2);
        assert!(problems[1].contains("10m0s ago"), "{}", problems[1]);
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
        assert_eq!(go_duration(Duration::from_secs(180)), "3m0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration(Duration::from_millis(999)), "0s");
    }
}
