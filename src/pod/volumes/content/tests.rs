use k8s_openapi::api::core::v1::{
    ConfigMapProjection, ConfigMapVolumeSource, Container, DownwardAPIProjection,
    DownwardAPIVolumeSource, ObjectFieldSelector, PodSpec, ProjectedVolumeSource,
    ResourceFieldSelector, ResourceRequirements, SecretVolumeSource, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::pod::objects::ConfigMapData;

fn pod(volumes: Vec<Volume>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            uid: Some("u-1".into()),
            labels: Some(BTreeMap::from([
                ("app".into(), "web".into()),
                ("note".into(), "say \"hi\"\n".into()),
            ])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                resources: Some(ResourceRequirements {
                    limits: Some(BTreeMap::from([("memory".into(), Quantity("64Mi".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn objects() -> ReferencedObjects {
    ReferencedObjects {
        config_maps: BTreeMap::from([
            (
                "settings".into(),
                Some(ConfigMapData {
                    data: BTreeMap::from([
                        ("a.conf".into(), "alpha".into()),
                        ("b.conf".into(), "beta".into()),
                    ]),
                    binary_data: BTreeMap::from([("blob".into(), vec![0, 0xff])]),
                }),
            ),
            ("gone".into(), None),
        ]),
        secrets: BTreeMap::from([(
            "creds".into(),
            Some(BTreeMap::from([("password".into(), b"s3cret".to_vec())])),
        )]),
    }
}

fn facts() -> EnvFacts {
    EnvFacts {
        node_name: "node-a".into(),
        ..Default::default()
    }
}

fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
    KeyToPath {
        key: key.into(),
        path: path.into(),
        mode,
    }
}

fn named(name: &str) -> Volume {
    Volume {
        name: name.into(),
        ..Default::default()
    }
}

/// The payload as `path mode data` lines.
fn files(volume: &Volume) -> Result<Vec<String>, String> {
    files_with(volume, &HashMap::new())
}

fn files_with(
    volume: &Volume,
    tokens: &HashMap<TokenSpec, IssuedToken>,
) -> Result<Vec<String>, String> {
    let objects = objects();
    let facts = facts();
    let sources = VolumeSources {
        objects: Some(&objects),
        tokens,
        facts: &facts,
    };
    let pod = pod(vec![volume.clone()]);
    Ok(volume_payload(&pod, volume, sources)?
        .expect("an API volume")
        .iter()
        .map(|(path, file)| {
            format!(
                "{path} {:o} {}",
                file.mode,
                String::from_utf8_lossy(&file.data)
            )
        })
        .collect())
}

fn config_map(name: &str, items: Option<Vec<KeyToPath>>, optional: Option<bool>) -> Volume {
    Volume {
        config_map: Some(ConfigMapVolumeSource {
            name: name.into(),
            items,
            optional,
            default_mode: None,
        }),
        ..named("cfg")
    }
}

#[test]
fn a_config_map_gives_every_key_with_the_default_mode() {
    assert_eq!(
        files(&config_map("settings", None, None)).unwrap(),
        ["a.conf 644 alpha", "b.conf 644 beta", "blob 644 \0\u{fffd}"]
    );
}

#[test]
fn items_choose_keys_paths_and_modes() {
    let volume = config_map(
        "settings",
        Some(vec![
            item("a.conf", "conf/app.conf", Some(0o400)),
            item("b.conf", "b", None),
        ]),
        None,
    );
    assert_eq!(
        files(&volume).unwrap(),
        ["b 644 beta", "conf/app.conf 400 alpha"]
    );
}

#[test]
fn missing_objects_and_keys_fail_unless_optional() {
    let missing_key = Some(vec![item("nope", "x", None)]);
    assert_eq!(
        files(&config_map("settings", missing_key.clone(), None)).unwrap_err(),
        "configMap \"settings\" has no key \"nope\""
    );
    assert!(
        files(&config_map("settings", missing_key, Some(true)))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        files(&config_map("gone", None, None)).unwrap_err(),
        "configmaps \"gone\" not found"
    );
    assert!(
        files(&config_map("gone", None, Some(true)))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn paths_that_leave_the_volume_are_refused() {
    for path in ["../x", "/etc/passwd", "a/../../b", "..data"] {
        let volume = config_map("settings", Some(vec![item("a.conf", path, None)]), None);
        assert!(files(&volume).is_err(), "{path}");
    }
    let twice = config_map(
        "settings",
        Some(vec![item("a.conf", "x", None), item("b.conf", "x", None)]),
        None,
    );
    assert!(files(&twice).is_err());
}

#[test]
fn secrets_honour_default_mode_and_need_the_api() {
    let volume = Volume {
        secret: Some(SecretVolumeSource {
            secret_name: Some("creds".into()),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..named("creds")
    };
    assert_eq!(files(&volume).unwrap(), ["password 440 s3cret"]);
    let facts = facts();
    let tokens = HashMap::new();
    let without_api = VolumeSources {
        objects: None,
        tokens: &tokens,
        facts: &facts,
    };
    let err = volume_payload(&pod(vec![]), &volume, without_api).unwrap_err();
    assert!(err.contains("needs the Kubernetes API"), "{err}");
}

fn field(path: &str, field_path: &str) -> DownwardAPIVolumeFile {
    DownwardAPIVolumeFile {
        path: path.into(),
        field_ref: Some(ObjectFieldSelector {
            api_version: None,
            field_path: field_path.into(),
        }),
        ..Default::default()
    }
}

#[test]
fn downward_api_files_are_the_kubelets() {
    let volume = Volume {
        downward_api: Some(DownwardAPIVolumeSource {
            items: Some(vec![
                field("labels", "metadata.labels"),
                field("name", "metadata.name"),
                field("app", "metadata.labels['app']"),
                field("annotations", "metadata.annotations"),
                DownwardAPIVolumeFile {
                    path: "mem".into(),
                    resource_field_ref: Some(ResourceFieldSelector {
                        container_name: Some("main".into()),
                        divisor: Some(Quantity("1Mi".into())),
                        resource: "limits.memory".into(),
                    }),
                    mode: Some(0o600),
                    ..Default::default()
                },
            ]),
            default_mode: None,
        }),
        ..named("info")
    };
    assert_eq!(
        files(&volume).unwrap(),
        [
            "annotations 644 ",
            "app 644 web",
            "labels 644 app=\"web\"\nnote=\"say \\\"hi\\\"\\n\"",
            "mem 600 64",
            "name 644 web",
        ]
    );
    for bad in ["status.podIP", "spec.nodeName"] {
        let volume = Volume {
            downward_api: Some(DownwardAPIVolumeSource {
                items: Some(vec![field("x", bad)]),
                default_mode: None,
            }),
            ..named("info")
        };
        assert!(files(&volume).is_err(), "{bad}");
    }
}

#[test]
fn go_quoting_escapes_controls() {
    assert_eq!(go_quote("a\tb\u{1}\u{7f}é"), "\"a\\tb\\x01\\x7fé\"");
}

#[test]
fn projected_volumes_combine_sources_with_the_issued_token() {
    let token = ServiceAccountTokenProjection {
        audience: Some("vault".into()),
        expiration_seconds: Some(600),
        path: "token".into(),
    };
    let volume = Volume {
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(token),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "settings".into(),
                        items: Some(vec![item("a.conf", "ca.crt", None)]),
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![field("namespace", "metadata.namespace")]),
                    }),
                    ..Default::default()
                },
            ]),
        }),
        ..named("kube-api-access")
    };
    let specs = token_specs(&pod(vec![volume.clone()]));
    assert_eq!(
        specs,
        [TokenSpec {
            namespace: "shop".into(),
            service_account: "default".into(),
            audience: Some("vault".into()),
            expiration_seconds: 600,
            pod_name: "web".into(),
            pod_uid: "u-1".into(),
        }]
    );
    assert!(files(&volume).unwrap_err().contains("no token was issued"));
    let tokens = HashMap::from([(
        specs[0].clone(),
        IssuedToken {
            token: "jwt".into(),
            expires_at: Timestamp::UNIX_EPOCH,
        },
    )]);
    assert_eq!(
        files_with(&volume, &tokens).unwrap(),
        ["ca.crt 444 alpha", "namespace 444 shop", "token 444 jwt"]
    );
}

#[test]
fn other_kinds_have_no_payload() {
    let facts = facts();
    let tokens = HashMap::new();
    let sources = VolumeSources {
        objects: None,
        tokens: &tokens,
        facts: &facts,
    };
    assert_eq!(
        volume_payload(&pod(vec![]), &named("empty"), sources),
        Ok(None)
    );
}
