//! Web servers. nginx and apache2 are in `vendor_units.rs` and `run_dirs.rs`.

use super::{Case, Probe, run_case};

/// lighttpd: CI runs it (a web server from a package systemk installs).
#[tokio::test]
async fn lighttpd_serves_its_placeholder_page() {
    run_case(Case::new(
        "suite_lighttpd",
        "lighttpd",
        &["lighttpd"],
        Probe::http(80, b"GET / HTTP/1.0\r\n\r\n", b"Server: lighttpd"),
    ))
    .await;
}
