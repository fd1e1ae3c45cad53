//! Every container's own `/run` (`src/unit/run_dir.rs`), in the booted systemd: a
//! package daemon makes its directories there in `ExecStartPre=`, tells systemd it is
//! ready through the notify socket and logs through `/dev/log`, and sees nothing of the
//! host's `/run` (its units, the system bus, systemd's private socket, the engine's
//! runtime directory); what it plants in its `/run` is gone at the next start and never
//! steers a mount onto the host. Then real Debian 12 daemons that write under `/run`,
//! each checked by talking to it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::engine::{
    DEADLINE, Engine, INSTALL_DEADLINE, PodRun, container_status, unique_uid,
};
use crate::support::packages::{DebFile, DebServer, InstallOnce, Purge, build_deb, known_to_dpkg};
use crate::support::{TestContext, skip, wait_for};

const PACKAGE: &str = "systemk-itest-run-dir";

/// The daemon's report of what it saw and could do, written into its own `/run`.
fn probe_script() -> String {
    format!(
        r#"#!/bin/sh
r=/run/{PACKAGE}/report.tmp
echo "run: $(ls -A /run | tr '\n' ' ')" > $r
echo "systemd: $(ls -A /run/systemd | tr '\n' ' ')" >> $r
touch /run/systemd/system/{PACKAGE}-escape.service 2>/dev/null && echo "wrote a unit" >> $r
mv /run/systemd /run/moved 2>/dev/null && echo "moved /run/systemd" >> $r
[ -e /run/dbus/system_bus_socket ] && echo "system bus visible" >> $r
ln -s /etc /run/planted
mkdir -p /run/secrets && ln -s /etc /run/secrets/kubernetes.io
logger -t {PACKAGE} "syslog-works"
mv $r /run/{PACKAGE}/report
systemd-notify --ready
exec sleep infinity
"#
    )
}

fn words(report: &str, key: &str) -> BTreeSet<String> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_container_has_its_own_run_and_cannot_reach_or_steer_the_hosts() {
    const TEST: &str = "own_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec![PACKAGE]);
    let build = tempfile::tempdir().unwrap();
    let program = format!("/usr/bin/{PACKAGE}");
    // Type=notify through the bound socket; the directory made by ExecStartPre= must
    // reach ExecStart=.
    let unit_text = format!(
        "[Service]\nType=notify\nNotifyAccess=all\nExecStartPre=/bin/mkdir -p /run/{PACKAGE}\n\
         ExecStart={program}\n"
    );
    let unit_path = format!("/usr/lib/systemd/system/{PACKAGE}.service");
    let script = probe_script();
    let deb = build_deb(
        build.path(),
        PACKAGE,
        None,
        &[
            DebFile {
                path: &program,
                content: &script,
                mode: 0o755,
            },
            DebFile {
                path: &unit_path,
                content: &unit_text,
                mode: 0o644,
            },
        ],
    );
    let (server, image) = DebServer::pinned(PACKAGE, deb).await;
    let engine = Engine::new(Some(server.ca_pem())).await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "own-run", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            // The API server's token mount point lies in /run too.
            "volumes": [{"name": "token", "emptyDir": {}}],
            "containers": [{
                "name": "main", "image": image,
                "volumeMounts": [{
                    "name": "token",
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                }],
            }],
        },
    }))
    .unwrap();
    let run = engine.run(pod);
    run.running_pid(INSTALL_DEADLINE, "main").await;
    let run_dir = run.run_dir("main");
    let report_path = run_dir.join(PACKAGE).join("report");
    let report = wait_for(DEADLINE, "the daemon's report", || async {
        std::fs::read_to_string(&report_path).ok()
    })
    .await;
    let run_entries = words(&report, "run");
    let allowed: BTreeSet<String> = [PACKAGE, "lock", "systemd", "secrets", "user"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(run_entries.is_subset(&allowed), "{report}");
    let systemd_entries = words(&report, "systemd");
    for hidden in ["private", "units", "transient", "generator"] {
        assert!(!systemd_entries.contains(hidden), "{report}");
    }
    assert!(systemd_entries.contains("notify"), "{report}");
    assert!(
        !report.contains("wrote a unit")
            && !report.contains("moved")
            && !report.contains("system bus"),
        "{report}"
    );
    assert!(!Path::new(&format!("/run/systemd/system/{PACKAGE}-escape.service")).exists());
    // syslog() reaches journald through /dev/log.
    wait_for(
        DEADLINE,
        "the daemon's syslog line in the journal",
        || async {
            let out = Command::new("journalctl")
                .args(["-t", PACKAGE, "-o", "cat", "--no-pager"])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains("syslog-works")
                .then_some(())
        },
    )
    .await;

    // Attack: the symlinks planted in /run (at a name, and where the token's mount point
    // lies) must not steer the mounts of a start by systemd itself (no emptying) onto /etc.
    assert!(run_dir.join("planted").is_symlink());
    let unit = run.unit_name("main");
    let restarted = Command::new("systemctl")
        .args(["restart", unit.as_str()])
        .status()
        .unwrap();
    assert!(restarted.success(), "the restart failed");
    for created in ["/etc/kubernetes.io", "/etc/serviceaccount", "/etc/journal"] {
        assert!(!Path::new(created).exists(), "{created} was created");
    }
    // A start by systemk empties /run first, as a new container gets a fresh one.
    let marker = run_dir.join("left-from-the-last-start");
    std::fs::write(&marker, "x").unwrap();
    let stopped = Command::new("systemctl")
        .args(["stop", unit.as_str()])
        .status()
        .unwrap();
    assert!(stopped.success(), "the stop failed");
    run.until(DEADLINE, "systemk to restart the container", |status| {
        let container = container_status(status, "main")?;
        let running = container.state.as_ref()?.running.is_some();
        (container.restart_count >= 1 && running).then_some(())
    })
    .await;
    assert!(!marker.exists(), "/run was not emptied");
    run.finish().await;
}

/// A Debian 12 daemon whose package this test run installs (skipped when the host has it
/// already: its purge would remove someone else's).
async fn run_daemon(
    test: &str,
    context: &TestContext,
    package: &str,
    name: &str,
) -> Option<(Engine, PodRun)> {
    run_daemon_unit(test, context, package, name, None).await
}

/// [`run_daemon`] with the vendor unit named (for packages that ship several).
async fn run_daemon_unit(
    test: &str,
    context: &TestContext,
    package: &str,
    name: &str,
    vendor_unit: Option<&str>,
) -> Option<(Engine, PodRun)> {
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&status.stdout) == "install ok installed" {
        skip(test, &format!("{package} is installed on the host"));
        return None;
    }
    let engine = Engine::new(None).await;
    let pod = serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": context.namespace(), "uid": unique_uid(),
            "annotations": vendor_unit
                .map(|u| json!({"systemk.io/vendor-unit.main": u}))
                .unwrap_or(json!({})),
        },
        "spec": {"containers": [{"name": "main", "image": package}]},
    }))
    .unwrap();
    let run = engine.run(pod);
    run.running_pid(INSTALL_DEADLINE, "main").await;
    Some((engine, run))
}

/// Sends `request` to `port` on localhost and reads until `expected` appears.
async fn talk(port: u16, request: &[u8], expected: &str) -> String {
    wait_for(
        DEADLINE,
        &format!("{expected:?} from port {port}"),
        || async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            stream.write_all(request).await.ok()?;
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf));
                match read.await {
                    Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                    _ => break,
                }
                if String::from_utf8_lossy(&answer).contains(expected) {
                    break;
                }
            }
            let answer = String::from_utf8_lossy(&answer).into_owned();
            answer.contains(expected).then_some(answer)
        },
    )
    .await
}

#[tokio::test]
async fn apache2_makes_its_run_dir_and_serves() {
    const TEST: &str = "apache2_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec![
        "apache2",
        "apache2-bin",
        "apache2-data",
        "apache2-utils",
    ]);
    let Some((_engine, run)) = run_daemon(TEST, &context, "apache2", "apache").await else {
        return;
    };
    talk(80, b"GET / HTTP/1.0\r\n\r\n", "Apache2 Debian Default Page").await;
    // apachectl made /run/apache2 in the container's own /run.
    assert!(run.run_dir("main").join("apache2").is_dir());
    run.finish().await;
}

#[tokio::test]
async fn cron_writes_its_pid_file_in_run_and_logs_through_syslog() {
    const TEST: &str = "cron_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec!["cron", "cron-daemon-common"]);
    let Some((_engine, run)) = run_daemon(TEST, &context, "cron", "cron").await else {
        return;
    };
    let pid_file = run.run_dir("main").join("crond.pid");
    let pid = wait_for(DEADLINE, "cron's pid file", || async {
        std::fs::read_to_string(&pid_file).ok()
    })
    .await;
    assert_eq!(
        pid.trim().parse::<u32>().unwrap(),
        run.unit_status("main").await.main_pid
    );
    // cron logs through syslog(3): "(CRON) INFO (pidfile fd = 3)".
    let unit = run.unit_name("main");
    wait_for(DEADLINE, "cron's syslog lines in the journal", || async {
        let out = Command::new("journalctl")
            .args(["-u", unit.as_str(), "-o", "cat", "--no-pager"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("pidfile fd")
            .then_some(())
    })
    .await;
    run.finish().await;
}

#[tokio::test]
async fn memcached_answers_stats() {
    const TEST: &str = "memcached_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec!["memcached"]);
    let Some((_engine, run)) = run_daemon(TEST, &context, "memcached", "memcached").await else {
        return;
    };
    talk(11211, b"stats\r\n", "STAT pid").await;
    run.finish().await;
}

#[tokio::test]
async fn redis_answers_ping() {
    const TEST: &str = "redis_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec!["redis-server", "redis-tools"]);
    let Some((_engine, run)) = run_daemon(TEST, &context, "redis-server", "redis").await else {
        return;
    };
    talk(6379, b"PING\r\n", "+PONG").await;
    run.finish().await;
}

#[tokio::test]
async fn openssh_server_greets() {
    const TEST: &str = "sshd_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec!["openssh-server", "openssh-sftp-server"]);
    let Some((_engine, run)) = run_daemon(TEST, &context, "openssh-server", "ssh").await else {
        return;
    };
    talk(22, b"", "SSH-2.0-OpenSSH").await;
    run.finish().await;
}

/// vsftpd starts (its `ExecStartPre=` makes `/var/run/vsftpd/empty`) and listens, but
/// sends no banner: its per-session process (`isolate=YES` clones new PID and network
/// namespaces) does not get through the confinement. Listed in docs/units.md.
#[tokio::test]
#[ignore = "vsftpd sends no banner under the default confinement (docs/units.md)"]
async fn vsftpd_greets() {
    const TEST: &str = "vsftpd_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec!["vsftpd"]);
    let Some((_engine, run)) = run_daemon(TEST, &context, "vsftpd", "ftp").await else {
        return;
    };
    talk(21, b"", "220").await;
    run.finish().await;
}

#[tokio::test]
async fn bind9_answers_a_query() {
    const TEST: &str = "bind9_run";
    let context = TestContext::new(TEST);
    let _purge = Purge(vec!["bind9", "bind9-utils"]);
    // bind9 also ships named-resolvconf.service: name the daemon's unit.
    let daemon = run_daemon_unit(TEST, &context, "bind9", "named", Some("named.service"));
    let Some((_engine, run)) = daemon.await else {
        return;
    };
    // An A query for localhost., which named's default zones answer.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 9];
    query.extend_from_slice(b"localhost\0\0\x01\0\x01");
    let answer = wait_for(DEADLINE, "named to answer", || async {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
        socket.send_to(&query, "127.0.0.1:53").await.ok()?;
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf));
        let n = read.await.ok()?.ok()?;
        Some(buf[..n].to_vec())
    })
    .await;
    assert_eq!(&answer[..2], &[0x12, 0x34]);
    assert_eq!(answer[3] & 0x0f, 0, "rcode: {answer:?}");
    assert!(
        u16::from_be_bytes([answer[6], answer[7]]) >= 1,
        "{answer:?}"
    );
    run.finish().await;
}

/// nginx as a path image (its unit lives in nginx-common, see issue 11): it writes
/// `/run/nginx.pid` into its own `/run`; its log and state directories are volumes.
#[tokio::test]
async fn nginx_as_a_path_image_writes_its_pid_file_and_serves() {
    const TEST: &str = "nginx_path_run";
    let context = TestContext::new(TEST);
    // The binary comes from the package, installed here (and purged after) when the host
    // has none; the pod runs it as a path image.
    let _purge = (!known_to_dpkg("nginx") && !known_to_dpkg("nginx-common"))
        .then(|| Purge(vec!["nginx", "nginx-common"]));
    let engine = Engine::new(None).await;
    if !Path::new("/usr/sbin/nginx").exists() {
        let image = "nginx".parse::<systemk::package::ImageRef>().unwrap();
        engine.ctx().installer.install_one(&image).await.unwrap();
    }
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "nginx", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            "volumes": [{"name": "log", "emptyDir": {}}, {"name": "lib", "emptyDir": {}}],
            "containers": [{
                "name": "main", "image": "/usr/sbin/nginx",
                "args": ["-g", "daemon off;"],
                "volumeMounts": [
                    {"name": "log", "mountPath": "/var/log/nginx"},
                    {"name": "lib", "mountPath": "/var/lib/nginx"},
                ],
            }],
        },
    }))
    .unwrap();
    let run = engine.run(pod);
    let pid = run.running_pid(DEADLINE, "main").await;
    talk(80, b"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK").await;
    let pid_file = run.run_dir("main").join("nginx.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    run.finish().await;
}
