//! The API path (issue 15, points 4 and 5): systemk as the node of the test API server
//! (`api_server.rs`), pods created through the API by a kube-rs client of this process and
//! seen `Running` through a watch (`pod_watch.rs`), both ends on this process's clock.
//!
//! In order: N pods created one after the other, all `Running` (`api_create_to_running_*`
//! per pod, `api_burst_ms` first create → last `Running`), with systemk's own requests
//! counted over the burst and 5 s after (`api_requests_per_pod*`, `request_counts.rs`);
//! an idle window with the N pods running (`api_idle_requests`: every request systemk
//! made in it, by verb and resource); one pod more, created → `Running` and deleted →
//! gone (and the reload owed for it done, as in `single.rs`), `--trials` times
//! (`api_single_*`); then up to
//! `crash::TRIALS` of the N pods killed, each until its status patch is watched
//! (`api_crash_to_status_*`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::json;

use crate::api_server::ApiServer;
use crate::exec::{NODE, start_agent};
use crate::percentile::percentile;
use crate::pod_watch::{PodWatch, is_running};
use crate::request_counts::Counts;
use crate::{NAMESPACE, UNIT_DIR, bus, crash, single};

/// The agent's first sync; one pod's start or removal.
const DEADLINE: Duration = Duration::from_secs(60);
/// After the last pod runs, its last status patches are still on their way.
const SETTLE: Duration = Duration::from_secs(5);
/// How often a trial looks whether its pod's unit is gone.
const POLL: Duration = Duration::from_millis(5);

/// The figures of this phase, in milliseconds unless named otherwise.
#[derive(Debug, Serialize)]
pub struct ApiFigures {
    /// Pods created at once.
    pub api_pods: usize,
    /// A pod's create sent → its `Running` watched, median over the N.
    pub api_create_to_running_p50_ms: f64,
    /// The same, 99th percentile.
    pub api_create_to_running_p99_ms: f64,
    /// First create sent → last `Running` watched.
    pub api_burst_ms: f64,
    /// systemk's requests to the API server over the burst and its settling, per pod.
    pub api_requests_per_pod: f64,
    /// The same by verb.
    pub api_requests_per_pod_by_verb: BTreeMap<String, f64>,
    /// The requests counted for `api_requests_per_pod`, by `"<verb> <resource>"`.
    pub api_burst_requests: BTreeMap<String, u64>,
    /// systemk's requests over the idle window, by `"<verb> <resource>"`.
    pub api_idle_requests: BTreeMap<String, u64>,
    /// Trials of one pod more.
    pub api_single_runs: usize,
    /// One pod more on the node running N: create sent → `Running` watched, median.
    pub api_single_p50_ms: f64,
    /// The same, 99th percentile.
    pub api_single_p99_ms: f64,
    /// Pods whose container was killed.
    pub api_crash_runs: usize,
    /// A pod's container killed → its status patch watched, median.
    pub api_crash_to_status_p50_ms: f64,
    /// The same, 99th percentile.
    pub api_crash_to_status_p99_ms: f64,
}

/// Runs the phase with `n` pods, its own API server (from `test_binary`) and agent (log:
/// `log`), state under `work`. Leaves the pods' units for the benchmark's cleanup.
pub async fn measure(
    work: &Path,
    test_binary: &Path,
    log: &Path,
    n: usize,
    idle: Duration,
    trials: usize,
) -> anyhow::Result<ApiFigures> {
    let work = work.join("api");
    std::fs::create_dir(&work)?;
    let server = ApiServer::start(test_binary, &work)?;
    let agent = start_agent(&work, &server.kubeconfig, log)?;
    let client = client(&server.kubeconfig).await?;
    tokio::task::block_in_place(|| agent.wait_synced(DEADLINE))?;
    let namespace = json!({"metadata": {"name": NAMESPACE}});
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(namespace)?)
        .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), NAMESPACE);
    let mut watch = PodWatch::start(pods.clone()).await?;

    // Untimed: systemk's SubjectAccessReview of the reader, cached from here on.
    Counts::read(&client, NODE).await?;
    let before = Counts::read(&client, NODE).await?;
    let names: Vec<String> = (0..n).map(|i| format!("api-{i:04}")).collect();
    let mut created = BTreeMap::new();
    for name in &names {
        created.insert(name.clone(), Instant::now());
        pods.create(&PostParams::default(), &pod(name)?).await?;
    }
    let running = wait_running(&mut watch, &created).await?;
    tokio::time::sleep(SETTLE).await;
    let burst_counts = Counts::read(&client, NODE).await?.since(&before);
    let first = created.values().min().context("no pods")?;
    let last = running.values().max().context("no pods")?;
    let per_pod: Vec<f64> = names
        .iter()
        .map(|name| ms(running[name] - created[name]))
        .collect();
    eprintln!(
        "api: all {n} pods running after {:.1} ms; idling",
        ms(*last - *first)
    );

    let before_idle = Counts::read(&client, NODE).await?;
    tokio::time::sleep(idle).await;
    let idle_counts = Counts::read(&client, NODE).await?.since(&before_idle);

    eprintln!("api: one pod more, {trials} times");
    let bus = zbus::Connection::system().await?;
    let mut single_ms = Vec::with_capacity(trials);
    for trial in 0..trials {
        let name = format!("api-single-{trial:02}");
        watch.drain();
        let sent = Instant::now();
        pods.create(&PostParams::default(), &pod(&name)?).await?;
        let running = wait_running(&mut watch, &BTreeMap::from([(name.clone(), sent)])).await?;
        single_ms.push(ms(running[&name] - sent));
        let mut reloads = crate::bus::reloads(&bus).await?;
        pods.delete(&name, &DeleteParams::default()).await?;
        wait_gone(&bus, &mut watch, &name).await?;
        single::quiet_after_removal(&mut reloads).await?;
    }

    eprintln!("api: up to {} pods' containers killed", crash::TRIALS);
    let crash_ms = crash::measure_api(&mut watch, "api-0").await?;
    drop(agent);
    let count = n as f64;
    Ok(ApiFigures {
        api_pods: n,
        api_create_to_running_p50_ms: percentile(&per_pod, 50.0),
        api_create_to_running_p99_ms: percentile(&per_pod, 99.0),
        api_burst_ms: ms(*last - *first),
        api_requests_per_pod: burst_counts.total() as f64 / count,
        api_requests_per_pod_by_verb: burst_counts
            .by_verb()
            .into_iter()
            .map(|(verb, requests)| (verb, requests as f64 / count))
            .collect(),
        api_burst_requests: burst_counts.by_verb_and_resource(),
        api_idle_requests: idle_counts.by_verb_and_resource(),
        api_single_runs: trials,
        api_single_p50_ms: percentile(&single_ms, 50.0),
        api_single_p99_ms: percentile(&single_ms, 99.0),
        api_crash_runs: crash_ms.len(),
        api_crash_to_status_p50_ms: percentile(&crash_ms, 50.0),
        api_crash_to_status_p99_ms: percentile(&crash_ms, 99.0),
    })
}

/// A kube-rs client of the server that wrote `kubeconfig`.
async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// A pod of the node: `/bin/sleep infinity`, tolerating the node's taint.
fn pod(name: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeName": NODE,
            "automountServiceAccountToken": false,
            "tolerations": [{
                "key": "virtual-kubelet.io/provider",
                "operator": "Exists",
                "effect": "NoSchedule",
            }],
            "containers": [{"name": "main", "image": "/bin/sleep", "args": ["infinity"]}],
        },
    }))?)
}

/// Reads `watch` until every pod of `created` was seen `Running`: when, for each.
async fn wait_running(
    watch: &mut PodWatch,
    created: &BTreeMap<String, Instant>,
) -> anyhow::Result<BTreeMap<String, Instant>> {
    let mut running = BTreeMap::new();
    while running.len() < created.len() {
        let seen = watch
            .next(DEADLINE)
            .await
            .with_context(|| format!("{} of {} pods running", running.len(), created.len()))?;
        if created.contains_key(&seen.name) && seen.pod.as_ref().is_some_and(is_running) {
            running.entry(seen.name).or_insert(seen.at);
        }
    }
    Ok(running)
}

/// Reads `watch` until `name` is deleted, then waits until its unit is inactive and its
/// file gone.
async fn wait_gone(bus: &zbus::Connection, watch: &mut PodWatch, name: &str) -> anyhow::Result<()> {
    loop {
        let seen = watch.next(DEADLINE).await?;
        if seen.name == name && seen.pod.is_none() {
            break;
        }
    }
    let unit = systemk::unit::UnitName::for_container(NAMESPACE, name, "main")?;
    let deadline = Instant::now() + DEADLINE;
    while bus::count_active(bus, unit.as_str()).await? > 0
        || Path::new(UNIT_DIR).join(unit.as_str()).exists()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{unit:?} still there after {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}
