//! Entering a running container with the caller's streams (`systemk::systemd::
//! spawn_in_unit`, issue 13 point 1, the layer under `kubectl exec`): stdin round trip,
//! stdout and stderr kept apart, a pseudo-terminal that is the command's controlling
//! terminal and takes a new size, exit codes, and dropping the handle kills the command
//! and what it started. Attack: the command sees the container's private `/tmp`, not the
//! host's.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use systemk::systemd::{Ended, Interactive, Streams, Systemd, spawn_in_unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, unique_uid};

/// `nobody`.
const NOBODY: u32 = 65_534;

fn pod(context: &TestContext) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "streams", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": NOBODY, "runAsGroup": NOBODY},
            "containers": [{
                "name": "main", "image": "/bin/sh",
                "args": ["-c", "echo private > /tmp/mark; sleep infinity & wait"],
            }],
        },
    }))
    .unwrap()
}

async fn spawn(unit: &str, argv: &[&str], streams: Streams) -> Interactive {
    let systemd = Systemd::connect().await.expect("the sandbox's systemd");
    let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
    spawn_in_unit(&systemd, unit, &argv, streams)
        .await
        .unwrap_or_else(|e| panic!("{argv:?} in {unit}: {e}"))
}

const PIPES: Streams = Streams::Pipes {
    stdin: true,
    stdout: true,
    stderr: true,
};

/// Everything `output` gives until its end.
async fn read_all(output: Option<systemk::systemd::enter::Output>) -> String {
    let mut text = Vec::new();
    if let Some(mut output) = output {
        // A terminal ends in EIO once its last slave closed: the end, not a failure.
        let _ = output.read_to_end(&mut text).await;
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test]
async fn enter_streams_pipes_stdin_stdout_stderr_and_exit_codes() {
    let context = TestContext::new("enter_streams_pipes");
    let engine = Engine::new(None).await;
    let run = engine.run(pod(&context));
    run.running_pid(DEADLINE, "main").await;
    let unit = run.unit_name("main").as_str().to_owned();

    let mut cat = spawn(&unit, &["/bin/cat"], PIPES).await;
    let mut stdin = cat.stdin.take().unwrap();
    stdin.write_all(b"round trip\n").await.unwrap();
    drop(stdin);
    let out = read_all(cat.stdout.take()).await;
    assert_eq!(out, "round trip\n");
    assert_eq!(cat.wait().await.unwrap(), Ended::Exited(0));

    let script = "cat /tmp/mark; id -u; echo err >&2; exit 3";
    let mut split = spawn(&unit, &["/bin/sh", "-c", script], PIPES).await;
    drop(split.stdin.take());
    let (out, err) = tokio::join!(read_all(split.stdout.take()), read_all(split.stderr.take()));
    assert_eq!(out, format!("private\n{NOBODY}\n"));
    assert_eq!(err, "err\n");
    assert_eq!(split.wait().await.unwrap(), Ended::Exited(3));

    let only_out = Streams::Pipes {
        stdin: false,
        stdout: true,
        stderr: false,
    };
    let mut quiet = spawn(
        &unit,
        &["/bin/sh", "-c", "cat; echo err >&2; echo done"],
        only_out,
    )
    .await;
    assert!(quiet.stdin.is_none() && quiet.stderr.is_none());
    assert_eq!(read_all(quiet.stdout.take()).await, "done\n");
    assert_eq!(quiet.wait().await.unwrap(), Ended::Exited(0));
    run.finish().await;
}

#[tokio::test]
async fn enter_streams_terminal_is_the_controlling_tty_and_resizes() {
    let context = TestContext::new("enter_streams_tty");
    let engine = Engine::new(None).await;
    let run = engine.run(pod(&context));
    run.running_pid(DEADLINE, "main").await;
    let unit = run.unit_name("main").as_str().to_owned();

    let script = "read line; tty; stty size; echo \"got $line\"; echo err >&2; exit 5";
    let mut shell = spawn(&unit, &["/bin/sh", "-c", script], Streams::Terminal).await;
    assert!(shell.stderr.is_none());
    shell.resize(100, 33).unwrap();
    let mut stdin = shell.stdin.take().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    let out = read_all(shell.stdout.take()).await;
    assert_eq!(shell.wait().await.unwrap(), Ended::Exited(5));
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    // The terminal echoes the input line first.
    assert_eq!(lines[0], "hello", "{out:?}");
    assert!(lines[1].starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(&lines[2..], ["33 100", "got hello", "err"], "{out:?}");
    run.finish().await;
}

#[tokio::test]
async fn enter_streams_dropped_kills_the_command_and_its_children() {
    let context = TestContext::new("enter_streams_drop");
    let engine = Engine::new(None).await;
    let run = engine.run(pod(&context));
    run.running_pid(DEADLINE, "main").await;
    let unit = run.unit_name("main").as_str().to_owned();

    for streams in [PIPES, Streams::Terminal] {
        let script = "sleep 1001 & sleep 1001 & echo started; wait";
        let mut sleeper = spawn(&unit, &["/bin/sh", "-c", script], streams).await;
        let mut stdout = sleeper.stdout.take().unwrap();
        let mut started = [0u8; 7];
        stdout.read_exact(&mut started).await.unwrap();
        assert_eq!(&started, b"started");
        // The shell forked both before it echoed; each is `sleep` once it has exec'd.
        crate::support::wait_for(DEADLINE, "both sleeps to run", || async {
            (sleeps() == 2).then_some(())
        })
        .await;
        drop(sleeper);
        crate::support::wait_for(DEADLINE, "the command's children to go", || async {
            (sleeps() == 0).then_some(())
        })
        .await;
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), async {
            let mut shell = spawn(&unit, &["/bin/true"], Streams::Terminal).await;
            shell.wait().await.unwrap()
        })
        .await
        .unwrap(),
        Ended::Exited(0)
    );
    run.finish().await;
}

/// The `sleep 1001` processes on the machine.
fn sleeps() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline.starts_with(b"sleep\x001001"))
        .count()
}
