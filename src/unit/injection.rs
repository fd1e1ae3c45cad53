//! Security tests: no pod string can add a line, a section or a directive to a unit.
//! Every string field of a pod that `build` reads is set to each hostile string; the
//! build must either fail with an error or produce a unit with exactly the directives
//! of the benign pod, and the strings that are passed through (arguments, environment
//! values, image, pod UID) must reach systemd's reading of the unit unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, HostPathVolumeSource, Pod, PodSpec, SecurityContext,
    Volume, VolumeMount, WindowsSecurityContextOptions,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::build::{BuildInput, build};
use super::env::NodeInfo;
use super::escape::reference::{tricky_strings, unescape_environment, unescape_exec_line};
use super::file::UnitFile;
use super::identity::tests::TestUsers;
use super::meta::KubernetesMeta;

fn benign() -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("uid-1".into()),
            annotations: Some(BTreeMap::from([("note".into(), "benign".into())])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            volumes: Some(vec![
                Volume {
                    name: "cache".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                },
                Volume {
                    name: "host".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: "/srv".into(),
                        type_: None,
                    }),
                    ..Default::default()
                },
            ]),
            containers: vec![Container {
                name: "c".into(),
                image: Some("img".into()),
                command: Some(vec!["/bin/sh".into()]),
                args: Some(vec!["-c".into(), "benign".into()]),
                env: Some(vec![EnvVar {
                    name: "V".into(),
                    value: Some("v".into()),
                    value_from: None,
                }]),
                working_dir: Some("/w".into()),
                volume_mounts: Some(vec![
                    VolumeMount {
                        name: "cache".into(),
                        mount_path: "/m".into(),
                        ..Default::default()
                    },
                    VolumeMount {
                        name: "host".into(),
                        mount_path: "/h".into(),
                        sub_path: Some("s".into()),
                        ..Default::default()
                    },
                ]),
                security_context: Some(SecurityContext {
                    windows_options: Some(WindowsSecurityContextOptions {
                        run_as_user_name: Some("app".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(pod: &mut Pod) -> &mut Container {
    &mut pod.spec.as_mut().unwrap().containers[0]
}

/// Sets one pod field to a string.
type SetField = fn(&mut Pod, &str);

/// Every field `build` reads, with a way to set it to a hostile string.
fn fields() -> Vec<(&'static str, SetField)> {
    vec![
        ("metadata.name", |p, s| p.metadata.name = Some(s.into())),
        ("metadata.namespace", |p, s| {
            p.metadata.namespace = Some(s.into())
        }),
        ("metadata.uid", |p, s| p.metadata.uid = Some(s.into())),
        ("annotation value", |p, s| {
            p.metadata.annotations = Some(BTreeMap::from([("note".into(), s.into())]))
        }),
        ("annotation key", |p, s| {
            p.metadata.annotations = Some(BTreeMap::from([(s.into(), "v".into())]))
        }),
        ("container name", |p, s| container(p).name = s.into()),
        ("image", |p, s| container(p).image = Some(s.into())),
        ("command[0]", |p, s| {
            container(p).command = Some(vec![s.into()])
        }),
        ("args[1]", |p, s| {
            container(p).args = Some(vec!["-c".into(), s.into()])
        }),
        ("env name", |p, s| {
            container(p).env.as_mut().unwrap()[0].name = s.into()
        }),
        ("env value", |p, s| {
            container(p).env.as_mut().unwrap()[0].value = Some(s.into())
        }),
        ("workingDir", |p, s| {
            container(p).working_dir = Some(s.into())
        }),
        ("mountPath", |p, s| {
            container(p).volume_mounts.as_mut().unwrap()[0].mount_path = s.into()
        }),
        ("subPath", |p, s| {
            container(p).volume_mounts.as_mut().unwrap()[1].sub_path = Some(s.into())
        }),
        ("hostPath", |p, s| {
            p.spec.as_mut().unwrap().volumes.as_mut().unwrap()[1]
                .host_path
                .as_mut()
                .unwrap()
                .path = s.into()
        }),
        ("volume name", |p, s| {
            p.spec.as_mut().unwrap().volumes.as_mut().unwrap()[0].name = s.into();
            container(p).volume_mounts.as_mut().unwrap()[0].name = s.into();
        }),
        ("runAsUserName", |p, s| {
            let ctx = container(p).security_context.as_mut().unwrap();
            ctx.windows_options.as_mut().unwrap().run_as_user_name = Some(s.into());
        }),
    ]
}

fn build_pod(pod: &Pod) -> super::Result<UnitFile> {
    let node = NodeInfo {
        hostname: "n".into(),
        internal_ip: "10.0.0.1".into(),
        external_ip: String::new(),
    };
    let pod_dir = PathBuf::from("/var/lib/systemk/pods/uid-1");
    build(&BuildInput {
        security: &crate::unit::NodeSecurity::default(),
        pod,
        container: &pod.spec.as_ref().unwrap().containers[0],
        init_container: false,
        container_index: 0,
        image_id: "id",
        vendor_unit: None,
        writable_dirs: &[],
        node: &node,
        pod_dir: &pod_dir,
        runtime_pod_dir: Path::new("/run/systemk/pods/uid-1"),
        users: &TestUsers,
        slice: &crate::unit::SliceName::root(),
    })
}

/// The unit's shape: every (section, key) in order.
fn shape(unit: &UnitFile) -> Vec<(String, String)> {
    unit.sections()
        .flat_map(|s| {
            s.entries()
                .map(move |(k, _)| (s.name().to_owned(), k.to_owned()))
        })
        .collect()
}

/// Whether `part` is `whole` with some entries left out (an empty optional field such as
/// `workingDir: ""` removes its directive; nothing may add one).
fn is_subsequence(part: &[(String, String)], whole: &[(String, String)]) -> bool {
    let mut rest = whole.iter();
    part.iter().all(|p| rest.any(|w| w == p))
}

fn hostile_strings() -> Vec<String> {
    let mut strings = tricky_strings();
    strings.extend(
        [
            "a\0b",
            "x\nExecStartPre=/bin/evil",
            "%n",
            "$(touch /tmp/pwned)",
            "\\\n",
            "/m\n[Service]",
        ]
        .map(String::from),
    );
    strings
}

#[test]
fn no_pod_string_adds_a_line_or_directive() {
    let expected = shape(&build_pod(&benign()).unwrap());
    for (field, set) in fields() {
        for hostile in hostile_strings() {
            let mut pod = benign();
            set(&mut pod, &hostile);
            let Ok(unit) = build_pod(&pod) else { continue };
            let text = unit.render();
            let reparsed = UnitFile::parse(&text).unwrap();
            assert!(
                is_subsequence(&shape(&reparsed), &expected),
                "{field} = {hostile:?} added to the unit:\n{text}"
            );
            assert_eq!(
                reparsed, unit,
                "{field} = {hostile:?} does not survive parsing:\n{text}"
            );
        }
    }
}

#[test]
fn passed_strings_arrive_unchanged_and_only_nul_is_refused() {
    for hostile in hostile_strings() {
        let mut pod = benign();
        container(&mut pod).args = Some(vec!["-c".into(), hostile.clone()]);
        container(&mut pod).env.as_mut().unwrap()[0].value = Some(hostile.clone());
        container(&mut pod).image = Some(hostile.clone());
        pod.metadata.uid = Some(format!("{hostile}x"));
        let result = build_pod(&pod);
        if hostile.contains('\0') {
            assert!(result.is_err());
            continue;
        }
        let unit = UnitFile::parse(&result.unwrap().render()).unwrap();
        let argv = unescape_exec_line(unit.get("Service", "ExecStart").unwrap()).unwrap();
        assert_eq!(argv, ["/bin/sh", "-c", hostile.as_str()]);
        // The pod's env is not in the unit (issue 10, point 6): the unit names the
        // root-only file that holds it, and the file carries it unchanged (env.rs).
        for word in unit.get_all("Service", "Environment") {
            assert_ne!(unescape_environment(word).unwrap().0, "V");
        }
        assert_eq!(
            unit.get_all("Service", "EnvironmentFile"),
            ["/run/systemk/pods/uid-1/env/c.env"]
        );
        let meta = KubernetesMeta::from_unit(&unit).unwrap();
        assert_eq!(meta.image, hostile);
        assert_eq!(meta.pod_uid, format!("{hostile}x"));
        let extra = unescape_environment(unit.get("Service", "LogExtraFields").unwrap()).unwrap();
        assert_eq!(extra, ("SYSTEMK_POD_UID".to_owned(), format!("{hostile}x")));
    }
}
