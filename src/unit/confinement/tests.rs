use k8s_openapi::api::core::v1::{
    Capabilities, HostPathVolumeSource, PodSpec, SELinuxOptions, SeccompProfile as Profile, Sysctl,
    VolumeMount,
};

use super::*;

fn pod_with(spec: PodSpec, ctx: SecurityContext) -> (Pod, Container) {
    let container = Container {
        name: "c".into(),
        security_context: Some(ctx),
        ..Default::default()
    };
    let pod = Pod {
        spec: Some(PodSpec {
            containers: vec![container.clone()],
            ..spec
        }),
        ..Default::default()
    };
    (pod, container)
}

fn confine(vendor: &str, spec: PodSpec, ctx: SecurityContext) -> Result<UnitFile> {
    let (pod, container) = pod_with(spec, ctx);
    let mut unit = UnitFile::parse(&format!("[Service]\n{vendor}")).unwrap();
    let node = NodeSecurity {
        hidden_paths: vec!["/var/lib/systemk".into(), "/etc/systemk".into()],
        ..Default::default()
    };
    apply_confinement(&mut unit, &pod, &container, &node)?;
    Ok(unit)
}

fn default_unit() -> UnitFile {
    confine("", PodSpec::default(), SecurityContext::default()).unwrap()
}

#[test]
fn default_pods_get_a_runtimes_confinement() {
    let unit = default_unit();
    let get = |k| unit.get(SERVICE, k);
    assert_eq!(
        get("CapabilityBoundingSet"),
        Some(CapabilitySet::runtime_default().directive().as_str())
    );
    for key in [
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectClock",
        "ProtectHostname",
    ] {
        assert_eq!(get(key), Some("yes"), "{key}");
    }
    // `invisible` would let a root pod (group 0) see every process.
    assert_eq!(get("ProtectProc"), Some("ptraceable"));
    assert_eq!(
        unit.get_all(SERVICE, "InaccessiblePaths"),
        [
            "-/var/lib/systemk",
            "-/etc/systemk",
            "-/run/dbus/system_bus_socket",
            "-/run/systemd/private",
            "-/run/udev/control",
            "-/run/initctl",
            "-/run/systemd/journal/io.systemd.journal"
        ]
    );
    assert_eq!(
        unit.get_all(SERVICE, "SystemCallFilter")[0],
        "@system-service chroot"
    );
}

#[test]
fn privileged_is_the_unconfined_unit() {
    let ctx = SecurityContext {
        privileged: Some(true),
        ..Default::default()
    };
    let unit = confine("", PodSpec::default(), ctx).unwrap();
    for key in [
        "CapabilityBoundingSet",
        "PrivateDevices",
        "InaccessiblePaths",
        "SystemCallFilter",
    ] {
        assert_eq!(unit.get(SERVICE, key), None, "{key}");
    }
}

fn ctx(add: &[&str], drop: &[&str]) -> SecurityContext {
    SecurityContext {
        capabilities: Some(Capabilities {
            add: Some(add.iter().map(|s| (*s).to_owned()).collect()),
            drop: Some(drop.iter().map(|s| (*s).to_owned()).collect()),
        }),
        ..Default::default()
    }
}

#[test]
fn capabilities_are_applied_and_vendor_sets_respected() {
    let none = confine("", PodSpec::default(), ctx(&[], &["ALL"])).unwrap();
    assert_eq!(none.get(SERVICE, "CapabilityBoundingSet"), Some(""));
    let vendor = "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID\n\
                  AmbientCapabilities=CAP_NET_BIND_SERVICE\n";
    let kept = confine(vendor, PodSpec::default(), SecurityContext::default()).unwrap();
    assert_eq!(
        kept.get_all(SERVICE, "CapabilityBoundingSet"),
        ["CAP_NET_BIND_SERVICE CAP_SETUID"]
    );
    assert_eq!(
        kept.get(SERVICE, "AmbientCapabilities"),
        Some("CAP_NET_BIND_SERVICE")
    );
    let dropped = confine(vendor, PodSpec::default(), ctx(&[], &["NET_BIND_SERVICE"])).unwrap();
    assert_eq!(dropped.get(SERVICE, "AmbientCapabilities"), Some(""));
    for escape in [
        &["SYS_PTRACE"][..],
        &["cap_sys_ptrace"],
        &["ALL"],
        &["SYS_ADMIN"],
        &["CAP_DAC_READ_SEARCH"],
        &["sys_module"],
    ] {
        let err = confine("", PodSpec::default(), ctx(escape, &[])).unwrap_err();
        assert!(err.to_string().contains("root on the host"), "{err}");
        assert!(err.to_string().contains(escape[0]), "{err}");
    }
}

#[test]
fn a_held_capability_lifts_the_protection_that_would_drop_it() {
    let clock = confine("", PodSpec::default(), ctx(&["SYS_TIME"], &[])).unwrap();
    assert_eq!(clock.get(SERVICE, "ProtectClock"), None);
    let filters = clock.get_all(SERVICE, "SystemCallFilter");
    assert!(!filters[1].contains("@clock"), "{filters:?}");
    assert_eq!(clock.get(SERVICE, "ProtectKernelLogs"), Some("yes"));
    let default = confine("", PodSpec::default(), SecurityContext::default()).unwrap();
    assert_eq!(default.get(SERVICE, "ProtectClock"), Some("yes"));
    assert!(default.get_all(SERVICE, "SystemCallFilter")[1].contains("@clock"));
    let log = confine("", PodSpec::default(), ctx(&["SYSLOG"], &[])).unwrap();
    assert_eq!(log.get(SERVICE, "ProtectKernelLogs"), None);
}

#[test]
fn unsupported_fields_are_refused() {
    let pod_ctx = |ctx: PodSecurityContext| PodSpec {
        security_context: Some(ctx),
        ..Default::default()
    };
    let refused = [
        (
            PodSpec {
                host_users: Some(false),
                ..Default::default()
            },
            SecurityContext::default(),
        ),
        (
            pod_ctx(PodSecurityContext {
                sysctls: Some(vec![Sysctl {
                    name: "net.core.somaxconn".into(),
                    value: "1024".into(),
                }]),
                ..Default::default()
            }),
            SecurityContext::default(),
        ),
        (
            PodSpec::default(),
            SecurityContext {
                se_linux_options: Some(SELinuxOptions {
                    type_: Some("spc_t".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            PodSpec::default(),
            SecurityContext {
                proc_mount: Some("Unmasked".into()),
                ..Default::default()
            },
        ),
        (
            PodSpec::default(),
            SecurityContext {
                seccomp_profile: Some(Profile {
                    type_: "Localhost".into(),
                    localhost_profile: Some("x.json".into()),
                }),
                ..Default::default()
            },
        ),
        (
            PodSpec::default(),
            SecurityContext {
                app_armor_profile: Some(AppArmorProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..Default::default()
            },
        ),
        (
            PodSpec::default(),
            SecurityContext {
                app_armor_profile: Some(AppArmorProfile {
                    type_: "Localhost".into(),
                    localhost_profile: Some("p".into()),
                }),
                ..Default::default()
            },
        ),
    ];
    for (spec, ctx) in refused {
        let result = confine("", spec.clone(), ctx.clone());
        assert!(
            matches!(result, Err(Error::Unsupported { .. })),
            "{spec:?} {ctx:?}: {result:?}"
        );
    }
    let unconfined = SecurityContext {
        seccomp_profile: Some(Profile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        }),
        proc_mount: Some("Default".into()),
        read_only_root_filesystem: Some(false),
        ..Default::default()
    };
    let unit = confine("", PodSpec::default(), unconfined).unwrap();
    assert_eq!(unit.get(SERVICE, "SystemCallFilter"), None);
}

#[test]
fn app_armor_localhost_when_enabled() {
    let profile = |name: &str| {
        Some(AppArmorProfile {
            type_: "Localhost".into(),
            localhost_profile: Some(name.into()),
        })
    };
    let node = NodeSecurity {
        apparmor: true,
        ..Default::default()
    };
    assert_eq!(
        app_armor_profile("c", profile("k8s-nginx").as_ref(), &node).unwrap(),
        Some("k8s-nginx".into())
    );
    for bad in ["", "-optional", "a b", "x\ny", "%n"] {
        assert!(
            app_armor_profile("c", profile(bad).as_ref(), &node).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn host_pid_and_dbus_units() {
    let host_pid = PodSpec {
        host_pid: Some(true),
        ..Default::default()
    };
    let unit = confine("", host_pid, SecurityContext::default()).unwrap();
    assert_eq!(unit.get(SERVICE, "ProtectProc"), None);
    let err = confine(
        "Type=dbus\n",
        PodSpec::default(),
        SecurityContext::default(),
    );
    assert!(
        matches!(err, Err(Error::InvalidVendorUnit { .. })),
        "{err:?}"
    );
}

fn with_host_path(path: &str, kind: Option<&str>, read_only: bool) -> Result<UnitFile> {
    let container = Container {
        name: "c".into(),
        volume_mounts: Some(vec![VolumeMount {
            name: "h".into(),
            mount_path: "/mnt/h".into(),
            read_only: Some(read_only),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let pod = Pod {
        spec: Some(PodSpec {
            containers: vec![container.clone()],
            volumes: Some(vec![Volume {
                name: "h".into(),
                host_path: Some(HostPathVolumeSource {
                    path: path.into(),
                    type_: kind.map(Into::into),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut unit = UnitFile::parse("[Service]\n").unwrap();
    let node = NodeSecurity {
        hidden_paths: vec!["/var/lib/systemk".into()],
        ..Default::default()
    };
    apply_confinement(&mut unit, &pod, &container, &node)?;
    Ok(unit)
}

#[test]
fn device_host_paths_open_exactly_those_devices() {
    let unit = with_host_path("/dev/ttyS0", Some("CharDevice"), false).unwrap();
    assert_eq!(unit.get_all(SERVICE, "DeviceAllow"), ["/dev/ttyS0 rw"]);
    let unit = with_host_path("/dev/sdb", Some("BlockDevice"), true).unwrap();
    assert_eq!(unit.get_all(SERVICE, "DeviceAllow"), ["/dev/sdb r"]);
    let unit = with_host_path("/dev/sdb", None, false).unwrap();
    assert!(unit.get_all(SERVICE, "DeviceAllow").is_empty());
}

#[test]
fn host_paths_over_hidden_or_kernel_paths_are_refused() {
    for bad in [
        "/",
        "/var",
        "/var/lib/systemk",
        "/var/lib/systemk/pods",
        "/run",
        "/run/dbus",
        "/proc",
        "/sys/kernel",
    ] {
        let err = with_host_path(bad, None, true);
        assert!(
            matches!(err, Err(Error::InvalidVolume { .. })),
            "{bad}: {err:?}"
        );
    }
    for good in ["/var/lib/systemk-other", "/srv/data", "/var/log"] {
        assert!(with_host_path(good, None, true).is_ok(), "{good}");
    }
}

#[test]
fn the_app_armor_annotation_counts_when_the_fields_are_unset() {
    let mut pod = Pod {
        spec: Some(PodSpec::default()),
        ..Default::default()
    };
    let container = Container {
        name: "app".into(),
        ..Default::default()
    };
    let annotate = |pod: &mut Pod, value: &str| {
        pod.metadata.annotations = Some(
            [(
                "container.apparmor.security.beta.kubernetes.io/app".to_owned(),
                value.to_owned(),
            )]
            .into(),
        );
    };
    let apparmor = NodeSecurity {
        apparmor: true,
        ..Default::default()
    };
    let confined = |pod: &Pod, node: &NodeSecurity| {
        let mut unit = UnitFile::parse("[Service]\n").unwrap();
        apply_confinement(&mut unit, pod, &container, node).map(|()| unit)
    };
    annotate(&mut pod, "runtime/default");
    assert!(confined(&pod, &apparmor).is_err());
    annotate(&mut pod, "unconfined");
    assert!(confined(&pod, &apparmor).is_ok());
    annotate(&mut pod, "localhost/my-profile");
    let unit = confined(&pod, &apparmor).unwrap();
    assert_eq!(unit.get(SERVICE, "AppArmorProfile"), Some("my-profile"));
    assert!(confined(&pod, &NodeSecurity::default()).is_err());
    annotate(&mut pod, "bogus");
    assert!(confined(&pod, &apparmor).is_err());
}
