//! A forking package daemon whose `PIDFile=` lies directly in `/run` (nginx's
//! `/run/nginx.pid`), in the booted systemd: it runs and systemd tracks it through the
//! PID file in the container's own `/run`, and the host's `/run` is not in its reach,
//! so a pod running that package's unit cannot drop a unit into `/run/systemd/system`.

use serde_json::json;

use crate::support::TestContext;
use crate::support::engine::{Engine, INSTALL_DEADLINE, unique_uid};
use crate::support::packages::{DebFile, DebServer, Purge, build_deb};

const PACKAGE: &str = "systemk-itest-pid-file";

#[tokio::test]
async fn a_pid_file_in_run_is_the_only_place_of_run_the_daemon_may_write() {
    let context = TestContext::new("pid_file_in_run");
    let _purge = Purge(vec![PACKAGE]);
    let build = tempfile::tempdir().unwrap();
    let program = format!("/usr/bin/{PACKAGE}");
    let pid_file = format!("/run/{PACKAGE}.pid");
    let escape = format!("/run/systemd/system/{PACKAGE}-escape.service");
    // Forks, writes the child's PID, then tries to drop a unit into /run.
    let script =
        format!("#!/bin/sh\nsleep infinity &\necho $! > {pid_file}\ntouch {escape}\nexit 0\n");
    let unit_text = format!("[Service]\nType=forking\nPIDFile={pid_file}\nExecStart={program}\n");
    let unit_path = format!("/usr/lib/systemd/system/{PACKAGE}.service");
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
        "metadata": {
            "name": "forking", "namespace": context.namespace(), "uid": unique_uid(),
        },
        "spec": { "containers": [{ "name": "main", "image": image }] },
    }))
    .unwrap();
    let run = engine.run(pod);
    let pid = run.running_pid(INSTALL_DEADLINE, "main").await;
    let private_pid_file = run.run_dir("main").join(format!("{PACKAGE}.pid"));
    let written: u32 = std::fs::read_to_string(&private_pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        written, pid,
        "systemd tracks the daemon through its PID file"
    );
    assert!(
        !std::path::Path::new(&escape).exists(),
        "{escape} was written"
    );
    assert!(
        !std::path::Path::new(&pid_file).exists(),
        "the host's {pid_file} was written"
    );
    let unit = std::fs::read_to_string(run.unit_path("main")).unwrap();
    assert!(
        unit.contains(&format!("\nPIDFile={}\n", private_pid_file.display())),
        "{unit}"
    );
    run.finish().await;
}
