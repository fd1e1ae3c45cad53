//! The systemk agent under test: started as its own process, its log kept in a file and
//! watched for the first "all pods are in sync", and its memory and CPU time read from
//! `/proc` while it idles.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, SysconfVar, sysconf};

/// What the agent logs once every source's pods had their first pass.
const SYNCED: &str = "all pods are in sync";

/// How often the idle sampler reads `/proc`.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// A running agent; SIGTERMed and reaped on drop.
pub struct Agent {
    child: Child,
    synced: mpsc::Receiver<()>,
}

/// What the agent used while idle.
pub struct Idle {
    /// Largest resident set seen, KiB.
    pub max_rss_kib: u64,
    /// User + system CPU time over the window, its reaped children's included, as a
    /// percentage of one CPU.
    pub cpu_percent: f64,
}

impl Agent {
    /// Starts `systemk` with these arguments; its stderr goes to `log`. It logs at `info`
    /// unless `RUST_LOG` says otherwise (e.g. `systemk=debug` to profile).
    pub fn start(binary: &str, args: &[&std::ffi::OsStr], log: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {binary}"))?;
        let stderr = child.stderr.take().context("the agent's stderr")?;
        let mut file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let (tx, synced) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(SYNCED) {
                    let _ = tx.send(());
                }
                let _ = writeln!(file, "{line}");
            }
        });
        Ok(Self { child, synced })
    }

    /// The agent's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the agent logs its first sync.
    pub fn wait_synced(&self, timeout: Duration) -> anyhow::Result<()> {
        self.synced
            .recv_timeout(timeout)
            .with_context(|| format!("the agent did not log {SYNCED:?} within {timeout:?}"))
    }

    /// Samples the agent for `window`: resident memory every second, CPU time at both ends.
    pub fn sample_idle(&self, window: Duration) -> anyhow::Result<Idle> {
        let pid = self.pid();
        let ticks_per_second = sysconf(SysconfVar::CLK_TCK)?.context("CLK_TCK")? as f64;
        let start_ticks = cpu_ticks(pid)?;
        let start = std::time::Instant::now();
        let mut max_rss_kib = rss_kib(pid)?;
        while start.elapsed() < window {
            std::thread::sleep(SAMPLE_EVERY.min(window.saturating_sub(start.elapsed())));
            max_rss_kib = max_rss_kib.max(rss_kib(pid)?);
        }
        let used = (cpu_ticks(pid)? - start_ticks) as f64 / ticks_per_second;
        Ok(Idle {
            max_rss_kib,
            cpu_percent: used / start.elapsed().as_secs_f64() * 100.0,
        })
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// `VmRSS` of `/proc/<pid>/status`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kib = line.split_whitespace().nth(1).context("VmRSS value")?;
    Ok(kib.parse()?)
}

/// The CPU of the agent and of everything it started, in clock ticks: utime + stime of
/// `/proc/<pid>/stat` (fields 14 and 15) and of its reaped children (16 and 17: the exec
/// probes' processes), plus the same of each child still running (the units' resident
/// probers, whose commands they reap).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let mut ticks = own_and_reaped_ticks(pid)?;
    for child in children(pid) {
        // A child that ended meanwhile is in the agent's reaped figure already.
        ticks += own_and_reaped_ticks(child).unwrap_or(0);
    }
    Ok(ticks)
}

fn own_and_reaped_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces: count fields after its ')'.
    let after_comm = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field =
        |n: usize| -> anyhow::Result<u64> { Ok(fields.get(n - 3).context("short stat")?.parse()?) };
    Ok(field(14)? + field(15)? + field(16)? + field(17)?)
}

/// The running children of every thread of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    threads
        .flatten()
        .filter_map(|thread| std::fs::read_to_string(thread.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}
