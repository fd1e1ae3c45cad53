//! What probe results mean for the container's status and events, as the kubelet's
//! prober manager and `kuberuntime` say it. Pure. Layer 4.

use super::outcome::{Outcome, Result};
use super::plan::Kind;

/// What a container's probes report for its current run; `None`: it has no such probe,
/// `Some(None)`: no result yet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Probed {
    /// The readiness probe's result.
    pub readiness: Option<Option<bool>>,
    /// The startup probe's result.
    pub startup: Option<Option<bool>>,
}

/// The container's `ready`, as the kubelet's prober manager: started, its unit serves
/// (the no-probe rule) and, with a readiness probe, the probe reports success.
pub fn ready(serving: bool, probed: Probed) -> bool {
    serving
        && started(true, probed.startup)
        && probed
            .readiness
            .is_none_or(|reported| reported == Some(true))
}

/// The container's `started`: running and, with a startup probe, the probe succeeded.
pub fn started(running: bool, startup: Option<Option<bool>>) -> bool {
    running && startup.is_none_or(|reported| reported == Some(true))
}

/// The event of an attempt that did not plainly pass: reason and message, as the
/// kubelet's `recordContainerEvent` (`Unhealthy`, "Liveness probe failed: …").
pub fn remark(kind: Kind, outcome: &Outcome) -> (&'static str, String) {
    match outcome.result {
        Result::Warning => (
            "ProbeWarning",
            format!("{} probe warning: {}", kind.title(), outcome.output),
        ),
        Result::Success | Result::Failure => (
            "Unhealthy",
            format!("{} probe failed: {}", kind.title(), outcome.output),
        ),
    }
}

/// The `Killing` event's message of a container a probe restarts.
pub fn killing(container: &str, kind: Kind) -> String {
    format!(
        "Container {container} failed {} probe, will be restarted",
        kind.lower()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_and_startup_gate_the_no_probe_rule() {
        let readiness = |readiness| Probed {
            readiness,
            startup: None,
        };
        assert!(ready(true, Probed::default()));
        assert!(
            !ready(false, Probed::default()),
            "a unit that is not active is never ready"
        );
        assert!(!ready(true, readiness(Some(Some(false)))));
        assert!(!ready(true, readiness(Some(None))));
        assert!(ready(true, readiness(Some(Some(true)))));
        assert!(!ready(false, readiness(Some(Some(true)))));
        let unstarted = Probed {
            readiness: None,
            startup: Some(None),
        };
        assert!(!ready(true, unstarted), "not ready before it started");
        assert!(started(true, None));
        assert!(!started(true, Some(None)));
        assert!(started(true, Some(Some(true))));
        assert!(!started(false, Some(Some(true))));
    }

    #[test]
    fn events_speak_as_the_kubelet() {
        let failed = Outcome::failure("HTTP probe failed with statuscode: 500");
        assert_eq!(
            remark(Kind::Liveness, &failed),
            (
                "Unhealthy",
                "Liveness probe failed: HTTP probe failed with statuscode: 500".into()
            )
        );
        let warned = Outcome::new(Result::Warning, "Probe terminated redirects");
        assert_eq!(remark(Kind::Readiness, &warned).0, "ProbeWarning");
        assert_eq!(
            killing("main", Kind::Liveness),
            "Container main failed liveness probe, will be restarted"
        );
    }
}
