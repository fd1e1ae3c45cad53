//! The agent's shutdown (issue 16, point 4): on SIGTERM its tasks stop in order — the
//! pod sources first, then the reconciler (after draining its passes) and the garbage
//! collector, then the progress forwarder, the kubelet API last — each logged, and the
//! agent exits 0 with its pods still running. (The forwarder ends by itself once the
//! reconciler is gone, so it may be logged before the garbage collector.)

use super::machine::{Machine, phase};
use super::{START, sleeper};
use crate::support::TestContext;

#[tokio::test]
async fn sigterm_stops_the_agents_tasks_in_order_and_leaves_pods_running() {
    let context = TestContext::new("sigterm_order");
    let machine = Machine::new(&context).await;
    machine.write_manifest("calm.yaml", &sleeper("calm"));
    let agent = machine.start_serving_agent(START).await;
    let unit = machine.unit("calm", "main");
    let pid = machine.wait_running(START, &unit).await;
    machine
        .wait_pod(START, "calm", "Running", |pod| phase(pod) == "Running")
        .await;

    agent.terminate().await;

    let log = machine.log();
    let stopped: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("task stopped"))
        .filter_map(|line| line.split("task=\"").nth(1)?.split('"').next())
        .collect();
    let position = |task: &str| {
        stopped
            .iter()
            .position(|t| *t == task)
            .unwrap_or_else(|| panic!("{task} is not among the stopped tasks {stopped:?}"))
    };
    assert!(
        position("manifest watch") < position("reconciler")
            && position("reconciler") < position("progress forwarder")
            && position("garbage collector") < position("kubelet API")
            && position("progress forwarder") < position("kubelet API"),
        "tasks stopped in the order {stopped:?}"
    );
    assert!(
        !log.contains("ended unexpectedly") && !log.contains("was cancelled"),
        "{log}"
    );
    let status = machine.status(&unit).await;
    assert_eq!(
        (status.main_pid, status.sub_state.as_str()),
        (pid, "running")
    );
    machine.clean_up().await;
}
