//! `scripts/bench`: N static pods (`/bin/sleep infinity`) started by systemk, against the
//! floor of starting the very same units directly through systemd. Runs inside
//! `scripts/systemd-sandbox` (it starts real units), built with `--release`.
//!
//! Timing: every start mark is CLOCK_MONOTONIC read by this process just before the action
//! (writing the floor's unit files; renaming each manifest into the watched directory),
//! and every end mark is the unit's `ActiveEnterTimestampMonotonic`, which systemd takes
//! on the same clock when the unit becomes active — for these `Type=exec` units, once
//! `/bin/sleep` has been exec'd. Both ends come from one clock with microsecond
//! resolution, and how often this process polls does not change the figures: it only
//! decides when they are read.
//!
//! Figures: `floor_ms` (write N units, start all without a daemon-reload, last active),
//! `systemk_ms` (first manifest renamed in, last container active), per-pod times
//! (manifest renamed in → its container active), systemk's RSS and CPU time over an
//! idle window with the N pods running, and the CPU the same number of pods with a 1 s
//! readiness probe each adds (`probe_cpu_percent`, see `probes.rs`); once those pods are
//! gone, the `kubectl exec` round trip through the test API server against its floors
//! (`exec.rs`); the failure path, containers killed until their status shows it
//! (`crash.rs`); and the API path, pods created through the test API server until
//! watched `Running`, with systemk's own requests counted (`api_path.rs`). Written to
//! `target/bench/static-pods.json`.

mod agent;
mod api_path;
mod api_server;
mod burst;
mod bus;
mod cell;
mod crash;
mod exec;
mod percentile;
mod pod_watch;
mod probes;
mod report;
mod request_counts;
mod scale;
mod single;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::time::{ClockId, clock_gettime};
use systemk::systemd::Systemd;
use systemk::unit::UnitName;

use percentile::percentile;
use report::Report;

pub(crate) const SYSTEMK: &str = env!("CARGO_BIN_EXE_systemk");
pub(crate) const UNIT_DIR: &str = "/etc/systemd/system";
/// The namespace of the benchmark's pods; its units are `systemk.systemk-bench.*`.
pub(crate) const NAMESPACE: &str = "systemk-bench";
/// Where `systemk render` puts the pods' directories (systemk's default state directory).
const RENDERED_PODS: &str = "/var/lib/systemk/pods";
/// Prefix of the floor's units, in place of `systemk.`: not systemk's, so the agent never
/// adopts them.
const FLOOR_PREFIX: &str = "bench-floor.";
/// How often the benchmark asks systemd how many units are active.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait for all N units to be active.
const START_DEADLINE: Duration = Duration::from_secs(600);
/// The agent's first sync, with an empty manifest directory.
pub(crate) const SYNC_DEADLINE: Duration = Duration::from_secs(60);
/// Quiet time after the last pod runs before the idle window opens: the agent is still
/// saving the pods' final statuses then.
pub(crate) const SETTLE: Duration = Duration::from_secs(5);

struct Options {
    pods: usize,
    /// Pods of the scale phase; `None` with `--quick`.
    scale_pods: Option<usize>,
    /// Trials of one pod more (twice as many exec round trips).
    trials: usize,
    idle_seconds: u64,
    out: PathBuf,
    /// The integration test binary, which serves the test API server (`--test-binary`).
    test_binary: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    if std::env::var("SYSTEMK_SANDBOX").as_deref() != Ok("1") {
        bail!("run the benchmark with scripts/bench: it starts units in a private systemd");
    }
    let work = tempfile::Builder::new()
        .prefix("systemk-bench.")
        .tempdir_in("/run")?;
    let result = run(&options, work.path()).await;
    let cleaned = cleanup().await;
    let report = result?;
    cleaned?;
    print!("{}", report.table());
    report.write_json(&options.out)?;
    println!("written to {}", options.out.display());
    Ok(())
}

async fn run(options: &Options, work: &Path) -> anyhow::Result<Report> {
    let bus = zbus::Connection::system().await?;
    let node = hostname()?;
    let n = options.pods;
    let log = options.out.with_file_name("agent.log");
    let burst = burst::run(&bus, work, "burst", n, &node, &log).await?;
    let (floor_ms, systemk_ms, pod_ms, agent, watched, state) = (
        burst.floor_ms,
        burst.systemk_ms,
        burst.pod_ms,
        burst.agent,
        burst.watched,
        burst.state,
    );
    eprintln!("idling");

    tokio::time::sleep(SETTLE).await;
    let window = Duration::from_secs(options.idle_seconds);
    let (agent, idle) = tokio::task::spawn_blocking(move || {
        let idle = agent.sample_idle(window);
        (agent, idle)
    })
    .await?;
    let idle = idle?;

    let trials = options.trials;
    eprintln!("single: one pod more, {trials} times, and its floor");
    let single = single::measure(&bus, work, &watched, &node, trials).await?;
    eprintln!("crash: up to {} pods' containers killed", crash::TRIALS);
    let crash = crash::measure_static(&state, "sleep-").await?;

    eprintln!("probes: {n} pods with a 1 s readiness probe (half tcpSocket, half exec)");
    let port = probes::listener()?;
    probes::swap_manifests(&watched, n, port)?;
    wait_active(&bus, &format!("systemk.{NAMESPACE}.{}*", probes::PROBED), n).await?;
    tokio::time::sleep(SETTLE).await;
    let probed = tokio::task::spawn_blocking(move || {
        let probed = agent.sample_idle(window);
        drop(agent);
        probed
    })
    .await??;
    eprintln!("probes: the floor, {} runs of /bin/true a second", n / 2);
    let exec_floor =
        tokio::task::spawn_blocking(move || probes::exec_floor(n / 2, window)).await??;
    // The N pods go first: the next phases start on an otherwise empty node.
    cleanup().await?;
    let scale = match options.scale_pods {
        Some(pods) => {
            let log = options.out.with_file_name("agent-scale.log");
            let scale = scale::measure(&bus, work, &node, pods, window, trials, &log).await?;
            cleanup().await?;
            Some(scale)
        }
        None => None,
    };
    eprintln!("exec: kubectl exec through the test API server, systemk as its node");
    let exec_log = options.out.with_file_name("agent-exec.log");
    let (exec_work, test_binary) = (work.to_owned(), options.test_binary.clone());
    let runs = 2 * trials;
    let exec = tokio::task::spawn_blocking(move || {
        exec::measure(&exec_work, &test_binary, runs, &exec_log)
    })
    .await??;
    cleanup().await?;
    eprintln!("api: {n} pods through the test API server, systemk as its node");
    let api_log = options.out.with_file_name("agent-api.log");
    let api = api_path::measure(work, &options.test_binary, &api_log, n, window, trials).await?;
    Ok(Report {
        n,
        floor_ms,
        systemk_ms,
        ratio: systemk_ms / floor_ms,
        pod_p50_ms: percentile(&pod_ms, 50.0),
        pod_p99_ms: percentile(&pod_ms, 99.0),
        pod_max_ms: percentile(&pod_ms, 100.0),
        idle_rss_kib: idle.max_rss_kib,
        idle_cpu_percent: idle.cpu_percent,
        idle_seconds: options.idle_seconds,
        probe_cpu_percent: probed.cpu_percent - idle.cpu_percent,
        probe_exec_floor_cpu_percent: exec_floor,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        single,
        scale,
        crash,
        exec,
        api,
    })
}

/// The floor: the units `systemk render` makes of the same manifests, under names of
/// their own, written at once and all started at once, without a daemon-reload (systemd
/// reads a unit it never loaded from disk when it is first started: the fastest way). Returns the time
/// from writing the first file to the last unit active, then removes them.
pub(crate) async fn floor(
    bus: &zbus::Connection,
    work: &Path,
    tag: &str,
    manifests: &[String],
) -> anyhow::Result<f64> {
    let units = floor_units(work, tag, manifests)?;
    let names: Vec<String> = units.iter().map(|(name, _)| name.clone()).collect();
    let started = monotonic_us()?;
    for (name, text) in &units {
        std::fs::write(Path::new(UNIT_DIR).join(name), text)?;
    }
    bus::start_all(bus, &names).await?;
    let pattern = format!("{FLOOR_PREFIX}*");
    wait_active(bus, &pattern, names.len()).await?;
    let mut last = 0;
    for name in &names {
        last = last.max(bus::active_enter_monotonic_us(bus, name).await?);
    }
    remove_floor(bus, &names).await?;
    Ok(last.saturating_sub(started) as f64 / 1000.0)
}

/// The units `systemk render` makes of `manifests`, under the floor's names, with what
/// they bind made below `work/<tag>-pods`: (name, text) per pod.
pub(crate) fn floor_units(
    work: &Path,
    tag: &str,
    manifests: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let all = work.join(format!("{tag}.yaml"));
    std::fs::write(&all, manifests.join("---\n"))?;
    let output = std::process::Command::new(SYSTEMK)
        .args(["render", "--node-ip", "127.0.0.1", "-f"])
        .arg(&all)
        .output()?;
    if !output.status.success() {
        bail!(
            "systemk render: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // systemk in this benchmark keeps its pods under the work directory: so do the
    // floor's units, never under the host's /var/lib/systemk.
    let pods_dir = work.join(format!("{tag}-pods"));
    let rendered =
        String::from_utf8(output.stdout)?.replace(RENDERED_PODS, &pods_dir.to_string_lossy());
    let units = split_rendered(&rendered);
    if units.len() != manifests.len() {
        bail!(
            "systemk render made {} units of {} pods",
            units.len(),
            manifests.len()
        );
    }
    bind_sources(&units, &pods_dir)?;
    Ok(units)
}

/// Creates what the units bind below `pods_dir` that systemk would have made while
/// preparing the pods (`systemk render` only prints): the container's `/run` and its
/// termination-message file.
fn bind_sources(units: &[(String, String)], pods_dir: &Path) -> anyhow::Result<()> {
    for (_, text) in units {
        for bind in text.lines().filter_map(|l| l.strip_prefix("BindPaths=")) {
            let Some((source, target)) = bind.split_once(':') else {
                continue;
            };
            let source = Path::new(source);
            if !source.starts_with(pods_dir) {
                continue;
            }
            if target == "/dev/termination-log" {
                std::fs::create_dir_all(source.parent().context("a file's directory")?)?;
                std::fs::write(source, "")?;
            } else {
                std::fs::create_dir_all(source)?;
            }
        }
    }
    Ok(())
}

/// `systemk render` output: `# <unit name>` then the unit, per container, each followed
/// by its pod's slice (`# <slice name>`, skipped: systemd makes a slice that has no file
/// when a unit names it). Service names get the floor's prefix.
fn split_rendered(text: &str) -> Vec<(String, String)> {
    let mut units: Vec<(String, String)> = Vec::new();
    let mut in_service = false;
    for line in text.lines() {
        let header = line
            .strip_prefix("# ")
            .filter(|rest| !rest.contains(' ') && rest.starts_with("systemk"));
        match header {
            Some(name) => {
                in_service = name.ends_with(".service");
                if let Some(rest) = name.strip_prefix("systemk.").filter(|_| in_service) {
                    units.push((format!("{FLOOR_PREFIX}{rest}"), String::new()));
                }
            }
            None if in_service => {
                if let Some((_, body)) = units.last_mut() {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None => {}
        }
    }
    units
}

pub(crate) async fn remove_floor(bus: &zbus::Connection, names: &[String]) -> anyhow::Result<()> {
    bus::stop_all(bus, names).await?;
    let pattern = format!("{FLOOR_PREFIX}*");
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    while bus::count_active(bus, &pattern).await? > 0 {
        if tokio::time::Instant::now() > deadline {
            bail!("the floor's units did not stop");
        }
        tokio::time::sleep(POLL).await;
    }
    for name in names {
        match std::fs::remove_file(Path::new(UNIT_DIR).join(name)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
    }
    bus::reload(bus).await
}

/// Removes every unit the benchmark may have left: the floor's and the pods' (the agent
/// leaves pods running when it stops, as it should).
async fn cleanup() -> anyhow::Result<()> {
    let bus = zbus::Connection::system().await?;
    let floor: Vec<String> = std::fs::read_dir(UNIT_DIR)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(FLOOR_PREFIX))
        .collect();
    if !floor.is_empty() {
        remove_floor(&bus, &floor).await?;
    }
    let systemd = Systemd::connect().await?;
    let dir = Path::new(UNIT_DIR);
    let pods: Vec<UnitName> = systemd
        .list_managed(dir)
        .await?
        .into_iter()
        .filter(|unit| unit.meta.namespace == NAMESPACE)
        .map(|unit| unit.status.name)
        .collect();
    systemd.remove(dir, &pods).await?;
    Ok(())
}

pub(crate) async fn wait_active(
    bus: &zbus::Connection,
    pattern: &str,
    n: usize,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    loop {
        if bus::count_active(bus, pattern).await? >= n {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{pattern}: fewer than {n} units active after {START_DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

pub(crate) fn manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n\
         spec:\n  containers:\n  - name: main\n    image: /bin/sleep\n    args: [infinity]\n"
    )
}

pub(crate) fn pod_name(i: usize) -> String {
    format!("sleep-{i:04}")
}

/// The node name the agent uses by default: the host name, lower-cased.
fn hostname() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    Ok(name.trim().to_lowercase())
}

pub(crate) fn monotonic_us() -> anyhow::Result<u64> {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(u64::try_from(now.tv_sec())? * 1_000_000 + u64::try_from(now.tv_nsec())? / 1_000)
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        pods: 100,
        scale_pods: Some(1000),
        trials: single::TRIALS,
        idle_seconds: 60,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/static-pods.json"),
        test_binary: PathBuf::new(),
    };
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--pods" => options.pods = value()?.parse().context("--pods")?,
            "--scale-pods" => options.scale_pods = Some(value()?.parse().context("--scale-pods")?),
            "--quick" => quick = true,
            "--trials" => options.trials = value()?.parse().context("--trials")?,
            "--idle-seconds" => {
                options.idle_seconds = value()?.parse().context("--idle-seconds")?
            }
            "--out" => options.out = value()?.into(),
            "--test-binary" => options.test_binary = value()?.into(),
            // `cargo bench` passes --bench to every bench target.
            "--bench" => {}
            other => bail!(
                "unknown argument {other:?} (accepted: --pods N, --scale-pods N, --quick, \
                 --trials N, --idle-seconds S, --out FILE, --test-binary FILE)"
            ),
        }
    }
    if quick {
        options.scale_pods = None;
    }
    if options.pods == 0 || options.scale_pods == Some(0) || options.trials == 0 {
        bail!("--pods, --scale-pods and --trials must be at least 1");
    }
    if options.test_binary.as_os_str().is_empty() {
        bail!(
            "--test-binary (the integration test binary, which scripts/bench builds) is required"
        );
    }
    Ok(options)
}
