//! The sandbox itself: the tests really run under a private systemd, not the host's.

use std::time::Duration;

use crate::support::{TestContext, system_bus, wait_for};

#[tokio::test]
async fn runs_under_a_private_systemd() {
    let context = TestContext::new("runs_under_a_private_systemd");
    let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(pid1.trim(), "systemd");
    let container = std::fs::read("/proc/1/environ").unwrap();
    assert!(
        container
            .split(|&b| b == 0)
            .any(|var| var.starts_with(b"container=systemk-sandbox-")),
        "PID 1 was not started by scripts/systemd-sandbox"
    );
    assert!(context.workspace().read_dir().unwrap().next().is_none());

    let bus = system_bus().await;
    let reply = wait_for(
        Duration::from_secs(5),
        "the bus to answer GetId",
        || async {
            bus.call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus"),
                "GetId",
                &(),
            )
            .await
            .ok()
        },
    )
    .await;
    let id: String = reply.body().deserialize().unwrap();
    assert!(!id.is_empty());
}

#[test]
fn every_context_gets_its_own_names() {
    let first = TestContext::new("every_context_gets_its_own_names");
    let second = TestContext::new("every_context_gets_its_own_names");
    assert_ne!(first.namespace(), second.namespace());
    assert_ne!(first.workspace(), second.workspace());
    let unit = first.unit_name("pod", "container");
    assert_eq!(
        unit.as_str(),
        format!("systemk.{}.pod.container.service", first.namespace())
    );
}
