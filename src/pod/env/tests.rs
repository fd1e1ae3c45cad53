use super::*;
use crate::pod::desired::CONFIG_SOURCE_ANNOTATION;
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, PodSpec, SecretEnvSource,
    SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn pod(source: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            uid: Some("u-1".into()),
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            annotations: Some(BTreeMap::from([(
                CONFIG_SOURCE_ANNOTATION.into(),
                source.into(),
            )])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-a".into()),
            service_account_name: Some("robot".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn facts() -> EnvFacts {
    EnvFacts {
        host_ip: Some("10.0.0.5".parse().unwrap()),
        pod_ip: Some("10.0.0.5".parse().unwrap()),
        node_name: "node-a".into(),
        kubernetes_service: Some(("10.0.0.1".into(), 6443)),
        services: Vec::new(),
        allocatable: NodeAllocatable::default(),
    }
}

fn objects() -> ReferencedObjects {
    ReferencedObjects {
        config_maps: BTreeMap::from([
            (
                "settings".into(),
                Some(
                    BTreeMap::from([
                        ("mode".into(), "fast".into()),
                        ("level".into(), "3".into()),
                        ("bad-name".into(), "x".into()),
                    ])
                    .into(),
                ),
            ),
            ("gone".into(), None),
        ]),
        secrets: BTreeMap::from([
            (
                "creds".into(),
                Some(BTreeMap::from([
                    ("password".into(), b"s3cret".to_vec()),
                    ("binary".into(), vec![0xff, 0xfe]),
                    ("nul".into(), b"a\0b".to_vec()),
                ])),
            ),
            ("missing".into(), None),
        ]),
    }
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(source),
    }
}

fn field(name: &str, path: &str) -> EnvVar {
    from(
        name,
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}

fn cm_key(name: &str, cm: &str, key: &str, optional: Option<bool>) -> EnvVar {
    from(
        name,
        EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: cm.into(),
                key: key.into(),
                optional,
            }),
            ..Default::default()
        },
    )
}

fn secret_key(name: &str, secret: &str, key: &str, optional: Option<bool>) -> EnvVar {
    from(
        name,
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional,
            }),
            ..Default::default()
        },
    )
}

fn container(env: Vec<EnvVar>) -> Container {
    Container {
        name: "app".into(),
        env: Some(env),
        ..Default::default()
    }
}

/// A node without an API server, where static pods get no service variables.
fn no_api() -> EnvFacts {
    EnvFacts {
        kubernetes_service: None,
        ..facts()
    }
}

/// Resolves with the API for pods from the API, without for static pods.
fn resolve(pod: &Pod, c: &Container) -> Result<Vec<(String, String)>> {
    let from_file = pod.metadata.annotations.as_ref().unwrap()[CONFIG_SOURCE_ANNOTATION] == "file";
    let facts = if from_file { no_api() } else { facts() };
    let resolved = resolve_container(pod, c, Some(&objects()), &facts)?;
    assert!(resolved.env_from.is_none());
    Ok(resolved
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            assert!(v.value_from.is_none());
            (v.name, v.value.unwrap_or_default())
        })
        .collect())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn why(err: Error) -> String {
    match err {
        Error::EnvConfig { why, .. } => why,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn plain_values_follow_the_service_variables_for_api_pods() {
    let env = resolve(&pod("api"), &container(vec![plain("A", "1")])).unwrap();
    assert_eq!(
        env,
        pairs(&[
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "6443"),
            ("A", "1"),
        ])
    );
}

#[test]
fn static_pods_get_the_service_variables_too() {
    let c = container(vec![plain("A", "1")]);
    let resolved = resolve_container(&pod("file"), &c, None, &facts()).unwrap();
    let env: Vec<(String, String)> = resolved
        .env
        .unwrap()
        .into_iter()
        .map(|v| (v.name, v.value.unwrap_or_default()))
        .collect();
    assert_eq!(
        env,
        pairs(&[
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "6443"),
            ("A", "1"),
        ])
    );
}

fn with_services(links: Option<bool>) -> (Pod, EnvFacts) {
    let mut pod = pod("api");
    pod.spec.as_mut().unwrap().enable_service_links = links;
    let link = |namespace: &str, name: &str, ip: &str, port: i32| ServiceLink {
        namespace: namespace.into(),
        name: name.into(),
        cluster_ip: ip.into(),
        ports: vec![ServiceLinkPort {
            name: "http".into(),
            port,
            protocol: "TCP".into(),
        }],
    };
    let facts = EnvFacts {
        services: vec![
            link("default", "kubernetes", "10.43.0.1", 443),
            link("shop", "redis", "10.43.0.9", 6379),
        ],
        ..facts()
    };
    (pod, facts)
}

#[test]
fn namespace_services_are_variables_the_pods_own_win_and_expand() {
    let (pod, facts) = with_services(None);
    let c = container(vec![
        plain("REDIS_SERVICE_PORT", "7000"),
        plain("URL", "redis://$(REDIS_SERVICE_HOST):$(REDIS_SERVICE_PORT)"),
    ]);
    let env = resolve_container(&pod, &c, None, &facts)
        .unwrap()
        .env
        .unwrap();
    let value = |name: &str| {
        env.iter()
            .find(|v| v.name == name)
            .and_then(|v| v.value.clone())
    };
    assert_eq!(value("REDIS_SERVICE_HOST").as_deref(), Some("10.43.0.9"));
    assert_eq!(value("REDIS_SERVICE_PORT").as_deref(), Some("7000"));
    assert_eq!(value("URL").as_deref(), Some("redis://10.43.0.9:7000"));
    assert_eq!(
        value("REDIS_PORT_6379_TCP").as_deref(),
        Some("tcp://10.43.0.9:6379")
    );
    // The API server systemk uses, reachable from the host's network.
    assert_eq!(
        value("KUBERNETES_SERVICE_HOST").as_deref(),
        Some("10.0.0.1")
    );
    assert_eq!(
        value("KUBERNETES_PORT").as_deref(),
        Some("tcp://10.43.0.1:443")
    );
    assert_eq!(
        env.iter()
            .filter(|v| v.name == "REDIS_SERVICE_PORT")
            .count(),
        1
    );
}

#[test]
fn without_service_links_only_the_master_service_is_given() {
    let (pod, facts) = with_services(Some(false));
    let env = resolve_container(&pod, &container(vec![]), None, &facts)
        .unwrap()
        .env
        .unwrap();
    assert!(
        env.iter().all(|v| v.name.starts_with("KUBERNETES_")),
        "{env:?}"
    );
    assert!(env.iter().any(|v| v.name == "KUBERNETES_PORT_443_TCP_ADDR"));
}

#[test]
fn the_pod_may_override_a_service_variable() {
    let c = container(vec![plain("KUBERNETES_SERVICE_HOST", "mine")]);
    let env = resolve(&pod("api"), &c).unwrap();
    assert_eq!(
        env,
        pairs(&[
            ("KUBERNETES_SERVICE_PORT", "6443"),
            ("KUBERNETES_SERVICE_HOST", "mine"),
        ])
    );
}

#[test]
fn values_expand_earlier_variables_and_service_ones_only() {
    let c = container(vec![
        plain("A", "a"),
        plain("B", "$(A)-$(C)-$(KUBERNETES_SERVICE_PORT)-$$(A)"),
        plain("C", "c"),
    ]);
    let env = resolve(&pod("api"), &c).unwrap();
    assert_eq!(env[3], ("B".into(), "a-$(C)-6443-$(A)".into()));
}

#[test]
fn later_definitions_win_in_place() {
    let c = container(vec![plain("A", "1"), plain("B", "2"), plain("A", "3")]);
    let env = resolve(&pod("file"), &c).unwrap();
    assert_eq!(env, pairs(&[("A", "3"), ("B", "2")]));
}

#[test]
fn field_refs_read_the_pod() {
    let c = container(vec![
        field("NAME", "metadata.name"),
        field("NS", "metadata.namespace"),
        field("UID", "metadata.uid"),
        field("APP", "metadata.labels['app']"),
        field("NOPE", "metadata.labels['nope']"),
        field("SRC", "metadata.annotations['kubernetes.io/config.source']"),
        field("NODE", "spec.nodeName"),
        field("SA", "spec.serviceAccountName"),
        field("HOST", "status.hostIP"),
        field("POD", "status.podIP"),
    ]);
    let env = resolve(&pod("file"), &c).unwrap();
    assert_eq!(
        env,
        pairs(&[
            ("NAME", "web"),
            ("NS", "shop"),
            ("UID", "u-1"),
            ("APP", "web"),
            ("NOPE", ""),
            ("SRC", "file"),
            ("NODE", "node-a"),
            ("SA", "robot"),
            ("HOST", "10.0.0.5"),
            ("POD", "10.0.0.5"),
        ])
    );
}

#[test]
fn unsupported_field_paths_are_errors() {
    let c = container(vec![field("X", "metadata.generateName")]);
    let err = resolve(&pod("file"), &c).unwrap_err();
    assert_eq!(err.reason(), "CreateContainerConfigError");
    assert_eq!(why(err), "unsupported fieldPath: metadata.generateName");
}

#[test]
fn config_map_and_secret_keys_resolve() {
    let c = container(vec![
        cm_key("MODE", "settings", "mode", None),
        secret_key("PW", "creds", "password", None),
    ]);
    let env = resolve(&pod("file"), &c).unwrap();
    assert_eq!(env, pairs(&[("MODE", "fast"), ("PW", "s3cret")]));
}

#[test]
fn missing_objects_and_keys_fail_in_the_kubelets_words() {
    let cases = [
        (
            cm_key("X", "gone", "k", None),
            r#"configmaps "gone" not found"#,
        ),
        (
            cm_key("X", "settings", "k", None),
            "couldn't find key k in ConfigMap shop/settings",
        ),
        (
            secret_key("X", "missing", "k", Some(false)),
            r#"secrets "missing" not found"#,
        ),
        (
            secret_key("X", "creds", "k", None),
            "couldn't find key k in Secret shop/creds",
        ),
    ];
    for (var, message) in cases {
        let err = resolve(&pod("file"), &container(vec![var])).unwrap_err();
        assert_eq!(why(err), message);
    }
}

#[test]
fn optional_missing_references_are_left_out() {
    let c = container(vec![
        cm_key("A", "gone", "k", Some(true)),
        cm_key("B", "settings", "k", Some(true)),
        secret_key("C", "missing", "k", Some(true)),
        secret_key("D", "creds", "k", Some(true)),
        plain("E", "e"),
    ]);
    let env = resolve(&pod("file"), &c).unwrap();
    assert_eq!(env, pairs(&[("E", "e")]));
}

#[test]
fn secret_values_must_be_text_without_nul() {
    for key in ["binary", "nul"] {
        let c = container(vec![secret_key("X", "creds", key, None)]);
        assert!(resolve(&pod("file"), &c).is_err(), "{key}");
    }
}

#[test]
fn value_from_is_not_expanded() {
    let objects = ReferencedObjects {
        config_maps: BTreeMap::from([(
            "raw".into(),
            Some(BTreeMap::from([("v".into(), "$(A)".into())]).into()),
        )]),
        ..Default::default()
    };
    let c = container(vec![plain("A", "a"), cm_key("B", "raw", "v", None)]);
    let resolved = resolve_container(&pod("file"), &c, Some(&objects), &no_api()).unwrap();
    assert_eq!(resolved.env.unwrap()[1].value.as_deref(), Some("$(A)"));
}

#[test]
fn env_from_comes_first_with_prefix_and_skips_bad_names() {
    let mut c = container(vec![plain("CFG_mode", "override")]);
    c.env_from = Some(vec![
        EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: "settings".into(),
                optional: None,
            }),
            prefix: Some("CFG_".into()),
            ..Default::default()
        },
        EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: "missing".into(),
                optional: Some(true),
            }),
            ..Default::default()
        },
    ]);
    let env = resolve(&pod("file"), &c).unwrap();
    assert_eq!(env, pairs(&[("CFG_level", "3"), ("CFG_mode", "override")]));
}

#[test]
fn env_from_a_missing_required_object_fails() {
    let mut c = container(vec![]);
    c.env_from = Some(vec![EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: "gone".into(),
            optional: None,
        }),
        ..Default::default()
    }]);
    assert_eq!(
        why(resolve(&pod("file"), &c).unwrap_err()),
        r#"configmaps "gone" not found"#
    );
}

#[test]
fn without_the_api_only_object_references_fail() {
    let c = container(vec![field("NAME", "metadata.name")]);
    let resolved = resolve_container(&pod("file"), &c, None, &no_api()).unwrap();
    assert_eq!(resolved.env.unwrap()[0].value.as_deref(), Some("web"));
    let c = container(vec![cm_key("X", "settings", "mode", None)]);
    let err = resolve_container(&pod("file"), &c, None, &no_api()).unwrap_err();
    assert!(why(err).contains("the Kubernetes API"));
}

#[test]
fn command_and_args_expand_against_the_final_environment() {
    let mut c = container(vec![plain("A", "a"), field("NAME", "metadata.name")]);
    c.command = Some(vec!["/bin/echo".into(), "$(A)".into()]);
    c.args = Some(vec![
        "$(NAME)".into(),
        "$$(NAME)".into(),
        "$(UNSET)".into(),
        "$(KUBERNETES_SERVICE_HOST)".into(),
    ]);
    let resolved = resolve_container(&pod("api"), &c, Some(&objects()), &facts()).unwrap();
    assert_eq!(resolved.command.unwrap(), ["/bin/echo", "a"]);
    assert_eq!(
        resolved.args.unwrap(),
        ["web", "$(NAME)", "$(UNSET)", "10.0.0.1"]
    );
}

#[test]
fn a_container_without_env_stays_without() {
    let c = Container {
        name: "app".into(),
        ..Default::default()
    };
    let resolved = resolve_container(&pod("file"), &c, None, &no_api()).unwrap();
    assert!(resolved.env.is_none());
}
