use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap()
}

fn main_with(fields: serde_json::Value) -> serde_json::Value {
    let mut container = json!({"name": "main", "image": "/bin/sleep"});
    container
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    json!({"containers": [container]})
}

fn fields(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.field.as_str()).collect()
}

#[test]
fn a_plain_pod_has_nothing_to_say() {
    let review = review(&pod(json!({
        "containers": [{"name": "main", "image": "nginx", "ports": [{"containerPort": 80}]}],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": true,
        "hostNetwork": true,
        "restartPolicy": "Always",
        "volumes": [{"name": "data", "emptyDir": {}}],
    })));
    assert_eq!(review, Review::default());
    assert_eq!(review.refusal(), None);
    assert_eq!(review.warning(), None);
}

#[test]
fn each_ignored_pod_field_is_named_with_what_systemk_does() {
    let review = review(&pod(json!({
        "containers": [{"name": "main", "image": "/bin/sleep"}],
        "dnsConfig": {"nameservers": ["1.1.1.1"]},
        "dnsPolicy": "None",
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
        "hostNetwork": false,
        "hostname": "web-0",
        "imagePullSecrets": [{"name": "registry"}],
        "resources": {"limits": {"cpu": "1"}},
        "setHostnameAsFQDN": true,
        "shareProcessNamespace": true,
        "subdomain": "web",
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
    })));
    assert_eq!(review.refused, []);
    assert_eq!(
        fields(&review.ignored),
        [
            "spec.dnsConfig",
            "spec.dnsPolicy",
            "spec.ephemeralContainers",
            "spec.hostAliases",
            "spec.hostNetwork",
            "spec.hostname",
            "spec.imagePullSecrets",
            "spec.resources",
            "spec.setHostnameAsFQDN",
            "spec.shareProcessNamespace",
            "spec.subdomain",
            "spec.volumes{scratch}.emptyDir.sizeLimit",
        ]
    );
    let warning = review.warning().unwrap();
    assert!(
        warning.starts_with("systemk ignores spec.dnsConfig (pods use the node's /etc/resolv.conf"),
        "{warning}"
    );
    assert!(
        warning.contains("spec.hostAliases (containers use the node's /etc/hosts)"),
        "{warning}"
    );
}

#[test]
fn each_ignored_container_field_is_named_with_its_container() {
    let review = review(&pod(main_with(json!({
        "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
        "securityContext": {"readOnlyRootFilesystem": false},
        "stdin": true,
        "stdinOnce": true,
        "tty": true,
    }))));
    assert_eq!(review.refused, []);
    assert_eq!(
        fields(&review.ignored),
        [
            "spec.containers{main}.resizePolicy",
            "spec.containers{main}.securityContext.readOnlyRootFilesystem",
            "spec.containers{main}.stdinOnce",
            "spec.containers{main}.tty",
        ]
    );
}

#[test]
fn defaults_and_honoured_values_are_not_warned_about() {
    let review = review(&pod(json!({
        "containers": [{
            "name": "main",
            "image": "/bin/sleep",
            "stdin": true,
            "tty": false,
            "securityContext": {"readOnlyRootFilesystem": true},
        }],
        "dnsPolicy": "Default",
        "setHostnameAsFQDN": false,
        "shareProcessNamespace": false,
        "hostname": "",
    })));
    assert_eq!(review, Review::default());
}

#[test]
fn unsupported_volume_kinds_are_refused() {
    let review = review(&pod(json!({
        "containers": [{"name": "main", "image": "/bin/sleep"}],
        "volumes": [
            {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "share", "nfs": {"server": "nfs", "path": "/srv"}},
            {"name": "ram", "emptyDir": {"medium": "Memory"}},
            {"name": "fine", "configMap": {"name": "settings"}},
            {"name": "bundle", "projected": {"sources": [{"clusterTrustBundle": {"path": "ca.pem", "name": "ca"}}]}},
        ],
    })));
    assert_eq!(
        fields(&review.refused),
        [
            "spec.volumes{bundle}.projected.clusterTrustBundle",
            "spec.volumes{claim}",
            "spec.volumes{share}",
            "spec.volumes{ram}"
        ]
    );
    let refusal = review.refusal().unwrap();
    assert!(
        refusal.contains(
            "spec.volumes{claim} (volume claim of kind persistentVolumeClaim is not supported yet)"
        ),
        "{refusal}"
    );
    assert!(refusal.contains("volume share of kind nfs"), "{refusal}");
}

#[test]
fn pod_fields_systemk_cannot_run_with_are_refused() {
    let review = review(&pod(json!({
        "containers": [{
            "name": "main",
            "image": "/bin/sleep",
            "volumeDevices": [{"name": "disk", "devicePath": "/dev/xvda"}],
        }],
        "initContainers": [{"name": "setup", "image": "/bin/true", "restartPolicy": "Never"}],
        "resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu"}],
        "runtimeClassName": "kata",
    })));
    assert_eq!(
        fields(&review.refused),
        [
            "spec.resourceClaims",
            "spec.runtimeClassName",
            "spec.initContainers{setup}.restartPolicy",
            "spec.containers{main}.volumeDevices",
        ]
    );
}

#[test]
fn a_sidecar_may_have_probes_and_hooks_and_only_init_containers_a_restart_policy() {
    let good = review(&pod(json!({
        "containers": [{"name": "main", "image": "/bin/sleep"}],
        "initContainers": [{
            "name": "proxy",
            "image": "/bin/sleep",
            "restartPolicy": "Always",
            "startupProbe": {"exec": {"command": ["/bin/true"]}},
            "readinessProbe": {"exec": {"command": ["/bin/true"]}},
            "livenessProbe": {"exec": {"command": ["/bin/true"]}},
            "lifecycle": {
                "postStart": {"exec": {"command": ["/bin/true"]}},
                "preStop": {"sleep": {"seconds": 1}},
            },
        }],
    })));
    assert_eq!((good.refused, good.ignored), (vec![], vec![]));
    let bad = review(&pod(json!({
        "containers": [{"name": "main", "image": "/bin/sleep", "restartPolicy": "Always"}],
        "initContainers": [{
            "name": "proxy",
            "image": "/bin/sleep",
            "restartPolicy": "Always",
            "startupProbe": {"exec": {"command": []}},
        }],
    })));
    assert_eq!(
        fields(&bad.refused),
        [
            "spec.containers{main}.restartPolicy",
            "spec.initContainers{proxy}.startupProbe.exec.command",
        ]
    );
}

#[test]
fn the_unit_layers_refusals_are_made_at_admission() {
    let review = review(&pod(json!({
        "containers": [{
            "name": "main",
            "image": "/bin/sleep",
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}},
            "volumeMounts": [
                {"name": "data", "mountPath": "/srv", "subPathExpr": "$(POD)"},
                {"name": "data", "mountPath": "/mnt", "mountPropagation": "Bidirectional"},
                {"name": "data", "mountPath": "/opt", "readOnly": true, "recursiveReadOnly": "Enabled"},
            ],
        }],
        "initContainers": [{"name": "setup", "image": "/bin/true"}],
        "securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        "volumes": [{"name": "data", "emptyDir": {}}],
    })));
    assert_eq!(
        fields(&review.refused),
        [
            "spec.initContainers{setup}.securityContext",
            "spec.containers{main}.securityContext",
            "spec.containers{main}.volumeMounts{data}",
            "spec.containers{main}.volumeMounts{data}",
            "spec.containers{main}.volumeMounts{data}",
        ]
    );
    assert!(
        review.refused[0].why.contains("sysctls"),
        "{:?}",
        review.refused
    );
}

#[test]
fn probes_run_for_app_containers_and_bad_ones_are_refused() {
    let good = review(&pod(main_with(json!({
        "livenessProbe": {"exec": {"command": ["true"]}},
        "readinessProbe": {"tcpSocket": {"port": 80}},
        "startupProbe": {"httpGet": {"port": "web"}},
        "ports": [{"name": "web", "containerPort": 8080}],
    }))));
    assert_eq!((good.refused, good.ignored), (vec![], vec![]));
    let bad = review(&pod(json!({
        "containers": [{
            "name": "main",
            "image": "/bin/sleep",
            "readinessProbe": {"httpGet": {"port": "nope"}},
        }],
        "initContainers": [{
            "name": "setup",
            "image": "/bin/true",
            "livenessProbe": {"exec": {"command": ["true"]}},
        }],
    })));
    assert_eq!(
        fields(&bad.refused),
        [
            "spec.initContainers{setup}.livenessProbe",
            "spec.containers{main}.readinessProbe.httpGet.port",
        ]
    );
}

#[test]
fn hooks_run_for_app_containers_and_bad_ones_are_refused() {
    let good = review(&pod(main_with(json!({
        "lifecycle": {
            "postStart": {"exec": {"command": ["/bin/true"]}},
            "preStop": {"sleep": {"seconds": 5}},
        },
    }))));
    assert_eq!((good.refused, good.ignored), (vec![], vec![]));
    let bad = review(&pod(json!({
        "containers": [{
            "name": "main",
            "image": "/bin/sleep",
            "lifecycle": {"preStop": {"tcpSocket": {"port": 80}}},
        }],
        "initContainers": [{
            "name": "setup",
            "image": "/bin/true",
            "lifecycle": {"postStart": {"exec": {"command": ["true"]}}},
        }],
    })));
    assert_eq!(
        fields(&bad.refused),
        [
            "spec.initContainers{setup}.lifecycle",
            "spec.containers{main}.lifecycle.preStop.tcpSocket",
        ]
    );
}

#[test]
fn attack_a_probe_header_cannot_smuggle_a_request() {
    let review = review(&pod(main_with(json!({
        "readinessProbe": {"httpGet": {
            "port": 80,
            "httpHeaders": [{"name": "X", "value": "a\r\nHost: metadata.internal"}],
        }},
    }))));
    assert_eq!(
        fields(&review.refused),
        ["spec.containers{main}.readinessProbe.httpGet.httpHeaders"]
    );
}

/// README's "Pod fields" section names every field the table above knows.
#[test]
fn the_readme_names_every_field() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n### Pod fields\n")
        .nth(1)
        .expect("README has a Pod fields section")
        .split("\n### ")
        .next()
        .unwrap();
    let units = include_str!("../../../docs/units.md");
    for (kind, names) in catalog() {
        let text = if kind.ends_with("SecurityContext") {
            units
        } else {
            section
        };
        for name in names {
            // `capabilities.add`, `windowsOptions.runAsUserName` name their field too.
            assert!(
                text.contains(&format!("`{name}`")) || text.contains(&format!("`{name}.")),
                "{kind}.{name} is not in the table"
            );
        }
    }
}

#[test]
fn a_line_break_in_a_name_stays_on_one_line() {
    let review = review(&pod(json!({
        "containers": [{"name": "main\nFORGED line", "image": "/bin/sleep", "tty": true}],
    })));
    let warning = review.warning().unwrap();
    assert!(!warning.contains('\n'), "{warning}");
    assert!(warning.contains("main\\nFORGED"), "{warning}");
}
