//! What every integration test needs: a check that it runs inside the sandbox, a fresh
//! workspace, names unique to the test, waiting on a condition with a deadline (tests
//! never sleep a fixed time), the system bus, and finding `kubectl` (a test that needs it
//! and finds none is skipped loudly, and `scripts/test` counts it). [`packages`]: real
//! packages to install.

pub mod engine;
pub mod packages;

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use systemk::unit::UnitName;
use tempfile::TempDir;

/// Set to `1` by `scripts/systemd-sandbox` for the command it runs.
const SANDBOX_ENV: &str = "SYSTEMK_SANDBOX";

/// The kubectl the tests use, when set; otherwise the first `kubectl` on `PATH`.
const KUBECTL_ENV: &str = "SYSTEMK_KUBECTL";

/// A file `scripts/test` creates and counts: one line per skipped test.
const SKIPS_ENV: &str = "SYSTEMK_TEST_SKIPS";

/// How often `wait_for` re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Longest test-name part of a namespace; the rest of the 63-character DNS label is the
/// unique suffix.
const NAME_PART_MAX: usize = 40;

/// Fails the test unless it runs inside `scripts/systemd-sandbox`: these tests start
/// units and install packages, which must never happen on the host's own systemd.
pub fn require_sandbox() {
    assert!(
        std::env::var(SANDBOX_ENV).as_deref() == Ok("1"),
        "integration tests must run inside the systemd sandbox: run `scripts/test` \
         (or `scripts/systemd-sandbox -- <test binary> --test-threads=1`)"
    );
}

/// The kubectl to run: `$SYSTEMK_KUBECTL` when set, else the first executable `kubectl` on
/// `PATH`; `None` when there is none.
pub fn kubectl() -> Option<PathBuf> {
    let executable = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if let Some(given) = std::env::var_os(KUBECTL_ENV) {
        let given = PathBuf::from(given);
        return executable(&given).then_some(given);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| executable(candidate))
}

/// The kubectl for `test`, or `None` after reporting the skip (see [`skip`]): a test that
/// needs kubectl starts with `let Some(kubectl) = kubectl_or_skip("name") else { return };`.
pub fn kubectl_or_skip(test: &str) -> Option<PathBuf> {
    let found = kubectl();
    if found.is_none() {
        skip(
            test,
            &format!(
                "no kubectl (set {KUBECTL_ENV}, or put kubectl on PATH: scripts/install-deps)"
            ),
        );
    }
    found
}

/// Reports loudly that `test` did not run, and why, and records it in `$SYSTEMK_TEST_SKIPS`
/// so that `scripts/test` counts it at the end. The test then returns without failing.
pub fn skip(test: &str, why: &str) {
    // Straight to stderr, not through `eprintln!`, which the test harness captures and
    // shows only for failing tests.
    let _ = writeln!(std::io::stderr(), "\n!!!!! SKIPPED {test}: {why} !!!!!");
    if let Some(file) = std::env::var_os(SKIPS_ENV) {
        let recorded = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| writeln!(f, "{test}: {why}"));
        if let Err(error) = recorded {
            eprintln!(
                "could not record the skip in {}: {error}",
                file.to_string_lossy()
            );
        }
    }
}

/// One test's own world: a fresh temporary directory and a Kubernetes namespace no other
/// test (or earlier run) uses, so unit names never collide.
pub struct TestContext {
    workspace: TempDir,
    namespace: String,
}

impl TestContext {
    /// A context for the test named `test` (used in names, so failures are traceable).
    pub fn new(test: &str) -> Self {
        require_sandbox();
        let workspace = tempfile::Builder::new()
            .prefix(&format!("systemk-{test}-"))
            .tempdir()
            .expect("create the test workspace");
        Self {
            workspace,
            namespace: unique_namespace(test),
        }
    }

    /// The test's fresh, empty directory; removed when the context is dropped.
    pub fn workspace(&self) -> &Path {
        self.workspace.path()
    }

    /// The namespace unique to this test: a valid DNS label.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The unit name of `container` in `pod` of this test's namespace.
    pub fn unit_name(&self, pod: &str, container: &str) -> UnitName {
        UnitName::for_container(&self.namespace, pod, container).expect("valid test unit name")
    }
}

fn unique_namespace(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(NAME_PART_MAX)
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    name.push_str(&format!("-{:x}{nanos:x}{count:x}", std::process::id()));
    name.trim_start_matches('-').to_owned()
}

/// Polls `condition` until it yields a value, failing the test with `what` when
/// `deadline` passes first.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(deadline, condition).await {
        Some(value) => value,
        None => panic!("timed out after {deadline:?} waiting for {what}"),
    }
}

/// Polls `condition` until it yields a value; `None` when `deadline` passes first.
pub async fn poll_until<T, F, Fut>(deadline: Duration, mut condition: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(value) = condition().await {
                return value;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    };
    tokio::time::timeout(deadline, poll).await.ok()
}

/// A loopback TCP port free at the time of asking (the sandbox shares the host's network).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// A connection to the sandbox's system bus.
pub async fn system_bus() -> zbus::Connection {
    require_sandbox();
    zbus::Connection::system()
        .await
        .expect("connect to the sandbox's system bus")
}

/// Whether systemd has the unit loaded (`GetUnit` fails for units it does not know).
pub async fn is_loaded(name: &UnitName) -> bool {
    system_bus()
        .await
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "GetUnit",
            &(name.as_str(),),
        )
        .await
        .is_ok()
}
