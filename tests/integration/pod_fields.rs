//! Issue 12, point 10, end to end: nothing is silently ignored. Against the booted systemd
//! (a static pod) and the test API server (API pods): a pod with fields systemk ignores
//! runs and is told so once (a warn log line for a static pod; exactly one
//! `UnsupportedField` Warning event for an API pod, not repeated after systemk restarts);
//! a pod with an unsupported volume kind is `Failed` at admission with a clear message and
//! no unit; the namespace's Services reach a container's environment file as the kubelet
//! gives them, `enableServiceLinks: false` leaves them out (but `default/kubernetes`), and
//! a Service whose port name would write a line of its own into the environment file is
//! left out (the attack).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::harness::{Cluster, UNIT_DIR, pod_manifest};
use crate::static_pods::machine::{Machine, phase};
use crate::support::TestContext;

/// A sleeping API pod with `container` fields added to its one container and `fields` to
/// its spec.
fn sleeping(cluster: &Cluster, name: &str, container: Value, fields: Value) -> String {
    let mut main = json!({"name": "main", "image": "/bin/sleep", "args": ["infinity"]});
    for (key, value) in container.as_object().unwrap() {
        main[key] = value.clone();
    }
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
        "containers": [main],
    });
    for (key, value) in fields.as_object().unwrap() {
        spec[key] = value.clone();
    }
    pod_manifest(name, cluster.namespace(), cluster.node(), spec).to_string()
}

fn service(namespace: &str, name: &str, ip: &str, ports: Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": ports},
    })
    .to_string()
}

fn pod_phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

/// The environment file of the pod's `main` container.
async fn env_file(cluster: &Cluster, pod: &str) -> String {
    let object = cluster.pod(pod).await.unwrap();
    let uid = object["metadata"]["uid"].as_str().unwrap();
    let path = cluster
        .runtime_dir()
        .join(format!("pods/{uid}/env/main.env"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The `UnsupportedField` events of `pod`.
async fn unsupported_field_events(cluster: &Cluster, pod: &str) -> Vec<Value> {
    let events = cluster
        .kubectl(&["get", "events", "-n", cluster.namespace(), "-o", "json"])
        .await;
    let events: Value = serde_json::from_str(&events).unwrap();
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == "UnsupportedField")
        .cloned()
        .collect()
}

#[tokio::test]
async fn issue_12_api_pods_ignored_fields_refused_volumes_and_service_variables() {
    let Some(mut cluster) = Cluster::new("pod_fields").await else {
        return;
    };
    let namespace = cluster.namespace().to_owned();
    cluster
        .apply(&service(
            "default",
            "kubernetes",
            "10.43.0.1",
            json!([{"name": "https", "port": 443}]),
        ))
        .await;
    cluster
        .apply(&service(
            &namespace,
            "redis-primary",
            "10.43.0.7",
            json!([{"port": 6379}, {"name": "metrics", "port": 9121, "protocol": "TCP"}]),
        ))
        .await;
    cluster
        .apply(&service(
            &namespace,
            "headless",
            "None",
            json!([{"port": 80}]),
        ))
        .await;
    // The attack: a port name no real API server allows, which would be a line of its own.
    let evil = service(
        &namespace,
        "evil",
        "10.43.0.8",
        json!([{"name": "x\nLD_PRELOAD=/tmp/evil.so", "port": 80}]),
    );
    let evil_file = cluster.state_dir().join("evil-service.json");
    std::fs::write(&evil_file, &evil).unwrap();
    let (evil_stored, _, stderr) = cluster
        .try_kubectl(&["create", "-f", evil_file.to_str().unwrap()])
        .await;
    cluster.start_agent().await;

    // Ignored fields: the pod runs, and is told once.
    let probed = sleeping(
        &cluster,
        "probed",
        json!({"stdinOnce": true, "tty": true}),
        json!({"hostAliases": [{"ip": "10.0.0.9", "hostnames": ["db"]}]}),
    );
    cluster.apply(&probed).await;
    let unlinked = sleeping(
        &cluster,
        "unlinked",
        json!({}),
        json!({"enableServiceLinks": false}),
    );
    cluster.apply(&unlinked).await;
    for pod in ["probed", "unlinked"] {
        cluster
            .wait_for_pod(pod, "running", |pod| pod_phase(pod) == "Running")
            .await;
    }
    let events = cluster
        .wait_until(
            Duration::from_secs(15),
            "the UnsupportedField event",
            || async {
                let events = unsupported_field_events(&cluster, "probed").await;
                (!events.is_empty()).then_some(events)
            },
        )
        .await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(
        events[0]["count"].as_i64().unwrap_or(1),
        1,
        "{:#}",
        events[0]
    );
    let message = events[0]["message"].as_str().unwrap();
    for field in [
        "spec.hostAliases (containers use the node's /etc/hosts)",
        "spec.containers{main}.stdinOnce (",
        "spec.containers{main}.tty (",
    ] {
        assert!(message.contains(field), "{field} not in {message}");
    }
    assert!(
        unsupported_field_events(&cluster, "unlinked")
            .await
            .is_empty()
    );

    // Service variables as the kubelet's; the pod's own would win.
    let env = env_file(&cluster, "probed").await;
    for line in [
        "REDIS_PRIMARY_SERVICE_HOST=\"10.43.0.7\"",
        "REDIS_PRIMARY_SERVICE_PORT=\"6379\"",
        "REDIS_PRIMARY_SERVICE_PORT_METRICS=\"9121\"",
        "REDIS_PRIMARY_PORT=\"tcp://10.43.0.7:6379\"",
        "REDIS_PRIMARY_PORT_9121_TCP=\"tcp://10.43.0.7:9121\"",
        "REDIS_PRIMARY_PORT_9121_TCP_ADDR=\"10.43.0.7\"",
        "KUBERNETES_PORT_443_TCP_PROTO=\"tcp\"",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in\n{env}");
    }
    assert!(!env.contains("HEADLESS_"), "{env}");
    assert!(
        !env.contains("LD_PRELOAD") && !env.contains("EVIL_"),
        "{env}"
    );
    if !evil_stored {
        eprintln!("the test API server refused the evil Service: {stderr}");
    }
    let env = env_file(&cluster, "unlinked").await;
    assert!(!env.contains("REDIS_PRIMARY"), "{env}");
    assert!(
        env.contains("KUBERNETES_PORT=\"tcp://10.43.0.1:443\""),
        "{env}"
    );

    // An unsupported volume kind: refused at admission, never Pending, no unit.
    let claim = sleeping(
        &cluster,
        "claim",
        json!({"volumeMounts": [{"name": "data", "mountPath": "/srv"}]}),
        json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}),
    );
    cluster.apply(&claim).await;
    let pod = cluster
        .wait_for_pod("claim", "Failed at admission", |pod| {
            pod_phase(pod) == "Failed"
        })
        .await;
    assert_eq!(pod["status"]["reason"], "UnsupportedPodSpec", "{pod:#}");
    assert_eq!(
        pod["status"]["message"],
        "Pod was rejected: systemk cannot honour spec.volumes{data} (volume data of kind \
         persistentVolumeClaim is not supported yet)"
    );
    let unit = Path::new(UNIT_DIR).join(cluster.unit("claim", "main").as_str());
    assert!(!unit.exists(), "{} was written", unit.display());

    // After a restart the running pod is not told again.
    cluster.kill_agent().await;
    cluster.start_agent().await;
    cluster
        .wait_for_log("all pods are in sync", 2, Duration::from_secs(30))
        .await;
    assert_eq!(unsupported_field_events(&cluster, "probed").await.len(), 1);
    cluster.teardown().await;
}

#[tokio::test]
async fn issue_12_a_static_pod_with_ignored_fields_runs_and_is_warned_in_the_log() {
    let context = TestContext::new("static_pod_fields");
    let machine = Machine::new(&context).await;
    machine.write_manifest(
        "aliased.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: aliased\n  namespace: {ns}\nspec:\n  \
         hostAliases:\n    - ip: 10.0.0.9\n      hostnames: [db]\n  containers:\n    - name: main\n      \
         image: /bin/sleep\n      args: [\"infinity\"]\n      tty: true\n",
    );
    let agent = machine.start_agent();
    machine
        .wait_running(Duration::from_secs(5), &machine.unit("aliased", "main"))
        .await;
    machine
        .wait_for_log(
            Duration::from_secs(5),
            0,
            1,
            &[
                "WARN",
                "pod asks for fields systemk ignores",
                "spec.hostAliases",
                "spec.containers{main}.tty",
            ],
        )
        .await;
    let pod = machine
        .wait_pod(Duration::from_secs(5), "aliased", "Running", |pod| {
            phase(pod) == "Running"
        })
        .await;
    assert_eq!(phase(&pod), "Running");
    agent.terminate().await;
    machine.clean_up().await;
}
