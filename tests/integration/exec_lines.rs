//! Exec lines (issue 10, point 1), in the booted systemd: a pod cannot make systemd read
//! one of its words as a command separator or prefix, and a package's unit cannot run an
//! `Exec*=` command outside the pod's user and sandbox, while ordinary commands with `;`
//! in them still run with exactly their words as argv.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::engine::{
    DEADLINE, Engine, INSTALL_DEADLINE, PodRun, argv, container_status, proc_ids, unique_uid,
};
use crate::support::packages::{DebFile, DebServer, Purge, build_deb};

/// `nobody`: the user every pod here asks for.
const NOBODY: u32 = 65_534;

/// The test package: a program that keeps running and three units around it.
const PACKAGE: &str = "systemk-itest-exec-lines";

fn pod(context: &TestContext, name: &str, annotations: Value, containers: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": context.namespace(), "uid": unique_uid(),
            "annotations": annotations,
        },
        "spec": {
            "securityContext": { "runAsNonRoot": true, "runAsUser": NOBODY },
            "containers": containers,
        },
    }))
    .unwrap()
}

/// Runs passes until container `main` waits for something other than its creation, and
/// returns that reason and message.
async fn refusal(run: &PodRun, deadline: Duration) -> (String, String) {
    run.until(deadline, "main to be refused", |status| {
        let waiting = container_status(status, "main")?
            .state
            .as_ref()?
            .waiting
            .clone()?;
        let reason = waiting.reason.unwrap_or_default();
        (reason != "ContainerCreating").then(|| (reason, waiting.message.unwrap_or_default()))
    })
    .await
}

#[tokio::test]
async fn a_semicolon_first_word_is_refused_and_semicolon_arguments_stay_words() {
    let context = TestContext::new("exec_lines_pod");
    let engine = Engine::new(None).await;

    // systemd 252 reads a first word that unquotes to `;` as a separator, even quoted:
    // `+/bin/sh` would then run as root without the sandbox.
    let attack = pod(
        &context,
        "attack",
        json!({}),
        json!([{
            "name": "main", "image": "/bin/sh",
            "command": [";", "+/bin/sh", "-c", "sleep infinity"],
        }]),
    );
    let refused = engine.run(attack);
    let (reason, message) = refusal(&refused, DEADLINE).await;
    assert_eq!(reason, "CreateContainerConfigError", "{message}");
    assert!(message.contains("command separator"), "{message}");
    assert_eq!(refused.units().await, []);
    assert!(!refused.unit_path("main").exists());

    // After the first word a quoted `;` is an argument: sh gets it as `$0`, `$1`.
    let script = "a=1; b=2; sleep infinity & wait";
    let ordinary = pod(
        &context,
        "ordinary",
        json!({}),
        json!([{
            "name": "main", "image": "/bin/sh",
            "args": ["-c", script, ";", "+/bin/sh"],
        }]),
    );
    let run = engine.run(ordinary);
    let pid = run.running_pid(DEADLINE, "main").await;
    let expected: Vec<Vec<u8>> = ["/bin/sh", "-c", script, ";", "+/bin/sh"]
        .iter()
        .map(|w| w.as_bytes().to_vec())
        .collect();
    assert_eq!(argv(pid), expected);
    assert_eq!(proc_ids(pid, "Uid"), [NOBODY; 4]);

    refused.finish().await;
    run.finish().await;
}

#[tokio::test]
async fn vendor_exec_lines_with_privileged_prefixes_are_refused() {
    let context = TestContext::new("exec_lines_vendor");
    let _purge = Purge(vec![PACKAGE]);
    let build = tempfile::tempdir().unwrap();
    let program = format!("/usr/bin/{PACKAGE}");
    let unit = |name: &str| format!("/usr/lib/systemd/system/{PACKAGE}-{name}.service");
    let service = |extra: &str| format!("[Service]\nExecStart={program}\n{extra}\n");
    let (plus, bang, dash) = (unit("plus"), unit("bang"), unit("dash"));
    let (plus_text, bang_text, dash_text) = (
        service("ExecStartPre=+/bin/true"),
        service("ExecStop=/bin/true ; \";\" \"!/bin/true\""),
        service("ExecStartPre=-/bin/false\nExecStopPost=:/bin/true $X"),
    );
    let file = |path, content| DebFile {
        path,
        content,
        mode: 0o644,
    };
    let deb = build_deb(
        build.path(),
        PACKAGE,
        None,
        &[
            DebFile {
                path: &program,
                content: "#!/bin/sh\nsleep infinity & wait\n",
                mode: 0o755,
            },
            file(&plus, &plus_text),
            file(&bang, &bang_text),
            file(&dash, &dash_text),
        ],
    );
    let (server, image) = DebServer::pinned(PACKAGE, deb).await;
    let engine = Engine::new(Some(server.ca_pem())).await;
    let with_unit = |name: &str| {
        let annotations = json!({
            "systemk.io/vendor-unit.main": format!("{PACKAGE}-{name}.service"),
        });
        pod(
            &context,
            name,
            annotations,
            json!([{ "name": "main", "image": image }]),
        )
    };

    for (name, line) in [
        ("plus", "ExecStartPre=+/bin/true"),
        ("bang", "ExecStop=/bin/true ; \\\";\\\" \\\"!/bin/true\\\""),
    ] {
        let refused = engine.run(with_unit(name));
        let (reason, message) = refusal(&refused, INSTALL_DEADLINE).await;
        assert_eq!(reason, "CreateContainerConfigError", "{name}: {message}");
        assert!(message.contains(&unit(name)), "{name}: {message}");
        assert!(message.contains(line), "{name}: {message}");
        assert_eq!(refused.units().await, [], "{name}");
        refused.finish().await;
    }

    // `-` and `:` only change how the package's own command is read: kept.
    let run = engine.run(with_unit("dash"));
    let pid = run.running_pid(INSTALL_DEADLINE, "main").await;
    assert_eq!(proc_ids(pid, "Uid"), [NOBODY; 4]);
    let written = std::fs::read_to_string(run.unit_path("main")).unwrap();
    assert!(
        written.contains("\nExecStartPre=-/bin/false\n"),
        "{written}"
    );
    run.finish().await;
}
