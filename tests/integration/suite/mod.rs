//! The real-package suite (issue 11, item 8): Debian 12 daemons and tools, each installed
//! by the real engine in the booted systemd and checked by talking to it — an HTTP
//! request, a protocol banner, a DNS query, a broker handshake, a control socket — not
//! only by its phase. A case is data ([`Case`]); [`run_case`] installs the package as a
//! pod's image, waits for the container to run, probes it, cleans the pod up and purges
//! what the case installed (unless the host had the package before).
//!
//! One file per family. The few cases CI runs (`scripts/test`) are plain tests; the rest
//! are `#[ignore]`d and run by `scripts/package-suite`, which also runs the daemons of
//! `run_dirs.rs` and `vendor_units.rs`. docs/packages.md lists every package tried, with
//! its result.

mod brokers;
mod caches;
mod databases;
mod dns;
mod ftp_mail;
mod monitoring;
mod pins;
mod probe;
mod proxies;
mod web;

use std::time::Duration;

use serde_json::json;

use crate::support::TestContext;
use k8s_openapi::api::core::v1::{PodStatus, Volume};

use crate::support::engine::{Engine, INSTALL_DEADLINE, PodRun, container_status, unique_uid};
use crate::support::packages::{Purge, known_to_dpkg};
use crate::support::poll_until;

pub use probe::Probe;

/// One package run as a pod and checked by talking to it.
pub struct Case {
    /// The test's name, for the namespace and messages.
    pub test: &'static str,
    /// The pod's image: a package name, optionally pinned.
    pub image: &'static str,
    /// Packages the case purges afterwards (the image's and those of its source that
    /// apt pulls in), unless the host had the image's package before.
    pub purge: &'static [&'static str],
    /// The `systemk.io/vendor-unit.main` annotation, for packages with several units.
    pub vendor_unit: Option<&'static str>,
    /// The container's `args` (they replace the vendor `ExecStart=`'s options); empty:
    /// none.
    pub args: &'static [&'static str],
    /// Mount paths of emptyDir volumes the pod must give the daemon (state it writes
    /// outside the directories systemk makes writable).
    pub empty_dirs: &'static [&'static str],
    /// How the case checks the daemon.
    pub probe: Probe,
    /// How long the daemon may take to answer once its unit runs.
    pub probe_deadline: Duration,
}

impl Case {
    /// A case with no annotation and a 30 s probe deadline.
    pub const fn new(
        test: &'static str,
        image: &'static str,
        purge: &'static [&'static str],
        probe: Probe,
    ) -> Self {
        Self {
            test,
            image,
            purge,
            vendor_unit: None,
            args: &[],
            empty_dirs: &[],
            probe,
            probe_deadline: Duration::from_secs(30),
        }
    }
}

/// The package an image names: the part before a `=version` pin.
fn package_of(image: &str) -> &str {
    image.split('=').next().unwrap_or(image)
}

/// Waits until nothing listens on the probe's TCP port: the host network is shared with
/// other test runs, which may run a daemon on the same well-known port for a while.
async fn wait_for_free_port(probe: &Probe) {
    let Some(port) = probe.tcp_port() else {
        return;
    };
    let free = poll_until(INSTALL_DEADLINE, || async {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    })
    .await;
    assert!(free.is_some(), "port {port} stayed taken");
}

/// A pod named after `test` with one container `main` running `image`'s vendor unit.
fn pod(
    context: &TestContext,
    test: &str,
    image: &str,
    vendor_unit: Option<&str>,
) -> k8s_openapi::api::core::v1::Pod {
    let annotations = vendor_unit
        .map(|unit| json!({"systemk.io/vendor-unit.main": unit}))
        .unwrap_or(json!({}));
    serde_json::from_value(json!({
        "metadata": {
            "name": test.replace('_', "-"), "namespace": context.namespace(),
            "uid": unique_uid(), "annotations": annotations,
        },
        "spec": {"containers": [{"name": "main", "image": image}]},
    }))
    .unwrap()
}

/// Runs `case`: installs, waits for the container to run, probes it, cleans up.
pub async fn run_case(case: Case) {
    run_image(&case, case.image, None).await;
}

/// [`run_case`] with the pod's image `image` (e.g. a URL served by the test) and an
/// installer that also trusts `extra_ca_pem`.
pub async fn run_image(case: &Case, image: &str, extra_ca_pem: Option<&str>) {
    let context = TestContext::new(case.test);
    let host_had_it = known_to_dpkg(package_of(case.image));
    let _purge = (!host_had_it).then(|| Purge(case.purge.to_vec()));
    wait_for_free_port(&case.probe).await;
    let engine = Engine::new(extra_ca_pem).await;
    let mut pod = pod(&context, case.test, image, case.vendor_unit);
    let spec = pod.spec.as_mut().expect("the pod has a spec");
    if !case.args.is_empty() {
        spec.containers[0].args = Some(case.args.iter().map(|a| a.to_string()).collect());
    }
    for (i, path) in case.empty_dirs.iter().enumerate() {
        let volume: Volume =
            serde_json::from_value(json!({"name": format!("v{i}"), "emptyDir": {}})).unwrap();
        spec.volumes.get_or_insert_with(Vec::new).push(volume);
        let mount =
            serde_json::from_value(json!({"name": format!("v{i}"), "mountPath": path})).unwrap();
        spec.containers[0]
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(mount);
    }
    let run = engine.run(pod);
    let started = run
        .until(INSTALL_DEADLINE, "the container to run or fail", started)
        .await;
    if let Err(why) = started {
        panic!("{} does not run: {why}", case.image);
    }
    run.running_pid(INSTALL_DEADLINE, "main").await;
    probe_run(&run, case).await;
    run.finish().await;
}

/// A case that does not work yet (docs/packages.md says why): the container must wait
/// with `reason` and a message containing `why`. When systemk learns to run it, this
/// fails, and the case becomes a [`run_case`].
pub async fn known_failure(case: Case, reason: &str, why: &str) {
    let context = TestContext::new(case.test);
    let host_had_it = known_to_dpkg(package_of(case.image));
    let _purge = (!host_had_it).then(|| Purge(case.purge.to_vec()));
    let engine = Engine::new(None).await;
    let run = engine.run(pod(&context, case.test, case.image, case.vendor_unit));
    let started = run
        .until(INSTALL_DEADLINE, "the container to run or fail", started)
        .await;
    let message = started.expect_err("the known failure is fixed: make the case a run_case");
    assert!(message.starts_with(&format!("{reason}: ")), "{message}");
    assert!(message.contains(why), "{message}");
    run.finish().await;
}

/// `Ok` once the container runs; `Err` with the reason and message once it waits for
/// anything but its install (a crash loop, a unit that cannot be built): the suite
/// fails fast with what systemk reports instead of waiting out the deadline.
fn started(status: &PodStatus) -> Option<Result<(), String>> {
    let state = container_status(status, "main")?.state.as_ref()?;
    if state.running.is_some() {
        return Some(Ok(()));
    }
    let waiting = state.waiting.as_ref()?;
    let reason = waiting.reason.as_deref().unwrap_or_default();
    let message = waiting.message.as_deref().unwrap_or_default();
    // A pull failure may be another test run holding the dpkg lock: wait for it.
    let pulling = matches!(reason, "ErrImagePull" | "ImagePullBackOff") && message.contains("lock");
    if matches!(reason, "ContainerCreating" | "PodInitializing") || pulling {
        return None;
    }
    Some(Err(format!("{reason}: {message}")))
}

/// Probes the running daemon of `case`.
async fn probe_run(run: &PodRun, case: &Case) {
    let run_dir = run.run_dir("main");
    case.probe
        .check(case.probe_deadline, &run_dir, &run.unit_name("main"))
        .await;
}
