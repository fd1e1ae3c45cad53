use k8s_openapi::api::core::v1::{PodSpec, SecurityContext, Volume, VolumeMount};

use super::*;

const POD_DIR: &str = "/var/lib/systemk/pods/u-1";

fn security() -> NodeSecurity {
    NodeSecurity {
        hidden_paths: vec!["/var/lib/systemk".into(), "/etc/systemk".into()],
        ..NodeSecurity::default()
    }
}

fn container(path: Option<&str>, privileged: bool) -> Container {
    Container {
        name: "app".into(),
        termination_message_path: path.map(str::to_owned),
        security_context: privileged.then(|| SecurityContext {
            privileged: Some(true),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

fn pod(container: &Container) -> Pod {
    Pod {
        spec: Some(PodSpec {
            containers: vec![container.clone()],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn mount(path: Option<&str>, privileged: bool) -> Result<Option<BindMount>> {
    let container = container(path, privileged);
    termination_mount(
        &pod(&container),
        &container,
        Path::new(POD_DIR),
        &security(),
    )
}

#[test]
fn the_default_path_binds_the_containers_own_file_in_its_private_dev() {
    let mount = mount(None, false).unwrap().unwrap();
    assert_eq!(mount.source, format!("{POD_DIR}/termination/app"));
    assert_eq!(mount.target, DEFAULT_TERMINATION_MESSAGE_PATH);
    assert!(!mount.read_only && mount.private_dev);
    assert_eq!(
        mount.directive(),
        (
            "BindPaths",
            format!("{POD_DIR}/termination/app:/dev/termination-log")
        )
    );
    assert_eq!(mount, self::mount(Some(""), false).unwrap().unwrap());
}

#[test]
fn a_spec_path_is_normalised() {
    let mount = mount(Some("/tmp//./msg/"), false).unwrap().unwrap();
    assert_eq!(mount.target, "/tmp/msg");
}

#[test]
fn a_privileged_container_gets_no_file_in_the_hosts_dev() {
    assert_eq!(mount(None, true).unwrap(), None);
    assert_eq!(mount(Some("/dev/null"), true).unwrap(), None);
    let shm = mount(Some("/dev/shm/msg"), true).unwrap().unwrap();
    assert!(!shm.private_dev);
    assert!(mount(Some("/tmp/msg"), true).unwrap().is_some());
}

#[test]
fn attack_paths_that_escape_or_hide_are_refused() {
    for path in [
        "../../etc/shadow",
        "relative",
        "/tmp/../../etc/shadow",
        "/",
        "/var/lib/systemk/pods/other/termination/app",
        "/var/lib",
        "/etc/systemk/kubeconfig",
        "/tmp/a b",
        "/tmp/a:b",
    ] {
        assert!(mount(Some(path), false).is_err(), "{path}");
    }
}

#[test]
fn a_volume_mounted_at_the_same_path_is_refused() {
    let mut container = container(Some("/data"), false);
    container.volume_mounts = Some(vec![VolumeMount {
        name: "data".into(),
        mount_path: "/data".into(),
        ..VolumeMount::default()
    }]);
    let mut pod = pod(&container);
    if let Some(spec) = pod.spec.as_mut() {
        spec.volumes = Some(vec![Volume {
            name: "data".into(),
            empty_dir: Some(Default::default()),
            ..Volume::default()
        }]);
    }
    let dirs = (Path::new(POD_DIR), Path::new("/run/systemk/pods/u-1"));
    let err = container_mounts(&pod, &container, dirs, &security()).unwrap_err();
    assert!(
        err.to_string().contains("volume data is mounted there"),
        "{err}"
    );
    container.termination_message_path = Some("/data/msg".into());
    let mounts = container_mounts(&pod, &container, dirs, &security()).unwrap();
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[1].volume, TERMINATION_MOUNT);
}
