//! Pinned images and tools: an epoch-versioned apt pin, a real Debian `.deb` fetched by a
//! sha256-pinned https URL, two wrong pins that must fail with the kubelet's reasons,
//! and a tool that prints and exits. CI runs all but the tool.

use std::process::Command;

use serde_json::json;

use super::{Case, Probe, pod, run_image};
use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, INSTALL_DEADLINE, container_status, unique_uid};
use crate::support::packages::{DebServer, Purge, hex_sha256, installed_version, known_to_dpkg};

/// uptimed's Debian 12 version carries an epoch (`1:`); the pin names it in full.
const UPTIMED_PIN: &str = "uptimed=1:0.4.6-3+b1";

/// An epoch-versioned pin installs that version, and the daemon runs and writes its
/// records (uptimed has no port: its records file is what it says).
#[tokio::test]
async fn an_epoch_versioned_pin_runs_uptimed() {
    let context = TestContext::new("suite_epoch_pin");
    let _purge = (!known_to_dpkg("uptimed")).then(|| Purge(vec!["uptimed"]));
    let engine = Engine::new(None).await;
    let run = engine.run(pod(&context, "suite_epoch_pin", UPTIMED_PIN, None));
    let pid = run.running_pid(INSTALL_DEADLINE, "main").await;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, std::path::Path::new("/usr/sbin/uptimed"));
    assert_eq!(
        installed_version("uptimed").as_deref(),
        Some("1:0.4.6-3+b1")
    );
    let status = run.pass().await;
    let image_id = &container_status(&status, "main").unwrap().image_id;
    assert!(image_id.contains("1:0.4.6-3+b1"), "{image_id}");
    // uprecords reads what the daemon wrote and shows this boot's session.
    crate::support::wait_for(DEADLINE, "uprecords to list the session", || async {
        let out = Command::new("uprecords").arg("-a").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains("->")).then_some(text)
    })
    .await;
    run.finish().await;
}

/// `apt-get download`s a package's real `.deb` from the mirror into `dir`.
fn download(dir: &std::path::Path, package: &str) -> (String, Vec<u8>) {
    let out = Command::new("apt-get")
        .args(["download", "-q", package])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{package}_"))
        })
        .expect("apt-get download wrote the .deb");
    let name = entry.file_name().to_string_lossy().into_owned();
    (name, std::fs::read(entry.path()).unwrap())
}

/// Debian's tinyproxy `.deb`, served over https and pinned by its sha256, installs with
/// its dependency (tinyproxy-bin from the apt sources) and serves.
#[tokio::test]
async fn a_sha256_pinned_deb_url_runs_tinyproxy() {
    let workspace = tempfile::tempdir().unwrap();
    let (file, deb) = download(workspace.path(), "tinyproxy");
    let sha = hex_sha256(&deb);
    let server = DebServer::start(deb, Vec::new()).await;
    let image = format!("{}@sha256:{sha}", server.url(&file));
    let case = Case::new(
        "suite_sha256_deb",
        "tinyproxy",
        &["tinyproxy", "tinyproxy-bin"],
        Probe::http(8888, b"GET / HTTP/1.0\r\n\r\n", b"tinyproxy"),
    );
    run_image(&case, &image, Some(server.ca_pem())).await;
    assert_eq!(server.requests(), 1, "downloaded once");
}

/// The waiting reason of the pod's only container after one pass, and whether the
/// engine retries it by itself.
async fn waiting_after_one_pass(
    test: &str,
    image: &str,
    ca: Option<&str>,
) -> (String, String, bool) {
    let context = TestContext::new(test);
    let engine = Engine::new(ca).await;
    let run = engine.run(pod(&context, test, image, None));
    let (pass, status) = run.pass_report().await;
    let waiting = container_status(&status, "main")
        .and_then(|c| c.state.as_ref()?.waiting.clone())
        .unwrap_or_default();
    assert_eq!(run.units().await, [], "no unit for an image that failed");
    run.finish().await;
    (
        waiting.reason.unwrap_or_default(),
        waiting.message.unwrap_or_default(),
        pass.wake.is_some(),
    )
}

/// A version the mirror does not have: ErrImagePull, retried with back-off (a mirror may
/// get it), nothing installed.
#[tokio::test]
async fn a_wrong_version_pin_fails_with_err_image_pull() {
    let had_it = known_to_dpkg("uptimed");
    let (reason, message, retried) =
        waiting_after_one_pass("suite_wrong_pin", "uptimed=9:9.9.9-9", None).await;
    assert_eq!(reason, "ErrImagePull", "{message}");
    assert!(message.contains("uptimed"), "{message}");
    assert!(retried, "retried with back-off");
    assert_eq!(known_to_dpkg("uptimed"), had_it, "nothing installed");
}

/// A `.deb` whose bytes do not match the pin: ErrImagePull (the kubelet's reason for
/// every pull failure) naming both hashes, not retried (the bytes will not change),
/// nothing installed.
#[tokio::test]
async fn a_wrong_sha256_pin_fails_and_installs_nothing() {
    let workspace = tempfile::tempdir().unwrap();
    let (file, deb) = download(workspace.path(), "tinyproxy");
    let server = DebServer::start(deb, Vec::new()).await;
    let image = format!("{}@sha256:{}", server.url(&file), "0".repeat(64));
    let had_it = known_to_dpkg("tinyproxy");
    let (reason, message, retried) =
        waiting_after_one_pass("suite_wrong_sha256", &image, Some(server.ca_pem())).await;
    assert_eq!(reason, "ErrImagePull", "{message}");
    assert!(message.contains(&"0".repeat(64)), "{message}");
    assert!(message.contains("has sha256"), "{message}");
    assert!(!retried, "waits for the pod to change");
    assert_eq!(known_to_dpkg("tinyproxy"), had_it, "nothing installed");
}

/// A tool, not a daemon: figlet prints and exits 0; the pod succeeds.
#[tokio::test]
#[ignore = "package suite: scripts/package-suite"]
async fn figlet_prints_and_exits() {
    let context = TestContext::new("suite_figlet");
    let _purge = (!known_to_dpkg("figlet")).then(|| Purge(vec!["figlet"]));
    let engine = Engine::new(None).await;
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "figlet", "namespace": context.namespace(), "uid": unique_uid()},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": "figlet", "command": ["/usr/bin/figlet"],
                "args": ["-f", "term", "suite-says-hello"],
            }],
        },
    }))
    .unwrap();
    let run = engine.run(pod);
    let exit = run
        .until(INSTALL_DEADLINE, "figlet to exit", |status| {
            let terminated = container_status(status, "main")?
                .state
                .as_ref()?
                .terminated
                .as_ref()?;
            Some(terminated.exit_code)
        })
        .await;
    assert_eq!(exit, 0);
    Probe::Journal {
        expect: "suite-says-hello",
    }
    .check(DEADLINE, &run.run_dir("main"), &run.unit_name("main"))
    .await;
    run.finish().await;
}
