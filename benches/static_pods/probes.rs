//! The probe phase (issue 12, point 1): the N pods replaced by N pods that each have a
//! 1 s readiness probe, half `tcpSocket` (to a listener of this process) and half
//! `exec` (`/bin/true` in the container), then systemk's CPU over the same idle window.
//! The cost of probing is that figure less the idle figure without probes, measured in
//! the same run; systemk's CPU counts its reaped children (the exec probes' processes).

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{NAMESPACE, pod_name};

/// Prefix of the probed pods' names, in place of the plain pods' `sleep-`.
pub const PROBED: &str = "probed-";

/// Accepts and drops connections on a loopback port for the `tcpSocket` probes; the
/// thread ends with the process.
pub fn listener() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            drop(connection);
        }
    });
    Ok(port)
}

/// Swaps the manifests in `watched`: the plain pods' removed, the probed pods' written
/// (hidden first, then renamed in, as an editor would).
pub fn swap_manifests(watched: &Path, n: usize, port: u16) -> anyhow::Result<()> {
    for i in 0..n {
        std::fs::remove_file(watched.join(format!("{}.yaml", pod_name(i))))?;
        let name = format!("{PROBED}{i:04}");
        let hidden = watched.join(format!(".{name}.yaml.tmp"));
        std::fs::write(&hidden, manifest(&name, i % 2 == 0, port))?;
        std::fs::rename(hidden, watched.join(format!("{name}.yaml")))?;
    }
    Ok(())
}

fn manifest(name: &str, tcp: bool, port: u16) -> String {
    let handler = if tcp {
        format!("tcpSocket: {{host: 127.0.0.1, port: {port}}}")
    } else {
        "exec: {command: [/bin/true]}".to_owned()
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n\
         spec:\n  containers:\n  - name: main\n    image: /bin/sleep\n    args: [infinity]\n\
         \x20   readinessProbe: {{{handler}, periodSeconds: 1}}\n"
    )
}

/// The floor of the exec probes: what running their command (`/bin/true`) alone costs,
/// `per_second` times a second for `window`, spawned the cheapest way (`posix_spawn`, no
/// entering) from a thread of this process; percent of one CPU, the spawning thread and
/// the commands together. Run when this process has no other child to reap.
pub fn exec_floor(per_second: usize, window: Duration) -> anyhow::Result<f64> {
    let period = Duration::from_secs(1) / u32::try_from(per_second.max(1))?;
    let children_before = cpu(libc::RUSAGE_CHILDREN);
    let thread_before = cpu(libc::RUSAGE_THREAD);
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < window {
        let status = Command::new("/bin/true").status()?;
        anyhow::ensure!(status.success(), "/bin/true: {status}");
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let used =
        (cpu(libc::RUSAGE_CHILDREN) - children_before) + (cpu(libc::RUSAGE_THREAD) - thread_before);
    Ok(used.as_secs_f64() / start.elapsed().as_secs_f64() * 100.0)
}

/// User plus system time of `who` (`getrusage`).
fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}
