//! DNS servers, each asked for `localhost.`. bind9 is in `run_dirs.rs`.

use super::{Case, Probe, known_failure, run_case};

/// unbound does not run yet: its unit has `ExecReload=+/bin/kill -HUP $MAINPID`, and
/// systemk refuses `+` lines (they run outside the pod's sandbox).
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn unbound_is_refused_for_its_privileged_exec_reload() {
    known_failure(
        Case::new("suite_unbound", "unbound", &["unbound"], Probe::Dns),
        "CreateContainerConfigError",
        "ExecReload=+/bin/kill -HUP $MAINPID",
    )
    .await;
}

/// dnsmasq answers `localhost` from `/etc/hosts`.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn dnsmasq_answers_a_query() {
    run_case(Case::new(
        "suite_dnsmasq",
        "dnsmasq",
        &["dnsmasq", "dnsmasq-base"],
        Probe::Dns,
    ))
    .await;
}
