//! Garbage collection of packages and of the `.deb` cache, through the real installer and
//! the host's apt/dpkg, with test packages served over HTTPS on loopback (issue 11,
//! point 7). The grace is passed per call, so no test waits for it: a long grace keeps,
//! a zero grace removes at once. Every test purges what it installed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use systemk::package::{GcSettings, Installer, InstallerConfig, PullPolicy};

use crate::package::{admin_installs, build_versioned_deb, image, installer_with};
use crate::support::packages::{
    DebServer, Purge, assert_not_installed, dir_entries, installed_version, test_holder,
};

/// Packages only these tests use.
const IMAGE: &str = "systemk-itest-gc-image";
const ADMINS: &str = "systemk-itest-gc-admins";
const LIB: &str = "systemk-itest-gc-lib";
const APP: &str = "systemk-itest-gc-app";

/// Keeps every package (an hour of grace), leaves the cache alone.
const LONG_GRACE: GcSettings = GcSettings {
    unused_package_age: Some(Duration::from_secs(3600)),
    deb_cache_max_bytes: u64::MAX,
};

/// Removes every unused package of systemk's at once.
const NO_GRACE: GcSettings = GcSettings {
    unused_package_age: Some(Duration::ZERO),
    deb_cache_max_bytes: u64::MAX,
};

/// Serves each `(package, extra control lines)` as version 1.0.
async fn serve(build: &Path, packages: &[(&str, &str)]) -> DebServer {
    let routes = packages
        .iter()
        .map(|(name, extra)| {
            (
                format!("{name}_1.0_"),
                build_versioned_deb(build, name, "1.0", extra),
            )
        })
        .collect();
    DebServer::start(Vec::new(), routes).await
}

/// An installer keeping its record of installed packages in `state`.
fn recording_installer(cache: &Path, state: &Path, server: &DebServer) -> Installer {
    installer_with(
        cache,
        server.ca_pem(),
        InstallerConfig {
            packages_record: Some(state.join("packages")),
            ..InstallerConfig::default()
        },
    )
}

async fn install_for(installer: &Installer, server: &DebServer, package: &str, pod: &str) {
    let url = image(&server.url(&format!("{package}_1.0_all.deb")));
    installer
        .install(&url, PullPolicy::IfNotPresent, &test_holder(pod))
        .await
        .unwrap();
}

fn holder_owner(pod: &str) -> String {
    test_holder(pod).owner
}

#[tokio::test]
async fn a_package_installed_for_a_deleted_pod_is_removed_after_the_grace() {
    assert_not_installed(&[IMAGE]);
    let _purge = Purge(vec![IMAGE]);
    let (build, cache, state) = (tempdirs(), tempdirs(), tempdirs());
    let server = serve(build.path(), &[(IMAGE, "")]).await;
    let installer = recording_installer(cache.path(), state.path(), &server);
    install_for(&installer, &server, IMAGE, "web").await;

    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert!(report.removed.is_empty(), "held: {report:?}");
    installer.release(&holder_owner("web"));
    let report = installer.collect_garbage(&LONG_GRACE).await.unwrap();
    assert!(report.removed.is_empty(), "within the grace: {report:?}");
    assert!(installed_version(IMAGE).is_some());

    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert_eq!(report.removed, [IMAGE]);
    assert_eq!(installed_version(IMAGE), None);
    let record = std::fs::read_to_string(state.path().join("packages")).unwrap();
    assert!(!record.contains(IMAGE), "forgotten: {record}");
}

/// A small Debian package from the apt sources that nothing else in the tests uses.
const DEBIAN_PACKAGE: &str = "sysvbanner";

#[tokio::test]
async fn a_debian_package_from_apt_is_removed_once_its_pod_is_gone() {
    assert_not_installed(&[DEBIAN_PACKAGE]);
    let _purge = Purge(vec![DEBIAN_PACKAGE]);
    let (cache, state) = (tempdirs(), tempdirs());
    let installer = installer_with(
        cache.path(),
        "",
        InstallerConfig {
            packages_record: Some(state.path().join("packages")),
            ..InstallerConfig::default()
        },
    );
    installer
        .install(
            &image(DEBIAN_PACKAGE),
            PullPolicy::IfNotPresent,
            &test_holder("banner"),
        )
        .await
        .unwrap();
    assert!(installed_version(DEBIAN_PACKAGE).is_some());
    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert!(report.removed.is_empty(), "in use: {report:?}");

    installer.release(&holder_owner("banner"));
    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert_eq!(report.removed, [DEBIAN_PACKAGE]);
    assert_eq!(installed_version(DEBIAN_PACKAGE), None);
    assert!(
        installed_version("libc6").is_some(),
        "its dependency is the host's"
    );
}

#[tokio::test]
async fn a_package_the_admin_installed_is_never_removed_even_when_a_pod_named_it() {
    assert_not_installed(&[ADMINS]);
    let _purge = Purge(vec![ADMINS]);
    let (build, cache, state) = (tempdirs(), tempdirs(), tempdirs());
    let server = serve(build.path(), &[(ADMINS, "")]).await;
    admin_installs(
        &build_versioned_deb(build.path(), ADMINS, "1.0", ""),
        build.path(),
    );
    let installer = recording_installer(cache.path(), state.path(), &server);
    // The attack: a pod names the admin's package as its image, then goes away.
    install_for(&installer, &server, ADMINS, "sneaky").await;
    installer.release(&holder_owner("sneaky"));

    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(installed_version(ADMINS).as_deref(), Some("1.0"));
}

#[tokio::test]
async fn a_package_another_pod_uses_is_kept() {
    assert_not_installed(&[IMAGE]);
    let _purge = Purge(vec![IMAGE]);
    let (build, cache, state) = (tempdirs(), tempdirs(), tempdirs());
    let server = serve(build.path(), &[(IMAGE, "")]).await;
    let installer = recording_installer(cache.path(), state.path(), &server);
    install_for(&installer, &server, IMAGE, "first").await;
    install_for(&installer, &server, IMAGE, "second").await;
    installer.release(&holder_owner("first"));

    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert!(installed_version(IMAGE).is_some());
    installer.release(&holder_owner("second"));
    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert_eq!(report.removed, [IMAGE]);
}

#[tokio::test]
async fn a_package_another_installed_package_depends_on_is_kept() {
    assert_not_installed(&[LIB, APP]);
    let _purge = Purge(vec![APP, LIB]);
    let (build, cache, state) = (tempdirs(), tempdirs(), tempdirs());
    let depends = format!("Depends: {LIB}\n");
    let server = serve(build.path(), &[(LIB, ""), (APP, &depends)]).await;
    let installer = recording_installer(cache.path(), state.path(), &server);
    install_for(&installer, &server, LIB, "lib-pod").await;
    // The admin installs a package that needs systemk's.
    admin_installs(
        &build_versioned_deb(build.path(), APP, "1.0", &depends),
        build.path(),
    );
    installer.release(&holder_owner("lib-pod"));

    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(report.kept, [(LIB.to_owned(), vec![APP.to_owned()])]);
    assert!(installed_version(LIB).is_some() && installed_version(APP).is_some());
}

#[tokio::test]
async fn systemk_removes_its_dependency_after_the_package_that_needed_it() {
    assert_not_installed(&[LIB, APP]);
    let _purge = Purge(vec![APP, LIB]);
    let (build, cache, state) = (tempdirs(), tempdirs(), tempdirs());
    let depends = format!("Depends: {LIB}\n");
    let server = serve(build.path(), &[(LIB, ""), (APP, &depends)]).await;
    let installer = recording_installer(cache.path(), state.path(), &server);
    install_for(&installer, &server, LIB, "lib-pod").await;
    install_for(&installer, &server, APP, "app-pod").await;
    installer.release(&holder_owner("lib-pod"));

    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert!(report.removed.is_empty(), "{APP} needs it: {report:?}");
    installer.release(&holder_owner("app-pod"));
    let report = installer.collect_garbage(&NO_GRACE).await.unwrap();
    assert_eq!(
        report.removed,
        [APP, LIB],
        "one pass: the dependency goes right after its dependent"
    );
    assert_not_installed(&[LIB, APP]);
}

#[tokio::test]
async fn the_deb_cache_is_trimmed_to_its_bound_least_recently_used_first() {
    assert_not_installed(&[LIB, APP]);
    let _purge = Purge(vec![APP, LIB]);
    let (build, cache, state) = (tempdirs(), tempdirs(), tempdirs());
    let depends = format!("Depends: {LIB}\n");
    let server = serve(build.path(), &[(LIB, ""), (APP, &depends)]).await;
    let installer = recording_installer(cache.path(), state.path(), &server);
    install_for(&installer, &server, LIB, "lib-pod").await;
    install_for(&installer, &server, APP, "app-pod").await;
    let debs: Vec<String> = dir_entries(cache.path())
        .into_iter()
        .filter(|name| name.ends_with(".deb"))
        .collect();
    assert_eq!(debs.len(), 2, "{debs:?}");
    // Both used long enough ago to be trimmable; the first one used longer ago.
    let now = SystemTime::now();
    for (at, name) in debs.iter().enumerate() {
        let file = std::fs::File::options()
            .write(true)
            .open(cache.path().join(name))
            .unwrap();
        file.set_modified(now - Duration::from_secs(3600 * (2 - at as u64)))
            .unwrap();
    }
    let newest = std::fs::metadata(cache.path().join(&debs[1]))
        .unwrap()
        .len();

    let settings = GcSettings {
        unused_package_age: None,
        deb_cache_max_bytes: newest,
    };
    let report = installer.collect_garbage(&settings).await.unwrap();
    assert_eq!(report.trimmed, [debs[0].clone()]);
    assert!(report.removed.is_empty(), "no package GC: {report:?}");
    assert!(cache.path().join(&debs[1]).exists());
    assert!(!cache.path().join(&debs[0]).exists());
}

fn tempdirs() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
