//! End to end as a node of a cluster: the `systemk` binary against the test API server,
//! driven with the real `kubectl`, running pods as units of the sandbox's systemd. Node
//! registration, its events and lease, a pod's life (apply → Running and Ready, systemk killed and
//! restarted without restarting the container, delete → units gone, then the API object),
//! static pods mirrored in the API, an API server outage, and a container's environment
//! from a secret, a configMap, the pod's fields and `$(VAR)` expansion. Volumes from the
//! API (configMap, secret, projected, downwardAPI) are tested in `cluster_volumes.rs`.

pub mod harness;
pub mod other_node;

use std::path::Path;
use std::time::Duration;

use harness::{Cluster, UNIT_DIR, condition, pod_manifest, running_and_ready, sleeper};
use serde_json::json;
use systemk::systemd::ActiveState;

use crate::support::wait_for;

/// systemk logs this when every source has synced and every pod had its first pass.
const SYNCED: &str = "all pods are in sync";

#[tokio::test]
async fn node_registers_ready_and_renews_its_lease() {
    let Some(mut cluster) = Cluster::new("node_registers_ready").await else {
        return;
    };
    cluster.start_agent().await;
    let node_name = cluster.node().to_owned();
    let node = wait_for(Duration::from_secs(30), "the node to be Ready", || async {
        let node = cluster.get(&["node", &node_name]).await?;
        (condition(&node, "Ready") == Some("True")).then_some(node)
    })
    .await;
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], node_name.as_str());
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["node.kubernetes.io/instance-type"], "systemk");
    assert!(labels["kubernetes.io/arch"].as_str().is_some());
    let taint = &node["spec"]["taints"][0];
    assert_eq!(taint["key"], "virtual-kubelet.io/provider");
    assert_eq!(taint["value"], "systemk");
    assert_eq!(taint["effect"], "NoSchedule");
    let status = &node["status"];
    assert_eq!(status["capacity"]["pods"], "110");
    assert!(status["allocatable"]["memory"].as_str().is_some());
    assert!(status["capacity"]["ephemeral-storage"].as_str().is_some());
    let info = &status["nodeInfo"];
    assert!(
        info["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("systemd://"),
        "{info}"
    );
    assert_eq!(info["operatingSystem"], "linux");
    // The Kubernetes version the API types target, as virtual kubelets report; systemk's
    // own version is in an annotation.
    assert_eq!(info["kubeletVersion"], "v1.33.0");
    assert_eq!(
        node["metadata"]["annotations"]["systemk.io/version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        status["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        cluster.kubelet_port()
    );
    assert_eq!(status["addresses"][0]["type"], "InternalIP");
    assert_eq!(status["addresses"][0]["address"], "127.0.0.1");
    for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert!(condition(&node, pressure).is_some(), "{pressure} missing");
    }
    let events = wait_for(
        Duration::from_secs(20),
        "the Starting and NodeReady events on the Node",
        || async {
            let reasons = node_event_reasons(&cluster, &node_name).await;
            ["Starting", "NodeReady", "NodeHasSufficientMemory"]
                .iter()
                .all(|wanted| reasons.iter().any(|(reason, _)| reason == wanted))
                .then_some(reasons)
        },
    )
    .await;
    assert!(
        events.contains(&(
            "NodeHasNoDiskPressure".to_owned(),
            format!("Node {node_name} status is now: NodeHasNoDiskPressure")
        )),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|(reason, _)| reason == "NodeNotReady"),
        "{events:?}"
    );

    let lease_args = ["lease", node_name.as_str(), "-n", "kube-node-lease"];
    let lease = wait_for(Duration::from_secs(20), "the node lease", || async {
        cluster.get(&lease_args).await
    })
    .await;
    assert_eq!(lease["spec"]["holderIdentity"], node_name.as_str());
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    let first = lease["spec"]["renewTime"].clone();
    wait_for(
        Duration::from_secs(25),
        "the lease to be renewed",
        || async {
            let lease = cluster.get(&lease_args).await?;
            (lease["spec"]["renewTime"] != first).then_some(())
        },
    )
    .await;
    // Read once, to create it; renewed since from the lease last written, as the kubelet.
    let requests = |verb: &str, code: &str| {
        format!("systemk_api_requests_total{{verb=\"{verb}\",resource=\"leases\",code=\"{code}\"}}")
    };
    let metrics = own_metrics(&cluster, &node_name).await;
    assert_eq!(count(&metrics, &requests("get", "404")), 1, "{metrics}");
    assert_eq!(count(&metrics, &requests("get", "200")), 0, "{metrics}");
    assert!(
        count(&metrics, &requests("update", "200")) >= 1,
        "{metrics}"
    );

    // Someone else writes the lease: the next renewal's replace is a 409, and the lease
    // is read again and renewed, the other writer's change kept.
    cluster
        .kubectl(&[
            "annotate",
            "lease",
            &node_name,
            "-n",
            "kube-node-lease",
            "other=writer",
        ])
        .await;
    let annotated = cluster.get(&lease_args).await.unwrap();
    wait_for(
        Duration::from_secs(25),
        "the lease renewed after another writer",
        || async {
            let lease = cluster.get(&lease_args).await?;
            (lease["spec"]["renewTime"] != annotated["spec"]["renewTime"]).then_some(lease)
        },
    )
    .await;
    let lease = cluster.get(&lease_args).await.unwrap();
    assert_eq!(lease["metadata"]["annotations"]["other"], "writer");
    let metrics = own_metrics(&cluster, &node_name).await;
    assert_eq!(count(&metrics, &requests("update", "409")), 1, "{metrics}");
    assert_eq!(count(&metrics, &requests("get", "200")), 1, "{metrics}");
    cluster.teardown().await;
}

/// systemk's own `/metrics`, read as `kubectl get --raw` through the API server's
/// `nodes/proxy`.
async fn own_metrics(cluster: &Cluster, node: &str) -> String {
    cluster
        .kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{node}/proxy/metrics"),
        ])
        .await
}

/// The value of one series of a Prometheus exposition; 0 when absent.
fn count(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn pod_runs_survives_a_restart_of_systemk_and_is_deleted() {
    let Some(mut cluster) = Cluster::new("pod_lifecycle").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&sleeper("sleeper", &namespace, &node)).await;
    let pod = cluster
        .wait_for_pod("sleeper", "Running and Ready", running_and_ready)
        .await;
    assert_eq!(pod["status"]["hostIP"], "127.0.0.1");
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
    let unit = cluster.unit("sleeper", "main");
    let before = cluster.unit_status(&unit).await;
    assert_eq!(before.active_state, ActiveState::Active);
    assert_ne!(before.main_pid, 0);
    wait_for(Duration::from_secs(10), "a Started event", || async {
        let events = cluster.kubectl(&["get", "events", "-n", &namespace]).await;
        events.contains("Started").then_some(())
    })
    .await;
    let describe = cluster
        .kubectl(&["describe", "pod", "sleeper", "-n", &namespace])
        .await;
    for reason in ["Pulling", "Pulled", "Created", "Started"] {
        assert!(
            describe.contains(reason),
            "no {reason} event in:\n{describe}"
        );
    }

    let pulling_before = pulling_events(&cluster).await;

    cluster.kill_agent().await;
    cluster.start_agent().await;
    cluster
        .wait_for_log(SYNCED, 2, Duration::from_secs(30))
        .await;
    let after = cluster.unit_status(&unit).await;
    assert_eq!(
        after.main_pid, before.main_pid,
        "the container was restarted"
    );
    assert_eq!(after.active_state, ActiveState::Active);
    let pod = cluster
        .wait_for_pod("sleeper", "still Running and Ready", running_and_ready)
        .await;
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(
        pulling_events(&cluster).await,
        pulling_before,
        "a restart of systemk installed the image again, as events tell"
    );

    cluster
        .kubectl(&["delete", "pod", "sleeper", "-n", &namespace, "--wait=false"])
        .await;
    let unit_file = Path::new(UNIT_DIR).join(unit.as_str());
    wait_for(Duration::from_secs(30), "the unit file to go", || async {
        (!unit_file.exists()).then_some(())
    })
    .await;
    wait_for(
        Duration::from_secs(30),
        "the pod to leave the API",
        || async { cluster.pod("sleeper").await.is_none().then_some(()) },
    )
    .await;
    cluster.teardown().await;
}

/// The reasons and messages of the events about the Node `node_name` (in `default`, as
/// the kubelet's node events).
pub(crate) async fn node_event_reasons(
    cluster: &Cluster,
    node_name: &str,
) -> Vec<(String, String)> {
    let Some(list) = cluster.get(&["events", "-n", "default"]).await else {
        return Vec::new();
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| {
            event["involvedObject"]["kind"] == "Node"
                && event["involvedObject"]["name"] == node_name
        })
        .map(|event| {
            let text = |field: &str| event[field].as_str().unwrap_or_default().to_owned();
            (text("reason"), text("message"))
        })
        .collect()
}

/// How many events of the cluster's namespace say an image is being installed.
async fn pulling_events(cluster: &Cluster) -> usize {
    let events = cluster
        .kubectl(&["get", "events", "-n", cluster.namespace()])
        .await;
    events
        .lines()
        .filter(|line| line.contains("Pulling"))
        .count()
}

#[tokio::test]
async fn static_pod_is_mirrored_in_the_api() {
    let Some(mut cluster) = Cluster::new("static_pod_mirror").await else {
        return;
    };
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let manifest = cluster.manifests().join("web.yaml");
    std::fs::write(&manifest, sleeper("web", &namespace, &node)).unwrap();
    cluster.start_agent().await;
    let mirror_name = format!("web-{node}");
    let mirror = cluster
        .wait_for_pod(
            &mirror_name,
            "mirrored, Running and Ready",
            running_and_ready,
        )
        .await;
    let annotations = &mirror["metadata"]["annotations"];
    assert!(
        annotations["kubernetes.io/config.mirror"]
            .as_str()
            .is_some()
    );
    assert_eq!(mirror["metadata"]["ownerReferences"][0]["kind"], "Node");

    std::fs::remove_file(&manifest).unwrap();
    wait_for(Duration::from_secs(30), "the mirror pod to go", || async {
        cluster.pod(&mirror_name).await.is_none().then_some(())
    })
    .await;
    cluster.teardown().await;
}

#[tokio::test]
async fn pods_keep_running_through_an_api_outage_and_the_node_recovers() {
    let Some(mut cluster) = Cluster::new("api_outage").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&sleeper("sleeper", &namespace, &node)).await;
    cluster
        .wait_for_pod("sleeper", "Running and Ready", running_and_ready)
        .await;
    let unit = cluster.unit("sleeper", "main");
    let before = cluster.unit_status(&unit).await;
    let lease_args = ["lease", node.as_str(), "-n", "kube-node-lease"];
    let renewed_before = cluster.get(&lease_args).await.unwrap()["spec"]["renewTime"].clone();

    cluster.server.stop().await;
    // The outage itself is what is tested: 30 s, most of a lease period.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let during = cluster.unit_status(&unit).await;
    assert_eq!(during.active_state, ActiveState::Active);
    assert_eq!(during.main_pid, before.main_pid);
    cluster.server.resume().await;

    wait_for(
        Duration::from_secs(30),
        "the lease to be renewed again",
        || async {
            let lease = cluster.get(&lease_args).await?;
            (lease["spec"]["renewTime"] != renewed_before).then_some(())
        },
    )
    .await;
    let node_object = cluster.get(&["node", &node]).await.unwrap();
    assert_eq!(condition(&node_object, "Ready"), Some("True"));
    let pod = cluster
        .wait_for_pod("sleeper", "Running after the outage", running_and_ready)
        .await;
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(cluster.unit_status(&unit).await.main_pid, before.main_pid);
    assert!(!cluster.log().contains("panicked"), "{}", cluster.log());
    cluster.teardown().await;
}

#[tokio::test]
async fn static_pods_run_while_the_api_server_is_down_at_start() {
    let Some(mut cluster) = Cluster::new("static_pods_api_down").await else {
        return;
    };
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    std::fs::write(
        cluster.manifests().join("web.yaml"),
        sleeper("web", &namespace, &node),
    )
    .unwrap();
    cluster.server.stop().await;
    cluster.start_agent().await;
    let mirror_name = format!("web-{node}");
    let unit = cluster.unit(&mirror_name, "main");
    wait_for(Duration::from_secs(30), "the static pod to run", || async {
        let status = cluster.unit_status(&unit).await;
        (status.active_state == ActiveState::Active).then_some(())
    })
    .await;
    assert!(
        !cluster.log().contains(SYNCED),
        "synced before the API answered"
    );
    cluster.server.resume().await;
    cluster
        .wait_for_pod(
            &mirror_name,
            "mirrored once the API is back",
            running_and_ready,
        )
        .await;
    cluster
        .wait_for_log(SYNCED, 1, Duration::from_secs(30))
        .await;
    cluster.teardown().await;
}

#[tokio::test]
async fn units_of_pods_deleted_while_systemk_was_down_are_removed() {
    let Some(mut cluster) = Cluster::new("orphans_removed").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    cluster.apply(&sleeper("sleeper", &namespace, &node)).await;
    cluster
        .wait_for_pod("sleeper", "Running and Ready", running_and_ready)
        .await;
    cluster.kill_agent().await;
    cluster
        .kubectl(&[
            "delete",
            "pod",
            "sleeper",
            "-n",
            &namespace,
            "--grace-period=0",
            "--force",
        ])
        .await;
    let unit = cluster.unit("sleeper", "main");
    assert_eq!(
        cluster.unit_status(&unit).await.active_state,
        ActiveState::Active,
        "pods outlive systemk"
    );
    cluster.start_agent().await;
    let unit_file = Path::new(UNIT_DIR).join(unit.as_str());
    wait_for(
        Duration::from_secs(30),
        "the orphan's unit to go",
        || async { (!unit_file.exists()).then_some(()) },
    )
    .await;
    cluster.teardown().await;
}

#[tokio::test]
async fn deletion_honours_the_grace_period_it_asks_for() {
    let Some(mut cluster) = Cluster::new("deletion_grace").await else {
        return;
    };
    cluster.start_agent().await;
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    // A shell that ignores SIGTERM: only the SIGKILL after the grace period stops it.
    let stubborn = pod_manifest(
        "stubborn",
        &namespace,
        &node,
        json!({
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 60,
            "containers": [{
                "name": "main",
                "image": "/bin/sh",
                "args": ["-c", "trap '' TERM; while :; do sleep 1; done"],
            }],
        }),
    )
    .to_string();
    cluster.apply(&stubborn).await;
    cluster
        .wait_for_pod("stubborn", "Running and Ready", running_and_ready)
        .await;
    let started = std::time::Instant::now();
    cluster
        .kubectl(&[
            "delete",
            "pod",
            "stubborn",
            "-n",
            &namespace,
            "--grace-period=2",
            "--wait=false",
        ])
        .await;
    let unit_file = Path::new(UNIT_DIR).join(cluster.unit("stubborn", "main").as_str());
    wait_for(Duration::from_secs(20), "the unit to go", || async {
        (!unit_file.exists()).then_some(())
    })
    .await;
    // 2 s of grace, then SIGKILL; the spec's 60 s (or 2 s plus a margin) would be slower.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stopping took {:?}",
        started.elapsed()
    );
    wait_for(
        Duration::from_secs(10),
        "the pod to leave the API",
        || async { cluster.pod("stubborn").await.is_none().then_some(()) },
    )
    .await;
    cluster.teardown().await;
}

#[tokio::test]
async fn env_comes_from_secrets_config_maps_and_fields_and_expands_in_args() {
    let Some(mut cluster) = Cluster::new("env_from_api").await else {
        return;
    };
    let (namespace, node) = (cluster.namespace().to_owned(), cluster.node().to_owned());
    let ns = ["-n", namespace.as_str()];
    cluster
        .kubectl(
            &[
                &[
                    "create",
                    "secret",
                    "generic",
                    "creds",
                    "--from-literal=password=s3cret",
                ][..],
                &ns,
            ]
            .concat(),
        )
        .await;
    cluster
        .kubectl(
            &[
                &[
                    "create",
                    "configmap",
                    "settings",
                    "--from-literal=mode=fast",
                    "--from-literal=level=3",
                ][..],
                &ns,
            ]
            .concat(),
        )
        .await;
    cluster.start_agent().await;
    cluster
        .apply(
            &pod_manifest(
                "env",
                &namespace,
                &node,
                json!({
                    "automountServiceAccountToken": false,
                    "containers": [{
                        "name": "main",
                        "image": "/bin/sh",
                        "args": ["-c", "sleep infinity; : $(POD_NAME) $$(POD_NAME) $(CFG_mode)"],
                        "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "settings"}}],
                        "env": [
                            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                            {"name": "GREETING", "value": "hello $(POD_NAME) at $(KUBERNETES_SERVICE_PORT)"},
                        ],
                    }],
                }),
            )
            .to_string(),
        )
        .await;
    cluster
        .wait_for_pod("env", "Running and Ready", running_and_ready)
        .await;
    let status = cluster.unit_status(&cluster.unit("env", "main")).await;
    let proc_file = |name: &str| {
        let bytes = std::fs::read(format!("/proc/{}/{name}", status.main_pid)).unwrap();
        String::from_utf8(bytes)
            .unwrap()
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let environ = proc_file("environ");
    let url = url::Url::parse(cluster.url()).unwrap();
    let expected = [
        "PASSWORD=s3cret".to_owned(),
        "POD_NAME=env".to_owned(),
        "HOST_IP=127.0.0.1".to_owned(),
        "CFG_mode=fast".to_owned(),
        "CFG_level=3".to_owned(),
        format!("KUBERNETES_SERVICE_HOST={}", url.host_str().unwrap()),
        format!("KUBERNETES_SERVICE_PORT={}", url.port().unwrap()),
        format!("GREETING=hello env at {}", url.port().unwrap()),
    ];
    for variable in &expected {
        assert!(environ.contains(variable), "{variable} not in {environ:?}");
    }
    assert_eq!(
        proc_file("cmdline"),
        ["/bin/sh", "-c", "sleep infinity; : env $(POD_NAME) fast"]
    );
    cluster.teardown().await;
}
