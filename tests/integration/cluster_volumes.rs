//! End to end, volumes from the API: configMap, secret, projected (serviceAccountToken,
//! configMap, downwardAPI) and downwardAPI volumes of pods run by the `systemk` binary
//! against the test API server, driven with the real `kubectl`. What a container sees is
//! read inside its unit's own mount namespace (`nsenter`), where the volumes are bound
//! read-only in the kubelet's layout (`<key>` → `..data/<key>`), with `items`, modes and
//! the pod's user as owner. Updates of the objects (also across a restart of systemk) and
//! of the pod's labels change the files in place without restarting the container; a
//! missing configMap is a pod error until it appears, and a service account token is
//! renewed before it expires. Mount paths are under `/run`, which is private to the
//! test sandbox: systemd creates missing mount points on the real file system.

mod seen;

use std::time::Duration;

use serde_json::{Value, json};

use crate::apiserver::Config;
use crate::cluster::harness::{Cluster, in_mount_namespace, pod_manifest, running_and_ready};
use crate::support::engine::INSTALL_DEADLINE;
use crate::support::packages::{Purge, known_to_dpkg};
use crate::support::wait_for;
use seen::{jwt_claims, owner_and_mode, read_as, visible_entries};

/// systemk logs this when every source has synced and every pod had its first pass.
const SYNCED: &str = "all pods are in sync";

/// How long a changed object or label may take to reach the files (watch-based).
const UPDATE_DEADLINE: Duration = Duration::from_secs(60);

/// The apt image of the configMap test: a small package no other test installs, whose
/// `tini` stays in the foreground as the container's main process.
const APT_PACKAGE: &str = "tini";

/// The pod `name` of the cluster's namespace on its node, with the given spec fields.
fn pod(cluster: &Cluster, name: &str, spec: Value) -> Value {
    pod_manifest(name, cluster.namespace(), cluster.node(), spec)
}

/// A container `main` running `sh -c 'sleep infinity'` with the given volume mounts.
fn shell(mounts: Value) -> Value {
    json!({
        "name": "main",
        "image": "/bin/sh",
        "args": ["-c", "sleep infinity"],
        "volumeMounts": mounts,
    })
}

/// Waits until process `pid` reads `expected` at `path` (`None`: the file is gone).
async fn wait_for_file(cluster: &Cluster, pid: u32, path: &str, expected: Option<&str>) {
    let what = format!("{path} to read {expected:?}");
    cluster
        .wait_until(UPDATE_DEADLINE, &what, || async {
            (read_as(pid, path).await.as_deref() == expected).then_some(())
        })
        .await;
}

/// `kubectl patch` of configMap `name` with a JSON merge patch of its `data` (a `null`
/// value removes the key).
async fn patch_config_map(cluster: &Cluster, name: &str, data: Value) {
    let patch = json!({ "data": data }).to_string();
    let namespace = cluster.namespace();
    cluster
        .kubectl(&[
            "patch",
            "configmap",
            name,
            "-n",
            namespace,
            "--type",
            "merge",
            "-p",
            &patch,
        ])
        .await;
}

/// The restart count of the pod's first container.
fn restart_count(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]["restartCount"]
}

/// A map of the pod's metadata as the kubelet writes it into a downwardAPI file: sorted
/// `key="value"` lines joined with "\n", values quoted like Go's `%q` (which Rust's
/// `Debug` of an ASCII string matches).
fn downward_map(map: &Value) -> String {
    let map = map.as_object().expect("a map");
    let mut lines: Vec<String> = map
        .iter()
        .map(|(key, value)| format!("{key}={:?}", value.as_str().expect("a string value")))
        .collect();
    lines.sort();
    lines.join("\n")
}

#[tokio::test]
async fn config_map_volume_of_an_apt_pod_updates_in_place_also_across_a_restart() {
    // Another test run may have the package installed for a while: wait for it to go.
    wait_for(INSTALL_DEADLINE, "tini not to be installed", || async {
        (!known_to_dpkg(APT_PACKAGE)).then_some(())
    })
    .await;
    let _purge = Purge(vec![APT_PACKAGE]);
    let Some(mut cluster) = Cluster::new("config_map_volume_apt").await else {
        return;
    };
    let namespace = cluster.namespace().to_owned();
    cluster
        .kubectl(&[
            "create",
            "configmap",
            "app",
            "-n",
            &namespace,
            "--from-literal=greeting=hello",
            "--from-literal=color=blue",
        ])
        .await;
    cluster.start_agent().await;
    let manifest = pod(
        &cluster,
        "tini",
        json!({
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "main",
                "image": APT_PACKAGE,
                "command": ["/usr/bin/tini", "-s", "--", "/bin/sleep", "infinity"],
                "volumeMounts": [{"name": "config", "mountPath": "/tmp/app-config"}],
            }],
            "volumes": [{"name": "config", "configMap": {"name": "app"}}],
        }),
    );
    cluster.apply(&manifest.to_string()).await;
    cluster
        .wait_for_pod_within(
            "tini",
            "installed, Running and Ready",
            INSTALL_DEADLINE,
            running_and_ready,
        )
        .await;
    let unit = cluster.unit("tini", "main");
    let pid = cluster.unit_status(&unit).await.main_pid;
    assert_ne!(pid, 0);
    let greeting = "/tmp/app-config/greeting";
    assert_eq!(read_as(pid, greeting).await.as_deref(), Some("hello"));
    assert_eq!(
        read_as(pid, "/tmp/app-config/color").await.as_deref(),
        Some("blue")
    );
    let (_, link, _) = in_mount_namespace(pid, &["readlink", greeting]).await;
    assert_eq!(link.trim(), "..data/greeting", "the kubelet's layout");
    assert_eq!(owner_and_mode(pid, greeting).await, "0 0 644");

    let (wrote, _, stderr) =
        in_mount_namespace(pid, &["/bin/sh", "-c", "echo x > /tmp/app-config/planted"]).await;
    assert!(!wrote, "root wrote into the configMap volume");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    let (_, options, _) = in_mount_namespace(
        pid,
        &[
            "findmnt",
            "-n",
            "-o",
            "OPTIONS",
            "--mountpoint",
            "/tmp/app-config",
        ],
    )
    .await;
    assert!(
        options.trim().split(',').any(|o| o == "ro"),
        "mount options {options:?}"
    );

    patch_config_map(
        &cluster,
        "app",
        json!({"greeting": "bonjour", "color": null}),
    )
    .await;
    wait_for_file(&cluster, pid, greeting, Some("bonjour")).await;
    wait_for_file(&cluster, pid, "/tmp/app-config/color", None).await;
    assert_eq!(cluster.unit_status(&unit).await.main_pid, pid, "restarted");

    // Changed while systemk is down, then again once it is back.
    cluster.kill_agent().await;
    patch_config_map(
        &cluster,
        "app",
        json!({"greeting": "hallo", "size": "large"}),
    )
    .await;
    cluster.start_agent().await;
    cluster
        .wait_for_log(SYNCED, 2, Duration::from_secs(30))
        .await;
    wait_for_file(&cluster, pid, greeting, Some("hallo")).await;
    wait_for_file(&cluster, pid, "/tmp/app-config/size", Some("large")).await;
    patch_config_map(&cluster, "app", json!({"greeting": "ciao"})).await;
    wait_for_file(&cluster, pid, greeting, Some("ciao")).await;

    assert_eq!(cluster.unit_status(&unit).await.main_pid, pid, "restarted");
    let pod = cluster
        .wait_for_pod("tini", "still Running and Ready", running_and_ready)
        .await;
    assert_eq!(restart_count(&pod), 0);
    cluster.teardown().await;
}

#[tokio::test]
async fn secret_and_downward_api_volumes_with_items_modes_and_owner() {
    let Some(mut cluster) = Cluster::new("secret_downward_volumes").await else {
        return;
    };
    let namespace = cluster.namespace().to_owned();
    cluster
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            &namespace,
            "--from-literal=password=s3cret",
            "--from-literal=user=admin",
            "--from-literal=unlisted=x",
        ])
        .await;
    cluster.start_agent().await;
    let mut manifest = pod(
        &cluster,
        "dapi",
        json!({
            "automountServiceAccountToken": false,
            "securityContext": {"runAsUser": 65534},
            "containers": [{
                "name": "main",
                "image": "/bin/sh",
                "args": ["-c", "sleep infinity"],
                "resources": {"limits": {"memory": "64Mi"}},
                "volumeMounts": [
                    {"name": "creds", "mountPath": "/tmp/creds"},
                    {"name": "podinfo", "mountPath": "/tmp/podinfo"},
                    {"name": "maybe", "mountPath": "/tmp/maybe"},
                ],
            }],
            "volumes": [
                {"name": "creds", "secret": {
                    "secretName": "creds",
                    "defaultMode": 0o440,
                    "items": [
                        {"key": "password", "path": "auth/password", "mode": 0o400},
                        {"key": "user", "path": "user"},
                    ],
                }},
                {"name": "podinfo", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
                    {"path": "uid", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}},
                    {"path": "annotations", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.annotations"}},
                    {"path": "memory", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory"}},
                ]}},
                {"name": "maybe", "secret": {"secretName": "absent", "optional": true}},
            ],
        }),
    );
    manifest["metadata"]["labels"] = json!({"tier": "back", "app": "web"});
    manifest["metadata"]["annotations"] = json!({"team": "it's \"ops\""});
    cluster.apply(&manifest.to_string()).await;
    let pod = cluster
        .wait_for_pod("dapi", "Running and Ready", running_and_ready)
        .await;
    let unit = cluster.unit("dapi", "main");
    let pid = cluster.unit_status(&unit).await.main_pid;
    assert_ne!(pid, 0);

    let password = "/tmp/creds/auth/password";
    assert_eq!(read_as(pid, password).await.as_deref(), Some("s3cret"));
    assert_eq!(owner_and_mode(pid, password).await, "65534 65534 400");
    assert_eq!(
        read_as(pid, "/tmp/creds/user").await.as_deref(),
        Some("admin")
    );
    assert_eq!(
        owner_and_mode(pid, "/tmp/creds/user").await,
        "65534 65534 440"
    );
    assert_eq!(visible_entries(pid, "/tmp/creds").await, ["auth", "user"]);

    let labels = "/tmp/podinfo/labels";
    assert_eq!(
        read_as(pid, labels).await.as_deref(),
        Some("app=\"web\"\ntier=\"back\"")
    );
    assert_eq!(owner_and_mode(pid, labels).await, "65534 65534 644");
    // The kubelet adds annotations of its own (`kubernetes.io/config.source`): the file
    // holds the pod's, in order.
    let annotations = read_as(pid, "/tmp/podinfo/annotations")
        .await
        .expect("the annotations file");
    let lines: Vec<&str> = annotations.lines().collect();
    assert!(lines.is_sorted(), "{annotations}");
    for line in downward_map(&pod["metadata"]["annotations"]).lines() {
        assert!(lines.contains(&line), "{line} not in:\n{annotations}");
    }
    assert_eq!(
        read_as(pid, "/tmp/podinfo/name").await.as_deref(),
        Some("dapi")
    );
    assert_eq!(
        read_as(pid, "/tmp/podinfo/uid").await.as_deref(),
        pod["metadata"]["uid"].as_str()
    );
    assert_eq!(
        read_as(pid, "/tmp/podinfo/memory").await.as_deref(),
        Some("67108864")
    );
    assert_eq!(
        visible_entries(pid, "/tmp/maybe").await,
        Vec::<String>::new()
    );

    cluster
        .kubectl(&[
            "label",
            "pod",
            "dapi",
            "-n",
            &namespace,
            "tier=front",
            "--overwrite",
        ])
        .await;
    wait_for_file(&cluster, pid, labels, Some("app=\"web\"\ntier=\"front\"")).await;
    assert_eq!(cluster.unit_status(&unit).await.main_pid, pid, "restarted");
    let pod = cluster
        .wait_for_pod("dapi", "still Running and Ready", running_and_ready)
        .await;
    assert_eq!(restart_count(&pod), 0);
    cluster.teardown().await;
}

#[tokio::test]
async fn service_account_token_is_projected() {
    let Some(mut cluster) = Cluster::new("service_account_token").await else {
        return;
    };
    let namespace = cluster.namespace().to_owned();
    cluster.start_agent().await;
    // No `automountServiceAccountToken: false`: the API server adds `kube-api-access-*`.
    let manifest = pod(
        &cluster,
        "token",
        json!({
            "containers": [shell(json!([{"name": "vault", "mountPath": "/tmp/vault"}]))],
            "volumes": [{"name": "vault", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "token"}},
            ]}}],
        }),
    );
    cluster.apply(&manifest.to_string()).await;
    let pod = cluster
        .wait_for_pod("token", "Running and Ready", running_and_ready)
        .await;
    let pid = cluster
        .unit_status(&cluster.unit("token", "main"))
        .await
        .main_pid;
    assert_ne!(pid, 0);

    let account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let token = read_as(pid, &format!("{account_dir}/token"))
        .await
        .expect("the service account token");
    let claims = jwt_claims(&token);
    assert!(
        claims["aud"].as_array().is_some_and(|a| !a.is_empty()),
        "{claims}"
    );
    let bound = &claims["kubernetes.io"];
    assert_eq!(bound["namespace"], namespace.as_str(), "{claims}");
    assert_eq!(bound["pod"]["name"], "token", "{claims}");
    assert_eq!(bound["pod"]["uid"], pod["metadata"]["uid"], "{claims}");
    assert_eq!(bound["serviceaccount"]["name"], "default", "{claims}");
    assert_eq!(
        owner_and_mode(pid, &format!("{account_dir}/token")).await,
        "0 0 644"
    );

    let root_ca = cluster
        .get(&["configmap", "kube-root-ca.crt", "-n", &namespace])
        .await
        .expect("the kube-root-ca.crt configMap");
    assert_eq!(
        read_as(pid, &format!("{account_dir}/ca.crt"))
            .await
            .as_deref(),
        root_ca["data"]["ca.crt"].as_str()
    );
    assert_eq!(
        read_as(pid, &format!("{account_dir}/namespace"))
            .await
            .as_deref(),
        Some(namespace.as_str())
    );

    let vault = read_as(pid, "/tmp/vault/token")
        .await
        .expect("the vault token");
    let claims = jwt_claims(&vault);
    assert!(
        claims["aud"]
            .as_array()
            .is_some_and(|a| a.iter().any(|aud| aud == "vault")),
        "{claims}"
    );
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 600, "{claims}");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "token", "{claims}");
    cluster.teardown().await;
}

#[tokio::test]
async fn missing_config_map_is_a_clear_pod_error_then_recovers() {
    let Some(mut cluster) = Cluster::new("missing_config_map").await else {
        return;
    };
    let namespace = cluster.namespace().to_owned();
    cluster.start_agent().await;
    // The container's own runAsGroup is the group of the files. Debian's `users` (100):
    // systemd 252 refuses to start a unit whose Group= has no entry in the group database.
    let mut container = shell(json!([{"name": "config", "mountPath": "/tmp/late"}]));
    container["securityContext"] = json!({"runAsUser": 65534, "runAsGroup": 100});
    let manifest = pod(
        &cluster,
        "late",
        json!({
            "automountServiceAccountToken": false,
            "containers": [container],
            "volumes": [{"name": "config", "configMap": {"name": "late-config"}}],
        }),
    );
    cluster.apply(&manifest.to_string()).await;
    let pod = cluster
        .wait_for_pod("late", "waiting with CreateContainerConfigError", |pod| {
            pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        })
        .await;
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(
        waiting["message"]
            .as_str()
            .is_some_and(|m| m.contains("late-config")),
        "{waiting}"
    );
    assert_ne!(pod["status"]["phase"], "Running", "{pod:#}");

    cluster
        .kubectl(&[
            "create",
            "configmap",
            "late-config",
            "-n",
            &namespace,
            "--from-literal=mode=fast",
        ])
        .await;
    // The retry back-off after the failed attempts bounds how long this takes (~40 s).
    cluster
        .wait_for_pod("late", "Running and Ready", running_and_ready)
        .await;
    let pid = cluster
        .unit_status(&cluster.unit("late", "main"))
        .await
        .main_pid;
    assert_eq!(
        read_as(pid, "/tmp/late/mode").await.as_deref(),
        Some("fast")
    );
    assert_eq!(owner_and_mode(pid, "/tmp/late/mode").await, "65534 100 644");
    cluster.teardown().await;
}

#[tokio::test]
async fn service_account_tokens_are_renewed_before_they_expire() {
    // Tokens live 20 s here (the API server caps them, as --service-account-max-token-
    // expiration does), so the renewal at 80 % of their life comes after about 16 s.
    let config = Config {
        max_token_seconds: Some(20),
        ..Config::default()
    };
    let Some(mut cluster) = Cluster::with_config("token_renewal", config).await else {
        return;
    };
    cluster.start_agent().await;
    cluster
        .apply(&pod(&cluster, "renew", json!({"containers": [shell(json!([]))]})).to_string())
        .await;
    cluster
        .wait_for_pod("renew", "Running and Ready", running_and_ready)
        .await;
    let unit = cluster.unit("renew", "main");
    let pid = cluster.unit_status(&unit).await.main_pid;
    let path = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    let first = read_as(pid, path).await.expect("the service account token");
    let first_claims = jwt_claims(&first);
    assert_eq!(
        first_claims["exp"].as_i64().unwrap() - first_claims["iat"].as_i64().unwrap(),
        20,
        "{first_claims}"
    );
    let renewed = cluster
        .wait_until(
            Duration::from_secs(40),
            "the token to be renewed",
            || async { read_as(pid, path).await.filter(|token| *token != first) },
        )
        .await;
    let renewed_claims = jwt_claims(&renewed);
    assert!(
        renewed_claims["exp"].as_i64() > first_claims["exp"].as_i64(),
        "{renewed_claims}"
    );
    assert!(
        renewed_claims["iat"].as_i64() < first_claims["exp"].as_i64(),
        "renewed only after the old token expired: {renewed_claims}"
    );
    assert_eq!(cluster.unit_status(&unit).await.main_pid, pid, "restarted");
    cluster.teardown().await;
}

#[tokio::test]
async fn two_nodes_run_only_their_own_pods_and_objects_when_the_server_ignores_field_selectors() {
    let config = Config {
        ignore_field_selectors: true,
        ..Config::default()
    };
    let Some(mut cluster) = Cluster::with_config("foreign_objects", config).await else {
        return;
    };
    let namespace = cluster.namespace().to_owned();
    let other = cluster.start_other_node();
    // Everything exists before the agents list it, so their first lists already carry
    // the other node's pod and configMap.
    for (config_map, key) in [("settings-a", "a=from-a"), ("settings-b", "b=from-b")] {
        let literal = format!("--from-literal={key}");
        cluster
            .kubectl(&[
                "create",
                "configmap",
                config_map,
                "-n",
                &namespace,
                &literal,
            ])
            .await;
    }
    let with_settings = |config_map: &str| {
        json!({
            "containers": [shell(json!([{"name": "settings", "mountPath": "/tmp/settings"}]))],
            "volumes": [{"name": "settings", "configMap": {"name": config_map}}],
        })
    };
    let mine = pod(&cluster, "mine", with_settings("settings-a"));
    let theirs = pod_manifest(
        "theirs",
        &namespace,
        other.name(),
        with_settings("settings-b"),
    );
    cluster.apply(&mine.to_string()).await;
    cluster.apply(&theirs.to_string()).await;
    cluster.start_agent().await;

    for name in ["mine", "theirs"] {
        cluster
            .wait_for_pod(name, "Running and Ready", running_and_ready)
            .await;
    }
    let (my_unit, their_unit) = (cluster.unit("mine", "main"), cluster.unit("theirs", "main"));
    let first_dir = std::path::Path::new(crate::cluster::harness::UNIT_DIR);
    let each_runs_its_own = || {
        assert!(first_dir.join(my_unit.as_str()).exists());
        assert!(
            !first_dir.join(their_unit.as_str()).exists(),
            "ran the other node's pod"
        );
        assert!(other.unit_dir().join(their_unit.as_str()).exists());
        assert!(
            !other.unit_dir().join(my_unit.as_str()).exists(),
            "ran the first node's pod"
        );
    };
    each_runs_its_own();
    let pods_ignored = "sent pods bound to other nodes";
    let objects_ignored = "sent other objects on this object's watch";
    for needle in [pods_ignored, objects_ignored] {
        cluster.wait_for_log(needle, 1, UPDATE_DEADLINE).await;
        wait_for(UPDATE_DEADLINE, "the other node to ignore them", || async {
            other.log().contains(needle).then_some(())
        })
        .await;
    }
    // Both agents have seen the other node's pod and configMap by now.
    each_runs_its_own();
    for (unit, key, value) in [(&my_unit, "a", "from-a"), (&their_unit, "b", "from-b")] {
        let pid = cluster.unit_status(unit).await.main_pid;
        assert_eq!(visible_entries(pid, "/tmp/settings").await, [key]);
        let path = format!("/tmp/settings/{key}");
        assert_eq!(read_as(pid, &path).await.as_deref(), Some(value));
    }
    other.teardown().await;
    cluster.teardown().await;
}
