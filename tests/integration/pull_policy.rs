//! `imagePullPolicy` and one package held by several pods, through the real installer, the
//! host's apt/dpkg and a local HTTPS server serving two versions of one test package
//! (issue 11, points 5 and 6). Every test purges what it installed.

use std::process::Command;
use std::time::Duration;

use systemk::package::{Error, InstallerConfig, PullPolicy};

use crate::package::{Logs, build_versioned_deb, image, installer_with};
use crate::support::packages::{
    DebServer, Purge, assert_not_installed, installed_version, test_holder,
};

/// A package with versions 1.0 and 2.0, served as https images.
const PINNED: &str = "systemk-itest-pinned";

/// Serves `PINNED` 1.0 and 2.0.
async fn two_versions(build: &std::path::Path) -> DebServer {
    let v1 = build_versioned_deb(build, PINNED, "1.0", "");
    let v2 = build_versioned_deb(build, PINNED, "2.0", "");
    DebServer::start(
        Vec::new(),
        vec![
            (format!("{PINNED}_1.0_"), v1),
            (format!("{PINNED}_2.0_"), v2),
        ],
    )
    .await
}

fn apt_ran(logs: &str) -> bool {
    logs.contains("resolving") || logs.contains("refreshing the apt package lists")
}

#[tokio::test]
async fn never_with_an_absent_package_is_err_image_never_pull_and_pulls_nothing() {
    let package = "systemk-itest-never-pulled";
    assert_not_installed(&[package]);
    let (logs, _guard) = Logs::capture();
    let build = tempfile::tempdir().unwrap();
    let server = two_versions(build.path()).await;
    let cache = tempfile::tempdir().unwrap();
    let installer = installer_with(cache.path(), server.ca_pem(), InstallerConfig::default());
    let holder = test_holder("never");

    let err = installer
        .install(&image(package), PullPolicy::Never, &holder)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeverPull { .. }), "{err}");
    assert_eq!(err.reason(), "ErrImageNeverPull");
    assert!(!err.is_transient(), "waits for the pod to change");
    assert_eq!(
        err.to_string(),
        format!("Container image \"{package}\" is not present with pull policy of Never")
    );

    let url = image(&server.url(&format!("{PINNED}_1.0_all.deb")));
    let err = installer
        .install(&url, PullPolicy::Never, &holder)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "ErrImageNeverPull");
    assert_eq!(server.requests(), 0, "Never downloads nothing");
    assert!(!apt_ran(&logs.text()), "{}", logs.text());
    assert_not_installed(&[package, PINNED]);
}

#[tokio::test]
async fn an_installed_package_runs_no_apt_with_if_not_present_never_or_a_pinned_always() {
    let version = installed_version("dpkg").expect("dpkg is installed");
    let (logs, _guard) = Logs::capture();
    let cache = tempfile::tempdir().unwrap();
    let installer = installer_with(cache.path(), "", InstallerConfig::default());
    let holder = test_holder("present");
    let pinned = image(&format!("dpkg={version}"));
    for (image, pull) in [
        (image("dpkg"), PullPolicy::IfNotPresent),
        (image("dpkg"), PullPolicy::Never),
        (pinned.clone(), PullPolicy::IfNotPresent),
        // A pinned version that is installed is all Always can ask for.
        (pinned, PullPolicy::Always),
    ] {
        let installed = installer.install(&image, pull, &holder).await.unwrap();
        assert!(!installed.newly_installed);
        assert_eq!(installed.image_id, format!("dpkg={version}"));
    }
    let text = logs.text();
    assert!(!apt_ran(&text), "no apt-get ran: {text}");
    assert_eq!(text.matches("already installed").count(), 3, "{text}");
}

#[tokio::test]
async fn pods_share_one_install_and_a_second_version_fails_naming_the_holder() {
    assert_not_installed(&[PINNED]);
    let _purge = Purge(vec![PINNED]);
    let (logs, _guard) = Logs::capture();
    let build = tempfile::tempdir().unwrap();
    let server = two_versions(build.path()).await;
    let cache = tempfile::tempdir().unwrap();
    let installer = installer_with(cache.path(), server.ca_pem(), InstallerConfig::default());
    let v1 = image(&server.url(&format!("{PINNED}_1.0_all.deb")));
    let v2 = image(&server.url(&format!("{PINNED}_2.0_all.deb")));
    let (a, b, c) = (test_holder("a"), test_holder("b"), test_holder("c"));

    let first = installer
        .install(&v1, PullPolicy::IfNotPresent, &a)
        .await
        .unwrap();
    assert!(first.newly_installed);
    let shared = installer
        .install(&v1, PullPolicy::IfNotPresent, &b)
        .await
        .unwrap();
    assert!(!shared.newly_installed, "the second pod shares the install");
    let text = logs.text();
    assert_eq!(
        text.matches(": installing ").count(),
        1,
        "one apt-get: {text}"
    );

    let err = installer
        .install(&v2, PullPolicy::IfNotPresent, &c)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(err.is_transient(), "retried: heals when the holders go");
    let text = err.to_string();
    assert!(text.contains("pod default/a uses version 1.0"), "{text}");
    assert!(
        text.contains(&format!("package {PINNED} version 2.0")),
        "{text}"
    );
    assert_eq!(
        installed_version(PINNED).as_deref(),
        Some("1.0"),
        "not flipped"
    );

    // Once no pod holds 1.0, the other version may come.
    installer.release(&a.owner);
    installer
        .install(&v2, PullPolicy::IfNotPresent, &c)
        .await
        .unwrap_err();
    installer.release(&b.owner);
    let second = installer
        .install(&v2, PullPolicy::IfNotPresent, &c)
        .await
        .unwrap();
    assert_eq!(second.version.as_deref(), Some("2.0"));
    assert_eq!(installed_version(PINNED).as_deref(), Some("2.0"));
}

#[tokio::test]
async fn a_pod_cannot_downgrade_a_package_an_adopted_pod_runs() {
    assert_not_installed(&[PINNED]);
    let _purge = Purge(vec![PINNED]);
    let build = tempfile::tempdir().unwrap();
    let server = two_versions(build.path()).await;
    let cache = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let installer = installer_with(
        cache.path(),
        server.ca_pem(),
        InstallerConfig {
            // systemk's own package: only the holders stand in the way of a downgrade.
            packages_record: Some(state.path().join("packages")),
            ..InstallerConfig::default()
        },
    );
    let v1 = image(&server.url(&format!("{PINNED}_1.0_all.deb")));
    let v2 = image(&server.url(&format!("{PINNED}_2.0_all.deb")));
    let (victim, attacker) = (test_holder("victim"), test_holder("attacker"));
    installer
        .install(&v2, PullPolicy::IfNotPresent, &test_holder("installer"))
        .await
        .unwrap();
    installer.release(&test_holder("installer").owner);
    // As after a restart of systemk: the victim's unit says it runs the unpinned
    // package at 2.0.
    installer
        .adopt(&victim, &image(PINNED), &format!("{PINNED}=2.0"))
        .await;

    let err = installer
        .install(&v1, PullPolicy::Always, &attacker)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            Error::VersionHeld {
                downgrade: true,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("pod default/victim uses version 2.0"),
        "{text}"
    );
    assert_eq!(installed_version(PINNED).as_deref(), Some("2.0"));
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", PINNED])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2.0");
}

#[tokio::test]
async fn a_never_pod_with_an_absent_package_waits_with_err_image_never_pull_until_it_changes() {
    use crate::support::TestContext;
    use crate::support::engine::{Engine, container_status, unique_uid};

    let context = TestContext::new("pull_never");
    let engine = Engine::new(None).await;
    let package = "systemk-itest-never-pod";
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "never", "namespace": context.namespace(), "uid": unique_uid() },
        "spec": { "containers": [{
            "name": "main", "image": package, "imagePullPolicy": "Never",
            "command": ["/bin/true"],
        }] },
    }))
    .unwrap();
    let run = engine.run(pod);
    let (pass, status) = run.pass_report().await;
    let waiting = container_status(&status, "main")
        .and_then(|c| c.state.as_ref()?.waiting.clone())
        .unwrap_or_default();
    assert_eq!(waiting.reason.as_deref(), Some("ErrImageNeverPull"));
    assert_eq!(
        waiting.message.unwrap_or_default(),
        format!("Container image \"{package}\" is not present with pull policy of Never")
    );
    assert_eq!(pass.wake, None, "not retried until the pod changes");
    assert_eq!(run.units().await, []);
    assert_not_installed(&[package]);
    run.finish().await;
}

#[tokio::test]
async fn always_downloads_an_unpinned_url_again_and_if_not_present_does_not() {
    assert_not_installed(&[PINNED]);
    let _purge = Purge(vec![PINNED]);
    let (logs, _guard) = Logs::capture();
    let build = tempfile::tempdir().unwrap();
    let server = two_versions(build.path()).await;
    let cache = tempfile::tempdir().unwrap();
    let installer = installer_with(cache.path(), server.ca_pem(), InstallerConfig::default());
    let unpinned = image(&server.url(&format!("{PINNED}_1.0_all.deb")));
    let holder = test_holder("always");

    let first = installer
        .install(&unpinned, PullPolicy::IfNotPresent, &holder)
        .await
        .unwrap();
    assert!(first.newly_installed);
    assert_eq!(server.requests(), 1);
    installer
        .install(&unpinned, PullPolicy::IfNotPresent, &holder)
        .await
        .unwrap();
    assert_eq!(server.requests(), 1, "IfNotPresent takes the cached file");
    let again = installer
        .install(&unpinned, PullPolicy::Always, &holder)
        .await
        .unwrap();
    assert_eq!(server.requests(), 2, "Always asks the server again");
    assert_eq!(again.image_id, first.image_id, "same content, same image");
    assert!(!again.newly_installed);
    let text = logs.text();
    assert_eq!(text.matches(": installing ").count(), 1, "{text}");
}

#[tokio::test]
async fn a_pod_pinning_another_version_waits_with_err_image_pull_while_the_first_runs() {
    use crate::support::TestContext;
    use crate::support::engine::{Engine, container_status, unique_uid};

    assert_not_installed(&[PINNED]);
    let _purge = Purge(vec![PINNED]);
    let build = tempfile::tempdir().unwrap();
    let server = two_versions(build.path()).await;
    let context = TestContext::new("pull_two_versions");
    let engine = Engine::new(Some(server.ca_pem())).await;
    let pod = |name: &str, version: &str| {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "namespace": context.namespace(), "uid": unique_uid() },
            "spec": { "containers": [{
                "name": "main",
                "image": server.url(&format!("{PINNED}_{version}_all.deb")),
                "command": ["/bin/sleep", "600"],
            }] },
        }))
        .unwrap()
    };
    let first = engine.run(pod("first", "1.0"));
    first
        .until(Duration::from_secs(60), "first to run", |status| {
            container_status(status, "main")
                .and_then(|c| c.state.as_ref()?.running.as_ref())
                .map(|_| ())
        })
        .await;
    let second = engine.run(pod("second", "2.0"));
    let (pass, status) = second.pass_report().await;
    let waiting = container_status(&status, "main")
        .and_then(|c| c.state.as_ref()?.waiting.clone())
        .unwrap_or_default();
    let message = waiting.message.unwrap_or_default();
    assert_eq!(waiting.reason.as_deref(), Some("ErrImagePull"), "{message}");
    assert!(
        message.contains(&format!(
            "pod {}/first uses version 1.0",
            context.namespace()
        )),
        "{message}"
    );
    assert!(pass.wake.is_some(), "retried once the holder may be gone");
    assert_eq!(second.units().await, []);
    assert_eq!(installed_version(PINNED).as_deref(), Some("1.0"));
    // The first pod was not disturbed.
    let status = first.pass().await;
    assert!(
        container_status(&status, "main")
            .and_then(|c| c.state.as_ref()?.running.as_ref())
            .is_some()
    );
    second.finish().await;
    first.finish().await;
}
