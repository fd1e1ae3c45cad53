//! A container is ready only when its unit is `active` (issue 12, point 2), in the booted
//! systemd: a `Type=notify` unit is running but not ready until it sends `READY=1`, and
//! its change to `active` reaches systemk as a unit signal (what marks the pod dirty in
//! the reconciler), without polling.
//!
//! systemk gives a container `Type=notify` only through its package's vendor unit, and
//! this test installs nothing: it runs the vendor unit of Debian's `dbus` package (a
//! `Type=notify`, `NotifyAccess=main` unit, `Priority: standard`, so on every Debian
//! host) with `imagePullPolicy: Never`, its program replaced by a Perl script that sends
//! `READY=1` itself (it is the main process) once the test creates a trigger file in the
//! container's own `/run`.

use futures::StreamExt as _;
use serde_json::json;

use crate::support::engine::{DEADLINE, Engine, container_status, unique_uid};
use crate::support::packages::known_to_dpkg;
use crate::support::{TestContext, skip};
use systemk::systemd::ActiveState;

/// Waits for `/run/ready-trigger`, then sends `READY=1` to systemd's notify socket and
/// sleeps. Written for `perl -e`; every `$` reaches Perl unchanged (systemk escapes it).
const NOTIFY_SCRIPT: &str = r#"
use Socket;
until (-e "/run/ready-trigger") { select(undef, undef, undef, 0.05) }
socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
send($s, "READY=1", 0, pack_sockaddr_un($ENV{NOTIFY_SOCKET})) or die "send: $!";
sleep;
"#;

fn condition(status: &k8s_openapi::api::core::v1::PodStatus, type_: &str) -> String {
    let conditions = status.conditions.as_ref().expect("conditions");
    let found = conditions.iter().find(|c| c.type_ == type_);
    found.map(|c| c.status.clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_notify_container_is_ready_only_after_ready_1() {
    const TEST: &str = "ready_when_active_notify";
    let context = TestContext::new(TEST);
    if !known_to_dpkg("dbus") || !std::path::Path::new("/lib/systemd/system/dbus.service").exists()
    {
        skip(
            TEST,
            "the dbus package (its Type=notify vendor unit) is not installed",
        );
        return;
    }
    let engine = Engine::new(None).await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "notify", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {"containers": [{
            "name": "main", "image": "dbus", "imagePullPolicy": "Never",
            "command": ["/usr/bin/perl", "-e"], "args": [NOTIFY_SCRIPT],
        }]},
    }))
    .unwrap();
    let run = engine.run(pod);
    // The pass does not wait for READY=1: it shows the container running, not ready.
    let status = run
        .until(DEADLINE, "the container to run", |status| {
            let main = container_status(status, "main")?;
            main.state.as_ref()?.running.as_ref()?;
            Some(status.clone())
        })
        .await;
    let unit = run.unit_status("main").await;
    assert_eq!(unit.active_state, ActiveState::Activating, "{unit:?}");
    let main = container_status(&status, "main").unwrap();
    assert_eq!((main.started, main.ready), (Some(true), false));
    assert_eq!(condition(&status, "ContainersReady"), "False");
    assert_eq!(condition(&status, "Ready"), "False");
    // Nothing changes while the daemon has not said it is ready.
    let again = run.pass().await;
    assert!(!container_status(&again, "main").unwrap().ready);
    assert_eq!(
        run.unit_status("main").await.active_state,
        ActiveState::Activating
    );

    // READY=1 turns the unit active, which systemd signals.
    let mut events = engine.ctx().systemd.subscribe().await.unwrap();
    std::fs::write(run.run_dir("main").join("ready-trigger"), "").unwrap();
    let name = run.unit_name("main");
    let signalled = async {
        while let Some(event) = events.next().await {
            let active = event.active_state == Some(ActiveState::Active);
            if event.name == name && active {
                return;
            }
        }
        panic!("the signal stream ended");
    };
    tokio::time::timeout(DEADLINE, signalled)
        .await
        .expect("no signal of the unit's change to active");
    let status = run.pass().await;
    let main = container_status(&status, "main").unwrap();
    assert!(main.ready, "{main:?}");
    assert_eq!(main.restart_count, 0);
    assert_eq!(condition(&status, "ContainersReady"), "True");
    assert_eq!(condition(&status, "Ready"), "True");
    run.finish().await;
}
