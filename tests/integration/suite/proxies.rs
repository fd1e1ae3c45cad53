//! Proxies and load balancers.

use super::{Case, Probe, run_case};

/// Debian's haproxy.cfg has no frontend; its admin socket `/run/haproxy/admin.sock`
/// answers `show info`.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn haproxy_answers_on_its_admin_socket() {
    run_case(Case::new(
        "suite_haproxy",
        "haproxy",
        &["haproxy"],
        Probe::Unix {
            path: "haproxy/admin.sock",
            send: b"show info\n",
            expect: b"Name: HAProxy",
        },
    ))
    .await;
}

#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn squid_answers_on_3128() {
    run_case(Case::new(
        "suite_squid",
        "squid",
        &["squid", "squid-common", "squid-langpack"],
        Probe::http(3128, b"GET / HTTP/1.0\r\n\r\n", b"squid"),
    ))
    .await;
}

#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn tinyproxy_answers_on_8888() {
    run_case(Case::new(
        "suite_tinyproxy",
        "tinyproxy",
        &["tinyproxy", "tinyproxy-bin"],
        Probe::http(8888, b"GET / HTTP/1.0\r\n\r\n", b"tinyproxy"),
    ))
    .await;
}
