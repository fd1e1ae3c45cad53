//! Caches. memcached and redis are in `run_dirs.rs`.

use super::{Case, Probe, run_case};

/// varnish compiles its VCL at start and answers (no backend listens: its own 503 page).
/// varnishd makes its working directory `/var/lib/varnish/<hostname>` itself, and the
/// package ships no such directory: the pod gives it an emptyDir there.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn varnish_answers_on_6081() {
    run_case(Case {
        empty_dirs: &["/var/lib/varnish"],
        ..Case::new(
            "suite_varnish",
            "varnish",
            &["varnish"],
            Probe::http(6081, b"GET / HTTP/1.0\r\n\r\n", b"Varnish"),
        )
    })
    .await;
}
