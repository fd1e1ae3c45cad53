use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Taint};
use serde_json::json;

use super::*;

/// Admission next to `others`, each counted as active.
fn admit(pod: &Pod, is_static: bool, others: &[&Pod], node: &NodeView) -> Result<(), Rejection> {
    super::admit(pod, is_static, &NodeUsage::of(others.iter().copied()), node)
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": name},
        "spec": spec,
    }))
    .unwrap()
}

fn node() -> NodeView {
    NodeView {
        name: "node-1".to_owned(),
        labels: BTreeMap::from([
            ("kubernetes.io/hostname".to_owned(), "node-1".to_owned()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            ("zone".to_owned(), "a".to_owned()),
            ("generation".to_owned(), "5".to_owned()),
        ]),
        taints: vec![Taint {
            key: "virtual-kubelet.io/provider".to_owned(),
            value: Some("systemk".to_owned()),
            effect: "NoSchedule".to_owned(),
            time_added: None,
        }],
        allocatable: Allocatable {
            pods: 3,
            cpu_millis: 2000,
            memory_bytes: 1 << 30,
            ephemeral_bytes: 10 << 30,
        },
        from_api: true,
    }
}

fn container(resources: serde_json::Value) -> serde_json::Value {
    json!({"name": "c", "image": "/bin/sleep", "resources": resources})
}

fn requesting(name: &str, cpu: &str, memory: &str) -> Pod {
    pod(
        name,
        json!({"containers": [container(json!({"requests": {"cpu": cpu, "memory": memory}}))]}),
    )
}

fn with_ports(name: &str, ports: serde_json::Value) -> Pod {
    pod(
        name,
        json!({"containers": [{"name": "c", "image": "/bin/sleep", "ports": ports}]}),
    )
}

fn reason(result: Result<(), Rejection>) -> &'static str {
    result.err().map_or("admitted", |r| r.reason)
}

#[test]
fn a_plain_pod_is_admitted_even_with_the_nodes_own_noschedule_taint() {
    let plain = pod("plain", json!({"containers": [container(json!({}))]}));
    assert_eq!(admit(&plain, false, &[], &node()), Ok(()));
}

#[test]
fn another_os_is_refused_by_label_and_by_field() {
    let mut labelled = pod("w", json!({"containers": [container(json!({}))]}));
    labelled.metadata.labels = Some(BTreeMap::from([(
        "kubernetes.io/os".to_owned(),
        "windows".to_owned(),
    )]));
    assert_eq!(
        reason(admit(&labelled, false, &[], &node())),
        "PodOSSelectorNodeLabelDoesNotMatch"
    );
    let field = pod(
        "w",
        json!({"os": {"name": "windows"}, "containers": [container(json!({}))]}),
    );
    let rejected = admit(&field, true, &[], &node()).unwrap_err();
    assert_eq!(rejected.reason, "PodOSNotSupported");
    assert_eq!(
        rejected.message,
        "Failed to admit pod as the OS field doesn't match node OS"
    );
    let linux = pod(
        "l",
        json!({"os": {"name": "linux"}, "containers": [container(json!({}))]}),
    );
    assert_eq!(admit(&linux, false, &[], &node()), Ok(()));
}

#[test]
fn more_pods_than_max_pods_is_out_of_pods() {
    let others = [
        requesting("a", "0", "0"),
        requesting("b", "0", "0"),
        requesting("c", "0", "0"),
    ];
    let refs: Vec<&Pod> = others.iter().collect();
    let rejected = admit(&requesting("d", "0", "0"), false, &refs, &node()).unwrap_err();
    assert_eq!(rejected.reason, "OutOfpods");
    assert_eq!(
        rejected.message,
        "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3"
    );
    assert_eq!(
        admit(&requesting("d", "0", "0"), false, &refs[..2], &node()),
        Ok(())
    );
}

#[test]
fn requests_above_what_is_left_are_out_of_cpu_or_memory() {
    // The scheduler's own case: 8 cpus asked of a node with 2, none used.
    let huge = requesting("huge", "8", "1Mi");
    let rejected = admit(&huge, false, &[], &node()).unwrap_err();
    assert_eq!(rejected.reason, "OutOfcpu");
    assert_eq!(
        rejected.message,
        "Node didn't have enough resource: cpu, requested: 8000, used: 0, capacity: 2000"
    );
    let first = requesting("first", "1500m", "512Mi");
    let second = requesting("second", "600m", "1Mi");
    assert_eq!(
        reason(admit(&second, false, &[&first], &node())),
        "OutOfcpu"
    );
    let fits = requesting("fits", "500m", "512Mi");
    assert_eq!(admit(&fits, false, &[&first], &node()), Ok(()));
    let memory = requesting("memory", "100m", "600Mi");
    let rejected = admit(&memory, false, &[&first], &node()).unwrap_err();
    assert_eq!(rejected.reason, "OutOfmemory");
    assert!(
        rejected
            .message
            .contains("used: 536870912, capacity: 1073741824")
    );
}

#[test]
fn a_pod_requesting_nothing_fits_a_full_node() {
    let full = requesting("full", "2", "1Gi");
    let nothing = pod("nothing", json!({"containers": [container(json!({}))]}));
    assert_eq!(admit(&nothing, false, &[&full], &node()), Ok(()));
}

#[test]
fn limits_count_as_requests_and_overhead_and_init_containers_as_the_scheduler_counts() {
    let limited = pod(
        "limited",
        json!({"containers": [container(json!({"limits": {"cpu": "3"}}))]}),
    );
    assert_eq!(reason(admit(&limited, false, &[], &node())), "OutOfcpu");
    let overhead = pod(
        "overhead",
        json!({"overhead": {"cpu": "1500m"}, "containers": [container(json!({"requests": {"cpu": "600m"}}))]}),
    );
    assert_eq!(reason(admit(&overhead, false, &[], &node())), "OutOfcpu");
    // An init container larger than the app containers counts alone...
    let init = pod(
        "init",
        json!({
            "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "2100m"}}}],
            "containers": [container(json!({"requests": {"cpu": "100m"}}))],
        }),
    );
    assert_eq!(reason(admit(&init, false, &[], &node())), "OutOfcpu");
    // ...and a sidecar runs next to the app containers and the later init containers.
    let sidecar = pod(
        "sidecar",
        json!({
            "initContainers": [
                {"name": "s", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "i", "image": "x", "resources": {"requests": {"cpu": "1100m"}}},
            ],
            "containers": [container(json!({"requests": {"cpu": "500m"}}))],
        }),
    );
    assert_eq!(reason(admit(&sidecar, false, &[], &node())), "OutOfcpu");
    let spec: k8s_openapi::api::core::v1::PodSpec =
        serde_json::from_value(json!({
            "initContainers": [
                {"name": "s", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "i", "image": "x", "resources": {"requests": {"cpu": "500m"}}},
            ],
            "containers": [container(json!({"requests": {"cpu": "200m"}}))],
        }))
        .unwrap();
    // max(200m + 1, 1 + 500m) = 1500m.
    let small = Allocatable {
        cpu_millis: 1499,
        ..node().allocatable
    };
    assert!(resources::fits(&spec, 0, resources::Requests::default(), &small).is_err());
    let enough = Allocatable {
        cpu_millis: 1500,
        ..node().allocatable
    };
    assert!(resources::fits(&spec, 0, resources::Requests::default(), &enough).is_ok());
}

#[test]
fn node_selector_and_required_affinity_must_match_the_node() {
    let selector = |zone: &str| {
        pod(
            "s",
            json!({"nodeSelector": {"zone": zone}, "containers": [container(json!({}))]}),
        )
    };
    assert_eq!(admit(&selector("a"), false, &[], &node()), Ok(()));
    let rejected = admit(&selector("b"), true, &[], &node()).unwrap_err();
    assert_eq!(rejected.reason, "NodeAffinity");
    assert!(
        rejected.message.starts_with(
            "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
        ),
        "{}",
        rejected.message
    );
    assert!(rejected.message.contains("zone=b"), "{}", rejected.message);

    let affinity = |terms: serde_json::Value| {
        pod(
            "a",
            json!({
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}},
                "containers": [container(json!({}))],
            }),
        )
    };
    let cases = [
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]),
            false,
        ),
        (
            json!([{"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "generation", "operator": "Gt", "values": ["4"]}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "generation", "operator": "Lt", "values": ["5"]}]}]),
            false,
        ),
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["1"]}]}]),
            false,
        ),
        // Terms are ORed, requirements in a term ANDed.
        (
            json!([
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "gpu", "operator": "DoesNotExist"}]},
            ]),
            true,
        ),
        (
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]),
            true,
        ),
        (
            json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-1"]}]}]),
            false,
        ),
        (
            json!([{"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["node-1"]}]}]),
            false,
        ),
        // Nothing in a term, no terms, a term that does not parse: no match.
        (json!([{}]), false),
        (json!([]), false),
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": []}]}]),
            false,
        ),
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "Exists", "values": ["a"]}]}]),
            false,
        ),
    ];
    for (terms, admitted) in cases {
        let result = admit(&affinity(terms.clone()), false, &[], &node());
        assert_eq!(result.is_ok(), admitted, "{terms}: {result:?}");
        if let Err(rejection) = result {
            assert_eq!(rejection.reason, "NodeAffinity");
        }
    }
}

#[test]
fn a_port_another_pod_holds_is_refused_whichever_field_names_it() {
    let web = with_ports("web", json!([{"containerPort": 8080}]));
    // Same port as containerPort, as hostPort, and through a sidecar.
    let same = with_ports("same", json!([{"containerPort": 8080}]));
    let rejected = admit(&same, true, &[&web], &node()).unwrap_err();
    assert_eq!(rejected.reason, "NodePorts");
    assert_eq!(
        rejected.message,
        "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports \
         (TCP port 8080 on 0.0.0.0 is held by pod default/web: TCP port 8080 on 0.0.0.0)"
    );
    let host_port = with_ports("hp", json!([{"containerPort": 80, "hostPort": 8080}]));
    assert_eq!(
        reason(admit(&host_port, false, &[&web], &node())),
        "NodePorts"
    );
    let sidecar = pod(
        "sc",
        json!({
            "initContainers": [{"name": "s", "image": "x", "restartPolicy": "Always", "ports": [{"containerPort": 8080}]}],
            "containers": [container(json!({}))],
        }),
    );
    assert_eq!(
        reason(admit(&sidecar, false, &[&web], &node())),
        "NodePorts"
    );
    // The held port of a sidecar counts too.
    assert_eq!(
        reason(admit(&same, false, &[&sidecar], &node())),
        "NodePorts"
    );
}

#[test]
fn ports_differ_by_protocol_and_by_specific_address() {
    let udp = with_ports("udp", json!([{"containerPort": 53, "protocol": "UDP"}]));
    let tcp = with_ports("tcp", json!([{"containerPort": 53}]));
    assert_eq!(admit(&tcp, false, &[&udp], &node()), Ok(()));
    let one = with_ports("one", json!([{"containerPort": 80, "hostIP": "127.0.0.1"}]));
    let two = with_ports("two", json!([{"containerPort": 80, "hostIP": "127.0.0.2"}]));
    assert_eq!(admit(&two, false, &[&one], &node()), Ok(()));
    let again = with_ports(
        "again",
        json!([{"containerPort": 80, "hostIP": "127.0.0.1"}]),
    );
    assert_eq!(reason(admit(&again, false, &[&one], &node())), "NodePorts");
    // Every address (none, 0.0.0.0 or ::) clashes with any address.
    for all in [
        json!({"containerPort": 80}),
        json!({"containerPort": 80, "hostIP": "0.0.0.0"}),
        json!({"containerPort": 80, "hostIP": "::"}),
    ] {
        let wildcard = with_ports("all", json!([all]));
        assert_eq!(
            reason(admit(&wildcard, false, &[&one], &node())),
            "NodePorts"
        );
        assert_eq!(
            reason(admit(&one, false, &[&wildcard], &node())),
            "NodePorts"
        );
    }
}

fn tainted(effect: &str) -> NodeView {
    let mut view = node();
    view.taints.push(Taint {
        key: "dedicated".to_owned(),
        value: Some("db".to_owned()),
        effect: effect.to_owned(),
        time_added: None,
    });
    view
}

#[test]
fn an_untolerated_noexecute_taint_refuses_api_pods_but_not_static_ones() {
    let bare = pod("bare", json!({"containers": [container(json!({}))]}));
    let rejected = admit(&bare, false, &[], &tainted("NoExecute")).unwrap_err();
    assert_eq!(rejected.reason, "TaintToleration");
    assert_eq!(
        rejected.message,
        "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate \
         (untolerated taint dedicated=db:NoExecute)"
    );
    assert_eq!(admit(&bare, true, &[], &tainted("NoExecute")), Ok(()));
    // NoSchedule is the scheduler's: a pod bound by hand runs.
    assert_eq!(admit(&bare, false, &[], &tainted("NoSchedule")), Ok(()));
}

#[test]
fn tolerations_match_as_the_kubelets() {
    let tolerating = |toleration: serde_json::Value| {
        pod(
            "t",
            json!({"tolerations": [toleration], "containers": [container(json!({}))]}),
        )
    };
    let cases = [
        (
            json!({"key": "dedicated", "value": "db", "effect": "NoExecute"}),
            true,
        ),
        (
            json!({"key": "dedicated", "operator": "Equal", "value": "db"}),
            true,
        ),
        (json!({"key": "dedicated", "value": "web"}), false),
        (json!({"key": "dedicated", "operator": "Exists"}), true),
        (json!({"operator": "Exists"}), true),
        (
            json!({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}),
            false,
        ),
        (json!({"key": "other", "operator": "Exists"}), false),
        (
            json!({"key": "dedicated", "operator": "Gt", "value": "1"}),
            false,
        ),
    ];
    for (toleration, admitted) in cases {
        let result = admit(
            &tolerating(toleration.clone()),
            false,
            &[],
            &tainted("NoExecute"),
        );
        assert_eq!(result.is_ok(), admitted, "{toleration}: {result:?}");
    }
}

#[test]
fn the_first_failure_in_the_kubelets_order_is_the_reason() {
    // Too much cpu, a wrong selector, a held port and an untolerated taint: resources first.
    let web = with_ports("web", json!([{"containerPort": 80}]));
    let everything = pod(
        "all",
        json!({
            "nodeSelector": {"zone": "b"},
            "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}], "resources": {"requests": {"cpu": "9"}}}],
        }),
    );
    let view = tainted("NoExecute");
    assert_eq!(
        reason(admit(&everything, false, &[&web], &view)),
        "OutOfcpu"
    );
    let mut no_cpu = everything.clone();
    no_cpu.spec.as_mut().unwrap().containers[0].resources = None;
    assert_eq!(
        reason(admit(&no_cpu, false, &[&web], &view)),
        "NodeAffinity"
    );
    no_cpu.spec.as_mut().unwrap().node_selector = None;
    assert_eq!(reason(admit(&no_cpu, false, &[&web], &view)), "NodePorts");
    assert_eq!(reason(admit(&no_cpu, false, &[], &view)), "TaintToleration");
}
