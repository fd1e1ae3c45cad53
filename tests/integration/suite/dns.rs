//! DNS servers, each asked for `localhost.`. bind9 is in `run_dirs.rs`.

use super::{Case, Probe, run_case};

#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn unbound_answers_a_query() {
    run_case(Case::new(
        "suite_unbound",
        "unbound",
        &["unbound"],
        Probe::Dns,
    ))
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
