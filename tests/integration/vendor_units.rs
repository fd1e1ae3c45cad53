//! Finding the vendor unit where Debian puts it (issue 11, item 1): real daemons whose
//! unit ships in another binary package of the same source run as pods. nginx's
//! `nginx.service` is `nginx-common`'s; postgresql's cluster unit is the template
//! `postgresql@.service` of `postgresql-common`, reached through `postgresql-15`, and
//! the pod names the cluster's instance. Each daemon is checked by talking to it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use systemk::package::{self, ImageRef};
use systemk::pod::{containers, read_vendor_unit};
use systemk::unit::UnitFile;

use crate::support::TestContext;
use crate::support::engine::{DEADLINE, Engine, INSTALL_DEADLINE, argv, unique_uid};
use crate::support::packages::InstallOnce;
use crate::support::packages::{Purge, known_to_dpkg};
use crate::support::wait_for;

fn pod(context: &TestContext, name: &str, image: &str, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": context.namespace(), "uid": unique_uid(),
            "annotations": annotations,
        },
        "spec": { "containers": [{ "name": "main", "image": image }] },
    }))
    .unwrap()
}

/// The response to `GET /` on `127.0.0.1:port`, if anything answers.
fn http_get(port: u16) -> Option<String> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn systemctl(verb: &str, unit: &str) -> String {
    let out = Command::new("systemctl")
        .args([verb, unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn nginx_runs_from_the_unit_nginx_common_ships() {
    let context = TestContext::new("vendor_nginx");
    // Another test run may have nginx installed or port 80 taken for a while.
    wait_for(INSTALL_DEADLINE, "nginx not to be installed", || async {
        (!known_to_dpkg("nginx") && !known_to_dpkg("nginx-common")).then_some(())
    })
    .await;
    wait_for(DEADLINE, "port 80 to be free", || async {
        TcpStream::connect("127.0.0.1:80").is_err().then_some(())
    })
    .await;
    let _purge = Purge(vec!["nginx", "nginx-common"]);
    let engine = Engine::new(None).await;
    let run = engine.run(pod(&context, "nginx", "nginx", json!({})));

    let pid = run.running_pid(INSTALL_DEADLINE, "main").await;
    // Type=forking with PIDFile=/run/nginx.pid: the main process is nginx's master.
    let argv0 = String::from_utf8_lossy(&argv(pid)[0]).into_owned();
    assert!(argv0.starts_with("nginx: master process"), "{argv0}");
    let unit = UnitFile::parse(&std::fs::read_to_string(run.unit_path("main")).unwrap()).unwrap();
    let exec = unit.get("Service", "ExecStart").unwrap();
    assert!(exec.contains("/usr/sbin/nginx"), "{exec}");
    assert!(exec.contains("daemon on; master_process on;"), "{exec}");

    let response = wait_for(DEADLINE, "nginx to answer on port 80", || async {
        http_get(80).filter(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;
    assert!(response.contains("Welcome to nginx"), "{response}");
    // systemk installed nginx and, with it, nginx-common: the unit the pod runs is off
    // on the host, so only the pod serves port 80.
    assert_eq!(systemctl("is-enabled", "nginx.service"), "disabled");
    assert_eq!(systemctl("is-active", "nginx.service"), "inactive");

    run.finish().await;
}

const POSTGRESQL_PACKAGES: [&str; 5] = [
    "postgresql",
    "postgresql-15",
    "postgresql-client-15",
    "postgresql-common",
    "postgresql-client-common",
];

#[tokio::test]
async fn postgresql_runs_the_cluster_the_annotation_names() {
    let context = TestContext::new("vendor_postgresql");
    // This image has postgresql and its cluster 15/main from the start; a host without
    // them gets them installed (postgresql-15's postinst creates the cluster) and purged.
    let fresh = !known_to_dpkg("postgresql");
    let _purge = fresh.then(|| Purge(POSTGRESQL_PACKAGES.to_vec()));
    let engine = Engine::new(None).await;
    let db = pod(
        &context,
        "db",
        "postgresql",
        json!({ "systemk.io/vendor-unit.main": "postgresql@15-main.service" }),
    );
    let run = engine.run(db);
    // What item 1 guarantees: the instance's unit, its specifiers expanded for 15-main.
    let path = run.unit_path("main");
    run.until(INSTALL_DEADLINE, "the unit to be written", |_| {
        path.exists().then_some(())
    })
    .await;
    let unit = UnitFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        unit.get("Service", "ExecStart"),
        Some("-/usr/bin/pg_ctlcluster --skip-systemctl-redirect 15-main start")
    );
    assert_eq!(
        unit.get("Service", "PIDFile"),
        Some("/run/postgresql/15-main.pid")
    );

    // And the daemon answers.
    let pid = run.running_pid(INSTALL_DEADLINE, "main").await;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        exe,
        std::path::Path::new("/usr/lib/postgresql/15/bin/postgres")
    );
    wait_for(DEADLINE, "pg_isready to accept", || async {
        Command::new("pg_isready")
            .args(["-q", "-h", "/run/postgresql", "-p", "5432"])
            .status()
            .ok()?
            .success()
            .then_some(())
    })
    .await;

    // systemk installed postgresql-common with the image: its umbrella postgresql.service,
    // which would start every cluster at the next boot beside the pod, is off on the host.
    if fresh {
        assert_eq!(systemctl("is-enabled", "postgresql.service"), "disabled");
    }

    // The package is there now: what systemk reads of it for pods that name no instance.
    let installed = engine
        .ctx()
        .installer
        .install_one(&"postgresql".parse::<ImageRef>().unwrap())
        .await
        .unwrap();
    assert!(
        installed
            .service_units
            .iter()
            .any(|u| u.name() == "postgresql@.service" && u.package == "postgresql-common"),
        "{:?}",
        installed.service_units
    );

    // Without the annotation: the template needs an instance, and the error names the
    // cluster that exists.
    let plain = pod(&context, "plain", "postgresql", json!({}));
    let err = read_vendor_unit(&plain, containers(&plain)[0].container, &installed).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("postgresql@.service"), "{text}");
    assert!(text.contains("postgresql@15-main.service"), "{text}");
    assert!(text.contains("systemk.io/vendor-unit."), "{text}");

    // Attacks: a unit of a package the image does not pull in, and instances that would
    // leave /etc/postgresql through %I or are no unit names, are refused before any unit
    // is written.
    for wanted in [
        "ssh.service",
        "systemd-journald.service",
        "postgresql@..-..-etc.service",
        "postgresql@15/main.service",
        "postgresql@-etc-shadow.service",
        "postgresql@15-main.service\nExecStartPre=/bin/sh",
    ] {
        let bad = pod(
            &context,
            "bad",
            "postgresql",
            json!({ "systemk.io/vendor-unit.main": wanted }),
        );
        let err = read_vendor_unit(&bad, containers(&bad)[0].container, &installed).unwrap_err();
        assert!(
            matches!(
                err,
                systemk::pod::Error::Image(
                    package::Error::NoSuchVendorUnit { .. }
                        | package::Error::InvalidVendorUnitName { .. }
                )
            ),
            "{wanted:?}: {err}"
        );
    }

    run.finish().await;
}
