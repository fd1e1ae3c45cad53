//! Databases. postgresql (a template unit, `postgresql@15-main.service`) is in
//! `vendor_units.rs`.

use super::{Case, Probe, known_failure};

/// MariaDB does not run yet: `mariadb.service` (the package also ships the template
/// `mariadb@.service`, so the pod names it) has `ExecStartPost=!/etc/mysql/debian-start`,
/// and systemk refuses `!`/`+` lines, which would run outside its user and sandbox.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn mariadb_is_refused_for_its_privileged_exec_start_post() {
    known_failure(
        Case {
            vendor_unit: Some("mariadb.service"),
            ..Case::new("suite_mariadb", "mariadb-server", MARIADB, PROBE)
        },
        "CreateContainerConfigError",
        "ExecStartPost=!/etc/mysql/debian-start",
    )
    .await;
}

/// What apt installs for mariadb-server from its own source package.
const MARIADB: &[&str] = &[
    "mariadb-server",
    "mariadb-server-core",
    "mariadb-client",
    "mariadb-client-core",
    "mariadb-common",
];

/// MariaDB's handshake packet names the server (the probe once it runs).
const PROBE: Probe = Probe::Tcp {
    port: 3306,
    send: b"",
    expect: b"MariaDB",
};
