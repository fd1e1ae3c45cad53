//! Databases. postgresql (a template unit, `postgresql@15-main.service`) is in
//! `vendor_units.rs`.

use std::time::Duration;

use super::{Case, Probe, run_case};

/// MariaDB's handshake packet names the server. The package ships `mariadb.service` and
/// the template `mariadb@.service` (multi-instance): the pod names the first.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn mariadb_sends_its_handshake() {
    run_case(Case {
        probe_deadline: Duration::from_secs(90),
        vendor_unit: Some("mariadb.service"),
        ..Case::new(
            "suite_mariadb",
            "mariadb-server",
            &[
                "mariadb-server",
                "mariadb-server-core",
                "mariadb-client",
                "mariadb-client-core",
                "mariadb-common",
            ],
            Probe::Tcp {
                port: 3306,
                send: b"",
                expect: b"MariaDB",
            },
        )
    })
    .await;
}
