//! `imagePullPolicy: Always` of an unpinned apt package, end to end (issue 11, point 5):
//! a local apt repository (a flat `file:` source, trusted, unsigned) first serves version
//! 1.0 of a test package, then 1.0 and 2.0. A pod that started on 1.0 keeps running and
//! keeps its image ID when a later `Always` pod upgrades the host to 2.0; a pod of another
//! image is not touched either. The source file is removed, and the package purged, also
//! when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::package::build_versioned_deb;
use crate::support::TestContext;
use crate::support::engine::{Engine, INSTALL_DEADLINE, container_status, unique_uid};
use crate::support::packages::{Purge, assert_not_installed, hex_sha256, installed_version};

const PACKAGE: &str = "systemk-itest-always";

/// Where the test's apt source goes; removed by [`AptSource`]'s drop.
const SOURCE_FILE: &str = "/etc/apt/sources.list.d/systemk-itest-always.list";

/// A flat apt repository in a directory: the `.deb` files, `Packages` and an unsigned
/// `Release` naming its hash.
struct FlatRepo {
    dir: tempfile::TempDir,
}

impl FlatRepo {
    fn new() -> Self {
        // Not under /tmp: apt's `_apt` user reads the files, and units see another /tmp.
        let dir = tempfile::Builder::new()
            .prefix("systemk-itest-repo.")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Serves `versions` of [`PACKAGE`] (built in `build`) and nothing else.
    fn serve(&self, build: &Path, versions: &[&str]) {
        for entry in std::fs::read_dir(self.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for version in versions {
            let deb = build_versioned_deb(build, PACKAGE, version, "");
            std::fs::write(
                self.path().join(format!("{PACKAGE}_{version}_all.deb")),
                deb,
            )
            .unwrap();
        }
        let out = Command::new("dpkg-scanpackages")
            .args(["--multiversion", ".", "/dev/null"])
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(self.path().join("Packages"), &out.stdout).unwrap();
        let release = format!(
            "Origin: systemk-itest\nLabel: systemk-itest\nSuite: itest\nCodename: itest\n\
             Date: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: all amd64\n\
             SHA256:\n {} {} Packages\n",
            hex_sha256(&out.stdout),
            out.stdout.len()
        );
        std::fs::write(self.path().join("Release"), release).unwrap();
    }
}

/// The repository as an apt source while it lives.
struct AptSource(PathBuf);

impl AptSource {
    fn add(repo: &FlatRepo) -> Self {
        assert!(
            !Path::new(SOURCE_FILE).exists(),
            "{SOURCE_FILE} exists: another run of this test, or one that was killed"
        );
        let line = format!("deb [trusted=yes] file:{} ./\n", repo.path().display());
        std::fs::write(SOURCE_FILE, line).unwrap();
        Self(PathBuf::from(SOURCE_FILE))
    }
}

impl Drop for AptSource {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sleeper(
    context: &TestContext,
    name: &str,
    image: &str,
    pull: &str,
) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": context.namespace(), "uid": unique_uid() },
        "spec": { "containers": [{
            "name": "main",
            "image": image,
            "imagePullPolicy": pull,
            "command": ["/bin/sleep", "600"],
        }] },
    }))
    .unwrap()
}

fn restarts_and_image(status: &k8s_openapi::api::core::v1::PodStatus) -> (i32, String) {
    let container = container_status(status, "main").expect("a status of main");
    (container.restart_count, container.image_id.clone())
}

#[tokio::test]
async fn always_upgrades_to_the_newest_candidate_and_restarts_no_other_pod() {
    assert_not_installed(&[PACKAGE]);
    let _purge = Purge(vec![PACKAGE]);
    let build = tempfile::tempdir().unwrap();
    let repo = FlatRepo::new();
    repo.serve(build.path(), &["1.0"]);
    let _source = AptSource::add(&repo);
    let context = TestContext::new("apt_always");
    // Lists of any age are stale: apt-get update runs whenever a pull needs the lists.
    let engine = Engine::with_installer(None, |config| {
        config.apt_lists_max_age = Duration::ZERO;
    })
    .await;

    let first = engine.run(sleeper(&context, "first", PACKAGE, "IfNotPresent"));
    let first_pid = first.running_pid(INSTALL_DEADLINE, "main").await;
    assert_eq!(installed_version(PACKAGE).as_deref(), Some("1.0"));
    let other = engine.run(sleeper(&context, "other", "/bin/sleep", "IfNotPresent"));
    let other_pid = other.running_pid(INSTALL_DEADLINE, "main").await;

    repo.serve(build.path(), &["1.0", "2.0"]);
    let upgrader = engine.run(sleeper(&context, "upgrader", PACKAGE, "Always"));
    upgrader.running_pid(INSTALL_DEADLINE, "main").await;
    assert_eq!(installed_version(PACKAGE).as_deref(), Some("2.0"));
    let status = upgrader.pass().await;
    assert_eq!(
        restarts_and_image(&status),
        (0, format!("{PACKAGE}=2.0")),
        "the Always pod runs the newest candidate"
    );

    // The pod that started on 1.0 was neither restarted nor re-imaged, nor was the other.
    let status = first.pass().await;
    assert_eq!(restarts_and_image(&status), (0, format!("{PACKAGE}=1.0")));
    assert_eq!(first.running_pid(INSTALL_DEADLINE, "main").await, first_pid);
    other.pass().await;
    assert_eq!(other.running_pid(INSTALL_DEADLINE, "main").await, other_pid);

    upgrader.finish().await;
    other.finish().await;
    first.finish().await;
}
