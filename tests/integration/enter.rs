//! Entering a running container (`systemk::systemd::run_in_unit`, issue 12 points 1 and 3,
//! exec part) through the real engine in the booted systemd: the command runs with the
//! container's user and groups, cgroup, private `/tmp`, volumes, environment, capability
//! sets, no-new-privileges and seccomp filters; it is killed with its children at its
//! timeout; exit codes and signals are reported. Attacks: the host's `/tmp` stays out of
//! sight, a program the container plants runs with the container's privileges only, and a
//! unit without a main process is an error, never an entry into another process.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use systemk::systemd::{Ended, EnterCommand, EnterOutcome, Systemd, enter, run_in_unit};

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, environ, unique_uid};

/// `nobody`, the `users` group and `games` as a supplementary group (not one of the
/// node's restricted groups).
const NOBODY: u32 = 65_534;
const USERS_GROUP: u32 = 100;
const GAMES_GROUP: u32 = 60;

/// Writes a mark into the private `/tmp` and the emptyDir, plants an `id` in `/tmp`
/// (first in its `PATH`), then keeps running.
const CONTAINER: &str = r#"
echo private-tmp > /tmp/mark
echo volume > /srv/mark
printf '#!/bin/sh\necho planted; exec /usr/bin/id "$@"\n' > /tmp/id
chmod +x /tmp/id
sleep infinity & wait
"#;

fn pod(context: &TestContext) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "enter", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsUser": NOBODY, "runAsGroup": USERS_GROUP, "supplementalGroups": [GAMES_GROUP],
            },
            "containers": [{
                "name": "main", "image": "/bin/sh", "args": ["-c", CONTAINER],
                "env": [
                    {"name": "GREETING", "value": "hello world"},
                    {"name": "PATH", "value": "/tmp:/usr/bin:/bin"},
                ],
                "volumeMounts": [{"name": "scratch", "mountPath": "/srv"}],
            }],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }))
    .unwrap()
}

/// The test's own connection to the booted systemd, its commands run by this build's
/// `systemk-prober`.
async fn bus() -> Systemd {
    Systemd::connect()
        .await
        .expect("the sandbox's systemd")
        .with_prober(std::path::Path::new(env!("CARGO_BIN_EXE_systemk-prober")))
        .expect("this build's systemk-prober")
}

fn command(argv: &[&str]) -> EnterCommand {
    EnterCommand {
        argv: argv.iter().map(|a| (*a).to_owned()).collect(),
        timeout: Duration::from_secs(10),
        max_output: 64 * 1024,
    }
}

async fn enter_ok(unit: &str, argv: &[&str]) -> EnterOutcome {
    run_in_unit(&bus().await, unit, command(argv))
        .await
        .unwrap_or_else(|e| panic!("{argv:?} in {unit}: {e}"))
}

fn text(outcome: &EnterOutcome) -> String {
    String::from_utf8_lossy(&outcome.output).into_owned()
}

/// The value of `field` in a `/proc/.../status` text.
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
        .to_owned()
}

/// Waits until the container has written its files.
async fn started(
    engine: &Engine,
    context: &TestContext,
) -> (crate::support::engine::PodRun, String, u32) {
    let run = engine.run(pod(context));
    let pid = run.running_pid(DEADLINE, "main").await;
    let unit = run.unit_name("main").as_str().to_owned();
    let planted = run.empty_dir("scratch").join("mark");
    crate::support::wait_for(DEADLINE, "the container's marks", || async {
        std::fs::metadata(&planted).ok()
    })
    .await;
    // /tmp/id is written after /srv/mark; wait until the command sees it.
    crate::support::wait_for(DEADLINE, "the planted id", || async {
        let outcome = run_in_unit(&bus().await, &unit, command(&["/bin/cat", "/tmp/id"]))
            .await
            .inspect_err(|e| eprintln!("entering {unit}: {e:?}"))
            .ok()?;
        (outcome.ended == Ended::Exited(0)).then_some(())
    })
    .await;
    (run, unit, pid)
}

#[tokio::test]
async fn enter_runs_with_the_containers_identity_cgroup_files_and_environment() {
    let context = TestContext::new("enter_context");
    let engine = Engine::new(None).await;
    let (run, unit, pid) = started(&engine, &context).await;

    let id = enter_ok(&unit, &["/usr/bin/id", "-u"]).await;
    // A bare name is looked up in the container's PATH, as execvp would: the container
    // put a directory with its own `id` first.
    let looked_up = enter_ok(&unit, &["id", "-u"]).await;
    assert_eq!(text(&looked_up), format!("planted\n{NOBODY}\n"));
    let ids = enter_ok(&unit, &["/bin/sh", "-c", "id -u; id -g; id -G"]).await;
    assert_eq!(
        (id.ended, text(&id)),
        (Ended::Exited(0), format!("{NOBODY}\n"))
    );
    assert_eq!(
        text(&ids),
        format!(
            "planted\n{NOBODY}\nplanted\n{USERS_GROUP}\nplanted\n{USERS_GROUP} {GAMES_GROUP}\n"
        )
    );

    let cgroup = enter_ok(&unit, &["/bin/cat", "/proc/self/cgroup"]).await;
    let main_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(text(&cgroup), main_cgroup);

    let files = enter_ok(&unit, &["/bin/cat", "/tmp/mark", "/srv/mark"]).await;
    assert_eq!(text(&files), "private-tmp\nvolume\n");

    let env = enter_ok(&unit, &["/usr/bin/env", "-0"]).await;
    let entered: BTreeSet<Vec<u8>> = env
        .output
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let main: BTreeSet<Vec<u8>> = environ(pid).into_iter().collect();
    assert_eq!(entered, main);
    assert!(main.contains(b"GREETING=hello world".as_slice()));

    let cwd = enter_ok(&unit, &["/bin/pwd"]).await;
    let main_cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(text(&cwd).trim_end(), main_cwd.to_str().unwrap());
    run.finish().await;
}

#[tokio::test]
async fn enter_has_no_more_privileges_than_the_main_process() {
    let context = TestContext::new("enter_privileges");
    let engine = Engine::new(None).await;
    let (run, unit, pid) = started(&engine, &context).await;

    let entered = text(&enter_ok(&unit, &["/bin/cat", "/proc/self/status"]).await);
    let main = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_confined_alike(&entered, &main);
    assert_eq!(status_field(&entered, "Seccomp"), "2");

    // The host's /tmp is not the command's.
    let host_mark = std::env::temp_dir().join(format!("systemk-enter-{}", context.namespace()));
    std::fs::write(&host_mark, "host").unwrap();
    let look = enter_ok(&unit, &["/bin/cat", host_mark.to_str().unwrap()]).await;
    std::fs::remove_file(&host_mark).unwrap();
    assert_eq!(look.ended, Ended::Exited(1), "{}", text(&look));

    // A program the container planted runs as the container, not as systemk.
    let planted = enter_ok(&unit, &["id", "-u"]).await;
    assert_eq!(text(&planted), format!("planted\n{NOBODY}\n"));

    // The unit's filter refuses mount(2), whatever the command's privileges.
    let mount = enter_ok(
        &unit,
        &[
            "/usr/bin/unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "/bin/true",
        ],
    )
    .await;
    assert_ne!(mount.ended, Ended::Exited(0), "{}", text(&mount));
    run.finish().await;
}

#[tokio::test]
async fn enter_reports_exit_codes_signals_and_kills_at_the_timeout() {
    let context = TestContext::new("enter_ends");
    let engine = Engine::new(None).await;
    let (run, unit, pid) = started(&engine, &context).await;

    assert_eq!(
        enter_ok(&unit, &["/bin/sh", "-c", "exit 7"]).await.ended,
        Ended::Exited(7)
    );
    assert_eq!(
        enter_ok(&unit, &["/bin/sh", "-c", "kill -TERM $$"])
            .await
            .ended,
        Ended::Signaled(sigterm())
    );
    let missing = run_in_unit(&bus().await, &unit, command(&["/nonexistent/probe"])).await;
    assert!(
        matches!(missing, Err(enter::Error::NotFound { .. })),
        "{missing:?}"
    );
    let not_in_path = run_in_unit(&bus().await, &unit, command(&["no-such-probe"])).await;
    assert!(
        matches!(not_in_path, Err(enter::Error::NotFound { .. })),
        "{not_in_path:?}"
    );

    let mut slow = command(&[
        "/bin/sh",
        "-c",
        "sleep 1000 & sleep 1000 & echo started; wait",
    ]);
    slow.timeout = Duration::from_secs(1);
    let outcome = run_in_unit(&bus().await, &unit, slow).await.unwrap();
    assert_eq!(outcome.ended, Ended::TimedOut);
    assert_eq!(text(&outcome), "started\n");
    let procs = crate::support::wait_for(DEADLINE, "the command's processes to go", || async {
        let procs = procs_beside(pid)?;
        let sleeps = procs
            .lines()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"sleep\x001000"))
            })
            .count();
        (sleeps == 0).then_some(procs)
    })
    .await;
    assert!(procs.lines().any(|p| p == pid.to_string()));

    let mut chatty = command(&["/bin/sh", "-c", "seq 1 100000"]);
    chatty.max_output = 7;
    assert_eq!(
        text(&run_in_unit(&bus().await, &unit, chatty).await.unwrap()),
        "100000\n"
    );
    run.finish().await;
}

#[tokio::test]
async fn enter_a_unit_without_main_process_is_an_error() {
    let context = TestContext::new("enter_stopped");
    let engine = Engine::new(None).await;
    let (run, unit, _) = started(&engine, &context).await;
    run.finish().await;
    let stopped = run_in_unit(&bus().await, &unit, command(&["/bin/true"])).await;
    assert!(
        matches!(
            stopped,
            Err(enter::Error::NotRunning { .. } | enter::Error::Properties { .. })
        ),
        "{stopped:?}"
    );
    let invalid = run_in_unit(&bus().await, "../x.service", command(&["/bin/true"])).await;
    assert!(
        matches!(invalid, Err(enter::Error::InvalidUnit { .. })),
        "{invalid:?}"
    );
}

#[tokio::test]
async fn enter_runs_commands_through_one_resident_prober_per_run() {
    let context = TestContext::new("enter_prober");
    let engine = Engine::new(None).await;
    let (run, unit, pid) = started(&engine, &context).await;
    let systemd = bus().await;
    let id = || run_in_unit(&systemd, &unit, command(&["/usr/bin/id", "-u"]));

    for _ in 0..3 {
        assert_eq!(text(&id().await.unwrap()), format!("{NOBODY}\n"));
    }
    assert_eq!(systemd.probers_serving(), 1);
    let prober = probers_beside(pid);
    assert_eq!(prober.len(), 1, "one prober in the unit's cgroup");
    // The prober is confined exactly as the main process.
    let main = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let its = std::fs::read_to_string(format!("/proc/{}/status", prober[0])).unwrap();
    assert_confined_alike(&its, &main);

    // Attack: the container kills its prober (it runs as the container's user). Its
    // commands still run, and the next run of one starts a new prober.
    kill(prober[0]);
    crate::support::wait_for(DEADLINE, "the killed prober to be forgotten", || async {
        (systemd.probers_serving() == 0).then_some(())
    })
    .await;
    assert_eq!(text(&id().await.unwrap()), format!("{NOBODY}\n"));
    let second = probers_beside(pid);
    assert_eq!(second.len(), 1);
    assert_ne!(second, prober);

    // A command that takes its time does not hold up another one: that one goes the
    // direct way and ends first.
    let mut slow = command(&["/bin/sh", "-c", "sleep 2; echo slow"]);
    slow.timeout = Duration::from_secs(10);
    let slow = async {
        let outcome = run_in_unit(&systemd, &unit, slow).await.unwrap();
        (text(&outcome), std::time::Instant::now())
    };
    let fast = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let outcome = run_in_unit(&systemd, &unit, command(&["/bin/echo", "fast"])).await;
        (text(&outcome.unwrap()), std::time::Instant::now())
    };
    let ((slow, slow_ended), (fast, fast_ended)) = tokio::join!(slow, fast);
    assert_eq!((slow.as_str(), fast.as_str()), ("slow\n", "fast\n"));
    assert!(fast_ended < slow_ended);

    run.finish().await;
    crate::support::wait_for(DEADLINE, "the prober to end with its container", || async {
        (systemd.probers_serving() == 0).then_some(())
    })
    .await;
}

/// After a restart a command runs in the unit's new run, also where the last run's main
/// process outlived the stop (`KillMode=none`): its prober then still runs too, and the
/// command must not go to it. A unit whose stop kills every process (the default, and
/// every pod's unit) has its commands taken by its prober without a D-Bus call; this checks
/// that a restart is still seen.
#[tokio::test]
async fn a_command_runs_in_the_current_run_after_a_restart() {
    let systemd = bus().await;
    for kill_mode in ["none", "control-group"] {
        // A name of systemk's own form: only those may be entered.
        let unit = format!(
            "systemk.itest-{}.enter-kill-{kill_mode}.service",
            std::process::id()
        );
        let transient = std::process::Command::new("systemd-run")
            .args(["-q", "--unit", &unit, "-p", "PrivateTmp=yes", "-p"])
            .arg(format!("KillMode={kill_mode}"))
            .args(["/bin/sleep", "infinity"])
            .status()
            .unwrap();
        assert!(transient.success(), "systemd-run {unit}");
        // Each run has a mount namespace of its own (PrivateTmp=). Compared only while
        // both processes run: the kernel reuses a freed namespace's number.
        let in_run_of = |main: u32| {
            let unit = unit.clone();
            let systemd = &systemd;
            async move {
                let readlink = command(&["/bin/readlink", "/proc/self/ns/mnt"]);
                let seen = text(&run_in_unit(systemd, &unit, readlink).await.unwrap());
                let link = std::fs::read_link(format!("/proc/{main}/ns/mnt")).unwrap();
                assert_eq!(seen, format!("{}\n", link.display()), "{unit}");
            }
        };
        let first = main_pid(&unit);
        in_run_of(first).await;
        assert_eq!(probers_beside(first).len(), 1, "{kill_mode}");

        systemctl(&["restart", &unit]);
        let second = main_pid(&unit);
        assert_ne!(second, first);
        in_run_of(second).await;
        if kill_mode == "none" {
            // The dangerous case was set up: the last run's main process lives on.
            assert!(std::path::Path::new(&format!("/proc/{first}")).exists());
        }
        systemctl(&["kill", "--signal=SIGKILL", &unit]);
        systemctl(&["stop", &unit]);
    }
}

fn main_pid(unit: &str) -> u32 {
    let output = std::process::Command::new("systemctl")
        .args(["show", "--property=MainPID", "--value", unit])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_ne!(pid, 0, "{unit} runs");
    pid
}

fn systemctl(args: &[&str]) {
    let status = std::process::Command::new("systemctl")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "systemctl {args:?}");
}

/// Asserts that two `/proc/<pid>/status` texts show the same identity and confinement.
fn assert_confined_alike(status: &str, main: &str) {
    for field in [
        "Uid",
        "Gid",
        "Groups",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
    ] {
        assert_eq!(
            status_field(status, field),
            status_field(main, field),
            "{field}"
        );
    }
}

/// The `cgroup.procs` of the process `pid`'s cgroup.
fn procs_beside(pid: u32) -> Option<String> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    let root = if unified.is_dir() {
        unified
    } else {
        std::path::Path::new("/sys/fs/cgroup")
    };
    std::fs::read_to_string(root.join(path.trim_start_matches('/')).join("cgroup.procs")).ok()
}

/// The processes named `systemk-prober` in the cgroup of the process `pid`.
fn probers_beside(pid: u32) -> Vec<u32> {
    procs_beside(pid)
        .unwrap_or_default()
        .lines()
        .filter_map(|p| p.parse().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "systemk-prober")
        })
        .collect()
}

fn kill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// SIGTERM on Linux.
fn sigterm() -> i32 {
    15
}
