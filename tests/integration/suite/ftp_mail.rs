//! FTP and mail servers, each checked by its greeting. openssh-server and vsftpd are in
//! `run_dirs.rs`.

use super::{Case, Probe, known_failure, run_case};

#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn proftpd_greets() {
    run_case(Case::new(
        "suite_proftpd",
        "proftpd-basic",
        &["proftpd-basic", "proftpd-core"],
        Probe::Tcp {
            port: 21,
            send: b"",
            expect: b"220 ",
        },
    ))
    .await;
}

/// exim4 does not run yet: Debian 12 starts the daemon from an init script only; the one
/// service unit its packages ship is `exim4-base.service`, the daily housekeeping
/// oneshot, which systemk runs as the container: it exits at once and crash-loops.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn exim4_has_no_daemon_unit_and_crash_loops() {
    known_failure(
        Case::new(
            "suite_exim4",
            "exim4-daemon-light",
            &["exim4-daemon-light", "exim4-base", "exim4-config", "exim4"],
            Probe::Tcp {
                port: 25,
                send: b"",
                expect: b"ESMTP Exim",
            },
        ),
        "CrashLoopBackOff",
        "restarting failed container=main",
    )
    .await;
}

#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn dovecot_imapd_greets() {
    run_case(Case::new(
        "suite_dovecot",
        "dovecot-imapd",
        &["dovecot-imapd", "dovecot-core"],
        Probe::Tcp {
            port: 143,
            send: b"",
            expect: b"* OK",
        },
    ))
    .await;
}

/// vsftpd starts and listens but sends no banner, with Debian's defaults
/// (`run_dirs::vsftpd_greets`) and also with its namespace isolation off (`isolate=NO`,
/// `isolate_network=NO`, which `RestrictNamespaces=yes` would refuse) and `chroot`
/// allowed: the cause is not found yet. `scripts/package-suite` skips it.
#[tokio::test]
#[ignore = "known failure: vsftpd sends no banner (docs/packages.md)"]
async fn vsftpd_greets_with_namespace_isolation_off() {
    run_case(Case {
        args: &["/etc/vsftpd.conf", "-oisolate=NO", "-oisolate_network=NO"],
        ..Case::new(
            "suite_vsftpd",
            "vsftpd",
            &["vsftpd"],
            Probe::Tcp {
                port: 21,
                send: b"",
                expect: b"220",
            },
        )
    })
    .await;
}
