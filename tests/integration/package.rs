//! The `package` layer against the real apt/dpkg of this host and a real HTTPS server on
//! loopback with its own CA. Every test purges what it installed, also when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use systemk::package::{
    Error, ImageRef, Installed, Installer, InstallerConfig, POLICY_RC_D, select_vendor_unit,
};

use crate::support::packages::{
    self, AdminHoldsLock, DebFile, DebServer, InstallOnce, Purge, assert_not_installed,
    dir_entries, hex_sha256, installed_version,
};

/// The host's policy-rc.d (the image's own) is back, and no file of systemk's guard is left.
fn assert_guard_gone(host_policy: &Option<Vec<u8>>) {
    assert_eq!(
        &std::fs::read(POLICY_RC_D).ok(),
        host_policy,
        "host policy-rc.d restored"
    );
    let leftovers: Vec<_> = std::fs::read_dir("/usr/sbin")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("policy-rc.d.systemk"))
        .collect();
    assert!(leftovers.is_empty(), "guard files left: {leftovers:?}");
}

/// Captures the log lines of the test's thread (the tokio tests run single-threaded).
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("systemk=debug")
            .with_ansi(false)
            .with_writer(logs.clone())
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn installer(cache: &Path, extra_ca_pem: Option<&str>) -> Installer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Installer::new(InstallerConfig {
        deb_cache_dir: cache.to_owned(),
        extra_root_certs_pem: extra_ca_pem
            .map(|pem| vec![pem.as_bytes().to_vec()])
            .unwrap_or_default(),
        ..InstallerConfig::default()
    })
    .unwrap()
}

fn unit_paths(installed: &Installed) -> Vec<PathBuf> {
    installed
        .service_units
        .iter()
        .map(|u| u.path.clone())
        .collect()
}

pub(crate) fn image(text: &str) -> ImageRef {
    text.parse().unwrap()
}

const UPTIMED_VERSION: &str = "1:0.4.6-3+b1";

#[tokio::test]
async fn apt_installs_uptimed_once_without_starting_it() {
    assert_not_installed(&["uptimed"]);
    let host_policy = std::fs::read(POLICY_RC_D).ok();
    let _purge = Purge(vec!["uptimed"]);
    let (logs, _log_guard) = Logs::capture();
    let cache = tempfile::tempdir().unwrap();
    let installer = installer(cache.path(), None);

    assert_eq!(installer.query(&image("uptimed")).await.unwrap(), None);
    let pinned = image(&format!("uptimed={UPTIMED_VERSION}"));
    let first = installer.install_one(&pinned).await.unwrap();
    assert_eq!(first.package.as_deref(), Some("uptimed"));
    assert_eq!(first.version.as_deref(), Some(UPTIMED_VERSION));
    assert_eq!(first.image_id, format!("uptimed={UPTIMED_VERSION}"));
    assert!(first.newly_installed);
    assert_eq!(
        unit_paths(&first),
        vec![PathBuf::from("/lib/systemd/system/uptimed.service")]
    );
    assert_eq!(
        first.writable_dirs,
        [
            PathBuf::from("/run/uptimed"),
            PathBuf::from("/var/spool/uptimed")
        ]
    );
    assert_eq!(
        select_vendor_unit(&first, None).unwrap().map(|s| s.path),
        Some("/lib/systemd/system/uptimed.service".into())
    );

    assert_guard_gone(&host_policy);
    let text = logs.text();
    let denied_start = text.lines().any(|l| {
        l.contains("kept a maintainer script")
            && l.contains("package=\"uptimed\"")
            && l.contains("start")
    });
    assert!(denied_start, "guard not consulted:\n{text}");
    let running = Command::new("pgrep")
        .args(["-x", "uptimed"])
        .output()
        .unwrap();
    assert!(
        !running.status.success(),
        "postinst started uptimed: {}",
        String::from_utf8_lossy(&running.stdout)
    );

    let again = installer.install_one(&image("uptimed")).await.unwrap();
    assert!(!again.newly_installed);
    assert_eq!(again.version.as_deref(), Some(UPTIMED_VERSION));
    let queried = installer.query(&pinned).await.unwrap().unwrap();
    assert_eq!(queried, again);
    assert_eq!(
        installer.query(&image("uptimed=0.1-1")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn unknown_package_is_not_found() {
    let cache = tempfile::tempdir().unwrap();
    let err = installer(cache.path(), None)
        .install_one(&image("systemk-no-such-package"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PackageNotFound { package, version: None } if package == "systemk-no-such-package"),
        "{err}"
    );
    assert_eq!(err.reason(), "ErrImagePull");
}

#[tokio::test]
async fn unknown_version_is_not_found() {
    let cache = tempfile::tempdir().unwrap();
    let err = installer(cache.path(), None)
        .install_one(&image("sl=0.0-0"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PackageNotFound { version: Some(v), .. } if v == "0.0-0"),
        "{err}"
    );
    assert_eq!(installed_version("sl"), None);
}

#[tokio::test]
async fn path_image_installs_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let installed = installer(cache.path(), None)
        .install_one(&image("/bin/sh"))
        .await
        .unwrap();
    assert!(
        installed.image_id.starts_with("sha256:") && installed.image_id.len() == 71,
        "{}",
        installed.image_id
    );
    assert_eq!(installed.package, None);
    // Not in /tmp: a path image's directories must not be writable by others.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "data").unwrap();
    let plain = image(plain.to_str().unwrap());
    let err = installer(cache.path(), None)
        .install_one(&plain)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotExecutable { .. }), "{err}");
}

/// A test package depending on `sl`, which is in the archive and not installed.
const DEB_PACKAGE: &str = "systemk-itest-https";
const DEB_DEPENDENCY: &str = "sl";

/// A test package whose dependency is in no archive.
const BROKEN_PACKAGE: &str = "systemk-itest-broken";

/// Builds `<package>_1.0-1_all.deb`, shipping a vendor unit running `sl`.
fn build_deb(dir: &Path, package: &str, depends: &str) -> Vec<u8> {
    let unit = format!("/usr/lib/systemd/system/{package}.service");
    let files = [DebFile {
        path: &unit,
        content: "[Service]\nExecStart=/usr/games/sl\n",
        mode: 0o644,
    }];
    packages::build_deb(dir, package, Some(depends), &files)
}

#[tokio::test]
async fn https_deb_installs_with_dependency_verified_and_cached() {
    assert_not_installed(&[DEB_PACKAGE, DEB_DEPENDENCY]);
    let host_policy = std::fs::read(POLICY_RC_D).ok();
    let _purge = Purge(vec![DEB_PACKAGE, DEB_DEPENDENCY]);
    let build = tempfile::tempdir().unwrap();
    let deb = build_deb(build.path(), DEB_PACKAGE, DEB_DEPENDENCY);
    let sha = hex_sha256(&deb);
    let server = DebServer::start(deb, Vec::new()).await;
    let file = format!("{DEB_PACKAGE}_1.0-1_all.deb");

    // A wrong pin: refused, nothing cached, nothing installed.
    let wrong_cache = tempfile::tempdir().unwrap();
    let wrong = image(&format!("{}@sha256:{}", server.url(&file), "0".repeat(64)));
    let err = installer(wrong_cache.path(), Some(server.ca_pem()))
        .install_one(&wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { actual, .. } if *actual == sha),
        "{err}"
    );
    assert_eq!(dir_entries(wrong_cache.path()), Vec::<String>::new());
    assert_not_installed(&[DEB_PACKAGE, DEB_DEPENDENCY]);

    // A file name promising another package: refused, nothing cached.
    let err = installer(wrong_cache.path(), Some(server.ca_pem()))
        .install_one(&image(&server.url("other-name_1.0-1_all.deb")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PackageNameMismatch { found, .. } if found == DEB_PACKAGE),
        "{err}"
    );
    assert_eq!(dir_entries(wrong_cache.path()), Vec::<String>::new());
    assert_eq!(server.requests(), 2);

    // Not trusting the test CA: the download fails in TLS.
    let err = installer(wrong_cache.path(), None)
        .install_one(&image(&server.url(&file)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DownloadFailed { .. }), "{err}");

    let cache = tempfile::tempdir().unwrap();
    let installer = installer(cache.path(), Some(server.ca_pem()));
    let pinned = image(&format!("{}@sha256:{sha}", server.url(&file)));
    assert_eq!(installer.query(&pinned).await.unwrap(), None);
    let first = installer.install_one(&pinned).await.unwrap();
    assert!(first.newly_installed);
    assert_eq!(first.image_id, format!("sha256:{sha}"));
    assert_eq!(first.version.as_deref(), Some("1.0-1"));
    assert_eq!(
        unit_paths(&first),
        vec![PathBuf::from(format!(
            "/usr/lib/systemd/system/{DEB_PACKAGE}.service"
        ))]
    );
    assert!(
        installed_version(DEB_DEPENDENCY).is_some(),
        "dependency installed from the archive"
    );
    assert_eq!(dir_entries(cache.path()), vec![format!("{sha}.deb")]);
    assert_guard_gone(&host_policy);
    let requests = server.requests();

    let again = installer.install_one(&pinned).await.unwrap();
    assert!(!again.newly_installed);
    assert_eq!(
        server.requests(),
        requests,
        "pinned and cached: not downloaded again"
    );
    assert_eq!(installer.query(&pinned).await.unwrap(), Some(again));

    // Unpinned: downloaded once, indexed by URL, then served from the cache.
    let unpinned = image(&server.url(&file));
    let found = installer.install_one(&unpinned).await.unwrap();
    assert!(!found.newly_installed);
    assert_eq!(found.image_id, format!("sha256:{sha}"));
    assert_eq!(server.requests(), requests + 1);
    installer.install_one(&unpinned).await.unwrap();
    assert_eq!(
        server.requests(),
        requests + 1,
        "unpinned URL downloaded once"
    );
    assert_eq!(
        dir_entries(cache.path()),
        vec![format!("{sha}.deb"), "urls".to_owned()]
    );
}

#[tokio::test]
async fn https_deb_with_missing_dependency_installs_nothing() {
    assert_not_installed(&[BROKEN_PACKAGE]);
    let host_policy = std::fs::read(POLICY_RC_D).ok();
    let _purge = Purge(vec![BROKEN_PACKAGE]);
    let build = tempfile::tempdir().unwrap();
    let broken = build_deb(build.path(), BROKEN_PACKAGE, "systemk-no-such-dependency");
    let server = DebServer::start(Vec::new(), vec![(BROKEN_PACKAGE.to_owned(), broken)]).await;
    let cache = tempfile::tempdir().unwrap();
    let url = server.url(&format!("{BROKEN_PACKAGE}_1.0-1_all.deb"));

    let err = installer(cache.path(), Some(server.ca_pem()))
        .install_one(&image(&url))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InstallFailed { stdout, .. } if stdout.contains("systemk-no-such-dependency")),
        "{err}"
    );
    assert_not_installed(&[BROKEN_PACKAGE]);
    assert_guard_gone(&host_policy);
}

// Issue 10, point 7: images cannot take over the host's packages.

/// A host package no image may remove or downgrade: installed by the test, not systemk.
const VICTIM: &str = "systemk-itest-victim";
/// A package that `Conflicts:` with [`VICTIM`].
const CONFLICTING: &str = "systemk-itest-conflicting";

/// Builds `<package>_<version>_all.deb` with an optional extra control line.
pub(crate) fn build_versioned_deb(
    dir: &Path,
    package: &str,
    version: &str,
    extra: &str,
) -> Vec<u8> {
    let root = dir.join(format!("{package}-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: systemk tests <t@example.invalid>\n{extra}\
             Description: systemk integration test package\n"
        ),
    )
    .unwrap();
    let deb = dir.join(format!("{package}_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(deb).unwrap()
}

/// Installs a .deb the way an admin would (not through systemk).
pub(crate) fn admin_installs(deb: &[u8], dir: &Path) {
    let path = dir.join("admin.deb");
    std::fs::write(&path, deb).unwrap();
    // An admin's dpkg waits while another dpkg (systemk's, another test run's) holds the
    // frontend lock; dpkg 1.21 has no lock timeout of its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let out = Command::new("dpkg")
            .args(["-i"])
            .arg(&path)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success()
            && stderr.contains("frontend lock")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_secs(1));
            continue;
        }
        assert!(out.status.success(), "{stderr}");
        return;
    }
}

pub(crate) fn installer_with(cache: &Path, ca_pem: &str, config: InstallerConfig) -> Installer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Installer::new(InstallerConfig {
        deb_cache_dir: cache.to_owned(),
        extra_root_certs_pem: vec![ca_pem.as_bytes().to_vec()],
        ..config
    })
    .unwrap()
}

#[tokio::test]
async fn image_cannot_downgrade_a_host_package_but_may_its_own() {
    assert_not_installed(&[VICTIM]);
    let _purge = Purge(vec![VICTIM]);
    let build = tempfile::tempdir().unwrap();
    let new = build_versioned_deb(build.path(), VICTIM, "2.0", "");
    let old = build_versioned_deb(build.path(), VICTIM, "1.0", "");
    admin_installs(&new, build.path());
    let server = DebServer::start(
        Vec::new(),
        vec![
            (format!("{VICTIM}_1.0_"), old.clone()),
            (format!("{VICTIM}_2.0_"), new.clone()),
        ],
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let record = state.path().join("packages");
    let installer = installer_with(
        cache.path(),
        server.ca_pem(),
        InstallerConfig {
            packages_record: Some(record.clone()),
            ..InstallerConfig::default()
        },
    );
    let downgrade = image(&server.url(&format!("{VICTIM}_1.0_all.deb")));
    let err = installer.install_one(&downgrade).await.unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(
        matches!(&err, Error::InstallFailed { stderr, .. } if stderr.contains("--allow-downgrades")),
        "{err}"
    );
    assert_eq!(
        installed_version(VICTIM).as_deref(),
        Some("2.0"),
        "host package unchanged"
    );
    assert!(
        !std::fs::read_to_string(&record)
            .unwrap_or_default()
            .contains(VICTIM)
    );

    // A package systemk installed itself may be downgraded by a later image.
    Purge(vec![VICTIM]);
    let installed = installer
        .install_one(&image(&server.url(&format!("{VICTIM}_2.0_all.deb"))))
        .await
        .unwrap();
    assert!(installed.newly_installed);
    assert!(
        std::fs::read_to_string(&record)
            .unwrap()
            .lines()
            .any(|l| l == VICTIM)
    );
    installer.install_one(&downgrade).await.unwrap();
    assert_eq!(installed_version(VICTIM).as_deref(), Some("1.0"));
}

#[tokio::test]
async fn image_conflicting_with_a_host_package_removes_nothing() {
    assert_not_installed(&[VICTIM, CONFLICTING]);
    let host_policy = std::fs::read(POLICY_RC_D).ok();
    let _purge = Purge(vec![CONFLICTING, VICTIM]);
    let build = tempfile::tempdir().unwrap();
    admin_installs(
        &build_versioned_deb(build.path(), VICTIM, "1.0", ""),
        build.path(),
    );
    let conflicting = build_versioned_deb(
        build.path(),
        CONFLICTING,
        "1.0",
        &format!("Conflicts: {VICTIM}\n"),
    );
    let server = DebServer::start(conflicting, Vec::new()).await;
    let cache = tempfile::tempdir().unwrap();
    let err = installer(cache.path(), Some(server.ca_pem()))
        .install_one(&image(&server.url(&format!("{CONFLICTING}_1.0_all.deb"))))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(
        matches!(&err, Error::InstallFailed { stderr, stdout, .. }
            if stderr.contains("remove is disabled") && stdout.contains(VICTIM)),
        "{err}"
    );
    assert_eq!(
        installed_version(VICTIM).as_deref(),
        Some("1.0"),
        "nothing removed"
    );
    assert_not_installed(&[CONFLICTING]);
    assert_guard_gone(&host_policy);
}

#[tokio::test]
async fn path_image_in_a_world_writable_directory_is_refused() {
    let dir = tempfile::Builder::new()
        .prefix("systemk-itest-path-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    let tool = open.join("tool");
    std::fs::copy("/bin/true", &tool).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = installer(cache.path(), None)
        .install_one(&image(tool.to_str().unwrap()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnsafeImagePath { offending, .. } if *offending == open),
        "{err}"
    );
    assert_eq!(err.reason(), "ErrImagePull");
}

#[tokio::test]
async fn https_image_from_a_host_not_allowed_is_refused_before_download() {
    let build = tempfile::tempdir().unwrap();
    let server = DebServer::start(
        build_deb(build.path(), DEB_PACKAGE, DEB_DEPENDENCY),
        Vec::new(),
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let policy = systemk::package::ImagePolicy {
        https_hosts: Some(vec!["debs.example".into()]),
        ..Default::default()
    };
    let installer = installer_with(
        cache.path(),
        server.ca_pem(),
        InstallerConfig {
            policy,
            ..InstallerConfig::default()
        },
    );
    let err = installer
        .install_one(&image(&server.url(&format!("{DEB_PACKAGE}_1.0-1_all.deb"))))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ImageRefused { .. }), "{err}");
    assert!(err.to_string().contains("--image-https-hosts"), "{err}");
    assert_eq!(err.reason(), "ErrImagePull");
    assert_eq!(server.requests(), 0, "nothing downloaded");
}

#[tokio::test]
async fn unpinned_https_image_is_refused_when_pins_are_required() {
    let build = tempfile::tempdir().unwrap();
    let server = DebServer::start(
        build_deb(build.path(), DEB_PACKAGE, DEB_DEPENDENCY),
        Vec::new(),
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let policy = systemk::package::ImagePolicy {
        require_sha256: true,
        ..Default::default()
    };
    let installer = installer_with(
        cache.path(),
        server.ca_pem(),
        InstallerConfig {
            policy,
            ..InstallerConfig::default()
        },
    );
    let err = installer
        .install_one(&image(&server.url(&format!("{DEB_PACKAGE}_1.0-1_all.deb"))))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--image-require-sha256"), "{err}");
    assert_eq!(err.reason(), "ErrImagePull");
    assert_eq!(server.requests(), 0, "nothing downloaded");
    assert_not_installed(&[DEB_PACKAGE]);
}

/// An https install of [`VICTIM`] 1.0 that waits for the dpkg lock an admin's apt holds,
/// with what it needs kept alive.
struct WaitingInstall {
    installer: Arc<Installer>,
    install: tokio::task::JoinHandle<Result<Installed, Error>>,
    admin: AdminHoldsLock,
    _server: DebServer,
    _cache: tempfile::TempDir,
}

/// Starts the install while the admin holds dpkg and returns once it says it waits.
async fn install_waiting_for_admin(logs: &Logs) -> WaitingInstall {
    let build = tempfile::tempdir().unwrap();
    let server = DebServer::start(
        build_versioned_deb(build.path(), VICTIM, "1.0", ""),
        Vec::new(),
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let installer = Arc::new(installer(cache.path(), Some(server.ca_pem())));
    let admin = AdminHoldsLock::start();
    let url = server.url(&format!("{VICTIM}_1.0_all.deb"));
    let waiting = installer.clone();
    let install = tokio::spawn(async move { waiting.install_one(&image(&url)).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !logs.text().contains("waiting for another package manager") {
        assert!(
            std::time::Instant::now() < deadline,
            "never waited:\n{}",
            logs.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    WaitingInstall {
        installer,
        install,
        admin,
        _server: server,
        _cache: cache,
    }
}

#[tokio::test]
async fn guard_goes_in_place_only_once_the_dpkg_lock_is_held() {
    assert_not_installed(&[VICTIM]);
    let host_policy = std::fs::read(POLICY_RC_D).ok();
    let _purge = Purge(vec![VICTIM]);
    let (logs, _log_guard) = Logs::capture();
    let waiting = install_waiting_for_admin(&logs).await;
    assert_eq!(
        std::fs::read(POLICY_RC_D).ok(),
        host_policy,
        "the admin's apt run must not see systemk's guard"
    );
    assert!(!waiting.install.is_finished());
    drop(waiting.admin);
    waiting.install.await.unwrap().unwrap();
    assert_eq!(installed_version(VICTIM).as_deref(), Some("1.0"));
    assert_guard_gone(&host_policy);
}

/// An install waits while an admin's apt holds dpkg; meanwhile other pods' passes go on:
/// a path image installs, a pod's removed container and a gone pod give up their holds,
/// each without waiting for that install.
#[tokio::test]
async fn an_install_waiting_for_dpkg_holds_up_no_other_pod() {
    assert_not_installed(&[VICTIM]);
    let _purge = Purge(vec![VICTIM]);
    let (logs, _log_guard) = Logs::capture();
    let waiting = install_waiting_for_admin(&logs).await;
    let installer = &waiting.installer;

    // Only a guard against hanging: each of these returns at once, while dpkg stays held.
    let others = async {
        let path = installer
            .install(
                &image("/bin/sleep"),
                systemk::package::PullPolicy::IfNotPresent,
                &packages::test_holder("other"),
            )
            .await;
        installer.retain_slots("uid-other", &[]);
        installer.release("uid-gone");
        path
    };
    let path = tokio::time::timeout(std::time::Duration::from_secs(60), others)
        .await
        .expect("another pod waited for an install it has nothing to do with");
    assert!(path.unwrap().package.is_none());
    assert!(
        !waiting.install.is_finished(),
        "dpkg is still held: the install waits"
    );

    drop(waiting.admin);
    waiting.install.await.unwrap().unwrap();
    assert_eq!(installed_version(VICTIM).as_deref(), Some("1.0"));
}
