//! The probe phase (issue 12, point 1): the N pods replaced by N pods that each have a
//! 1 s readiness probe, half `tcpSocket` (to a listener of this process) and half
//! `exec` (`/bin/true` in the container), then systemk's CPU over the same idle window.
//! The cost of probing is that figure less the idle figure without probes, measured in
//! the same run; systemk's CPU counts its reaped children (the exec probes' processes).

use std::net::TcpListener;
use std::path::Path;

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
