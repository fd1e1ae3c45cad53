use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, DownwardAPIVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
    PersistentVolumeClaimVolumeSource, PodSpec, ProjectedVolumeSource, SecretVolumeSource,
    VolumeMount,
};

use super::*;

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

fn host(name: &str, path: &str, type_: Option<&str>) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: type_.map(Into::into),
        }),
        ..Default::default()
    }
}

fn config_map(name: &str) -> Volume {
    Volume {
        name: name.into(),
        config_map: Some(ConfigMapVolumeSource::default()),
        ..Default::default()
    }
}

fn pvc(name: &str) -> Volume {
    Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource::default()),
        ..Default::default()
    }
}

fn mount(name: &str, at: &str, read_only: bool, sub: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: at.into(),
        read_only: Some(read_only),
        sub_path: sub.map(Into::into),
        ..Default::default()
    }
}

fn pod(volumes: Vec<Volume>) -> Pod {
    Pod {
        spec: Some(PodSpec {
            volumes: Some(volumes),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mounts(volumes: Vec<Volume>, mounts: Vec<VolumeMount>) -> Result<Vec<String>> {
    let container = Container {
        name: "c".into(),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Ok(bind_mounts(
        &pod(volumes),
        &container,
        Path::new("/var/lib/systemk/pods/u1"),
        Path::new("/run/systemk/pods/u1"),
    )?
    .iter()
    .map(|m| {
        let (k, v) = m.directive();
        format!("{k}={v}")
    })
    .collect())
}

#[test]
fn empty_dir_and_host_path() {
    let got = mounts(
        vec![
            empty_dir("cache"),
            host("logs", "/var/log/app/", None),
            host("root", "/", None),
        ],
        vec![
            mount("cache", "/cache", false, None),
            mount("logs", "/ro-sub", true, Some("sub/dir")),
            mount("logs", "/logs", true, None),
            mount("root", "/host", false, Some("etc")),
            mount("logs", "/odd%n", false, None),
        ],
    )
    .unwrap();
    assert_eq!(
        got,
        [
            "BindPaths=/var/lib/systemk/pods/u1/volumes/empty-dir/cache:/cache",
            "BindReadOnlyPaths=/run/systemk/pods/u1/volume-subpaths/logs/c/1:/ro-sub",
            "BindReadOnlyPaths=/var/log/app:/logs",
            "BindPaths=/run/systemk/pods/u1/volume-subpaths/root/c/3:/host",
            "BindPaths=/var/log/app:/odd%%n",
        ]
    );
}

#[test]
fn escapes_and_unsupported_are_refused() {
    let cases = [
        (empty_dir("v"), mount("v", "/", false, None)),
        (empty_dir("v"), mount("v", "/a/../etc", false, None)),
        (empty_dir("v"), mount("v", "relative", false, None)),
        (empty_dir("v"), mount("v", "/a:b", false, None)),
        (
            empty_dir("v"),
            mount("v", "/a\nExecStart=/bin/evil", false, None),
        ),
        (
            host("v", "/srv", None),
            mount("v", "/x", false, Some("../../etc")),
        ),
        (
            host("v", "/srv", None),
            mount("v", "/x", false, Some("/etc")),
        ),
        (empty_dir("v"), mount("other", "/x", false, None)),
        (empty_dir("../v"), mount("../v", "/x", false, None)),
        (host("v", "relative", None), mount("v", "/x", false, None)),
        (host("v", "/a b", None), mount("v", "/x", false, None)),
        (
            host("v", "/f", Some("Weird")),
            mount("v", "/x", false, None),
        ),
        (pvc("v"), mount("v", "/x", false, None)),
        (config_map("v"), mount("v", "/x", false, Some("../k"))),
    ];
    for (volume, m) in cases {
        let desc = format!("{volume:?} {m:?}");
        assert!(mounts(vec![volume], vec![m]).is_err(), "{desc}");
    }
    let err = mounts(vec![pvc("v")], vec![mount("v", "/x", false, None)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "volume v of kind persistentVolumeClaim is not supported yet"
    );
    let twice = mounts(
        vec![empty_dir("a")],
        vec![mount("a", "/x", false, None), mount("a", "/x/", true, None)],
    );
    assert!(twice.is_err());
}

#[test]
fn api_volumes_are_always_read_only_and_allow_sub_paths() {
    let secret = Volume {
        name: "creds".into(),
        secret: Some(SecretVolumeSource::default()),
        ..Default::default()
    };
    let projected = Volume {
        name: "token".into(),
        projected: Some(ProjectedVolumeSource::default()),
        ..Default::default()
    };
    let downward = Volume {
        name: "info".into(),
        downward_api: Some(DownwardAPIVolumeSource::default()),
        ..Default::default()
    };
    let got = mounts(
        vec![config_map("cfg"), secret, projected, downward],
        vec![
            mount("cfg", "/etc/app", false, None),
            mount("cfg", "/etc/app.conf", false, Some("app.conf")),
            mount("creds", "/secrets", false, None),
            mount("token", "/run/token", true, None),
            mount("info", "/info", false, None),
        ],
    )
    .unwrap();
    let base = "/var/lib/systemk/pods/u1/volumes";
    // Secrets and tokens live on the runtime tmpfs, never on persistent disk.
    let tmpfs = "/run/systemk/pods/u1/volumes";
    assert_eq!(
        got,
        [
            format!("BindReadOnlyPaths={base}/config-map/cfg:/etc/app"),
            "BindReadOnlyPaths=/run/systemk/pods/u1/volume-subpaths/cfg/c/1:/etc/app.conf"
                .to_owned(),
            format!("BindReadOnlyPaths={tmpfs}/secret/creds:/secrets"),
            format!("BindReadOnlyPaths={tmpfs}/projected/token:/run/token"),
            format!("BindReadOnlyPaths={base}/downward-api/info:/info"),
        ]
    );
    let (p, r) = (Path::new("/p"), Path::new("/r"));
    assert_eq!(
        api_volume_path(p, r, &config_map("cfg")),
        Some(PathBuf::from("/p/volumes/config-map/cfg"))
    );
    let creds = Volume {
        name: "creds".into(),
        secret: Some(Default::default()),
        ..Default::default()
    };
    assert_eq!(
        api_volume_path(p, r, &creds),
        Some(PathBuf::from("/r/volumes/secret/creds"))
    );
    assert_eq!(
        legacy_secret_volume_path(p, &creds),
        Some(PathBuf::from("/p/volumes/secret/creds"))
    );
    assert_eq!(legacy_secret_volume_path(p, &config_map("cfg")), None);
    assert_eq!(api_volume_path(p, r, &empty_dir("e")), None);
}

#[test]
fn empty_dirs_live_in_the_pod_directory() {
    assert_eq!(
        empty_dir_path(Path::new("/p"), "a"),
        PathBuf::from("/p/volumes/empty-dir/a")
    );
}

#[test]
fn sub_paths_are_staged_for_every_kind_of_volume() {
    let container = Container {
        name: "app".into(),
        volume_mounts: Some(vec![
            mount("cache", "/cache", false, Some("a/./b/")),
            mount("logs", "/logs", true, Some("x")),
            mount("cfg", "/etc/app.conf", false, Some("app.conf")),
        ]),
        ..Default::default()
    };
    let got = bind_mounts(
        &pod(vec![
            empty_dir("cache"),
            host("logs", "/var/log/app", Some("Directory")),
            config_map("cfg"),
        ]),
        &container,
        Path::new("/state/pods/u1"),
        Path::new("/run/systemk/pods/u1"),
    )
    .unwrap();
    let staged: Vec<(&str, &SubPath, bool)> = got
        .iter()
        .map(|m| (m.source.as_str(), m.sub_path.as_ref().unwrap(), m.pod_owned))
        .collect();
    assert_eq!(
        staged,
        [
            (
                "/run/systemk/pods/u1/volume-subpaths/cache/app/0",
                &SubPath {
                    volume_root: "/state/pods/u1/volumes/empty-dir/cache".into(),
                    path: "a/b".into(),
                    create_missing: true,
                },
                true,
            ),
            (
                "/run/systemk/pods/u1/volume-subpaths/logs/app/1",
                &SubPath {
                    volume_root: "/var/log/app".into(),
                    path: "x".into(),
                    create_missing: true,
                },
                false,
            ),
            (
                "/run/systemk/pods/u1/volume-subpaths/cfg/app/2",
                &SubPath {
                    volume_root: "/state/pods/u1/volumes/config-map/cfg".into(),
                    path: "app.conf".into(),
                    create_missing: false,
                },
                false,
            ),
        ]
    );
    assert_eq!(
        subpath_staging_path(Path::new("/r"), "v", "c", 7),
        PathBuf::from("/r/volume-subpaths/v/c/7")
    );
}
