//! The planning path on its own: what a container becomes with and without its package,
//! where its environment goes, and which errors stop it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{
    EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::pod::container_unit::containers;

/// root (0:0) and daemon (1:1); every group exists.
struct TestUsers;

impl UserDb for TestUsers {
    fn primary_group(&self, uid: u32) -> Option<u32> {
        (uid <= 1).then_some(uid)
    }

    fn user_by_name(&self, name: &str) -> Option<(u32, u32)> {
        match name {
            "root" => Some((0, 0)),
            "daemon" => Some((1, 1)),
            _ => None,
        }
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        self.user_by_name(name).map(|(_, gid)| gid)
    }

    fn group_exists(&self, _gid: u32) -> bool {
        true
    }
}

const UID: &str = "0f4c7e2a-1b2c-4d5e-8f90-0123456789ab";

fn pod(container: Container) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some(UID.into()),
            annotations: Some(BTreeMap::new()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            ..PodSpec::default()
        }),
        status: None,
    }
}

fn container(image: &str) -> Container {
    Container {
        name: "app".into(),
        image: Some(image.into()),
        ..Container::default()
    }
}

fn node() -> NodeInfo {
    NodeInfo {
        hostname: "node-1".into(),
        internal_ip: "192.0.2.7".into(),
        external_ip: String::new(),
    }
}

fn env() -> EnvFacts {
    EnvFacts {
        host_ip: Some("192.0.2.7".parse().unwrap()),
        pod_ip: Some("192.0.2.7".parse().unwrap()),
        node_name: "node-1".into(),
        ..EnvFacts::default()
    }
}

/// Plans the only container of `pod` with `inputs`.
fn plan(pod: &Pod, inputs: ContainerInputs<'_>) -> Result<PlannedUnit> {
    let (node, env, security) = (node(), env(), NodeSecurity::default());
    let facts = PlanFacts {
        node: &node,
        env: &env,
        pod_dir: Path::new("/var/lib/systemk/pods/x"),
        runtime_pod_dir: Path::new("/run/systemk/pods/x"),
        users: &TestUsers,
        security: &security,
    };
    plan_container(pod, containers(pod)[0], inputs, &facts)
}

fn installed(image_id: &str) -> Installed {
    Installed {
        package: Some("uptimed".into()),
        version: Some("1:0.4.6-4".into()),
        image_id: image_id.into(),
        newly_installed: false,
        service_units: Vec::new(),
        added_units: Vec::new(),
        writable_dirs: vec![PathBuf::from("/var/spool/uptimed")],
    }
}

#[test]
fn a_path_image_runs_its_path() {
    let planned = plan(&pod(container("/bin/sleep")), ContainerInputs::default()).unwrap();
    assert_eq!(planned.name.as_str(), "systemk.default.web.app.service");
    let exec = planned.unit.get("Service", "ExecStart").unwrap();
    assert!(exec.contains("/bin/sleep"), "{exec}");
    assert_eq!(planned.image_id, "");
    assert_eq!(planned.env_file, None);
}

#[test]
fn the_vendor_unit_and_package_facts_shape_the_unit() {
    let vendor =
        UnitFile::parse("[Service]\nExecStart=/usr/sbin/uptimed -f\nUser=daemon\n").unwrap();
    let package = installed("uptimed=1:0.4.6-4");
    let inputs = ContainerInputs {
        installed: Some(&package),
        vendor_unit: Some(&vendor),
        objects: None,
    };
    let planned = plan(&pod(container("uptimed")), inputs).unwrap();
    let exec = planned.unit.get("Service", "ExecStart").unwrap();
    assert!(exec.contains("/usr/sbin/uptimed"), "{exec}");
    assert_eq!(planned.image_id, "uptimed=1:0.4.6-4");
    assert_eq!(planned.identity, Some((1, 1)), "runs as the vendor's user");
    let rendered = planned.unit.render();
    assert!(rendered.contains("/var/spool/uptimed"), "{rendered}");
}

#[test]
fn the_environment_goes_to_the_env_file_resolved() {
    let mut app = container("/bin/sleep");
    app.env = Some(vec![
        EnvVar {
            name: "NODE".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "spec.nodeName".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        EnvVar {
            name: "GREETING".into(),
            value: Some("hello $(NODE)".into()),
            ..EnvVar::default()
        },
    ]);
    let planned = plan(&pod(app), ContainerInputs::default()).unwrap();
    let file = planned.env_file.unwrap();
    assert!(
        file.contains("NODE=node-1") || file.contains("NODE=\"node-1\""),
        "{file}"
    );
    assert!(file.contains("hello node-1"), "{file}");
    assert!(
        !planned.unit.render().contains("hello"),
        "values stay out of the unit"
    );
    assert_eq!(planned.resolved.env.as_ref().unwrap().len(), 2);
}

#[test]
fn a_secret_without_the_api_is_an_environment_error() {
    let mut app = container("/bin/sleep");
    app.env = Some(vec![EnvVar {
        name: "PASSWORD".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: "db".into(),
                key: "password".into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }]);
    let err = plan(&pod(app), ContainerInputs::default()).unwrap_err();
    assert!(matches!(err, Error::EnvConfig { .. }), "{err}");
}

#[test]
fn a_package_without_vendor_unit_or_command_cannot_be_planned() {
    let err = plan(&pod(container("uptimed")), ContainerInputs::default()).unwrap_err();
    assert!(matches!(err, Error::Unit(_)), "{err}");
}

#[test]
fn an_image_path_cannot_smuggle_a_second_command() {
    // The path is one quoted word: systemd looks for a binary of that very name and
    // never reads the `;` as a command separator.
    let planned = plan(
        &pod(container("/bin/sh ; /bin/rm")),
        ContainerInputs::default(),
    )
    .unwrap();
    let exec = planned.unit.get("Service", "ExecStart").unwrap();
    assert_eq!(exec, "\"/bin/sh ; /bin/rm\"");
}
