use k8s_openapi::api::core::v1::{
    PodSecurityContext, PodSpec, SecurityContext, WindowsSecurityContextOptions,
};

use super::*;

/// A fixed user database: daemon (1:1), app (1001:1001), uid 1000 in group 100; every
/// group but 4242.
pub(crate) struct TestUsers;

impl UserDb for TestUsers {
    fn primary_group(&self, uid: u32) -> Option<u32> {
        match uid {
            0 => Some(0),
            1 => Some(1),
            1000 => Some(100),
            1001 => Some(1001),
            _ => None,
        }
    }

    fn user_by_name(&self, name: &str) -> Option<(u32, u32)> {
        match name {
            "root" => Some((0, 0)),
            "daemon" => Some((1, 1)),
            "app" => Some((1001, 1001)),
            _ => None,
        }
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        match name {
            "daemon" => Some(1),
            "staff" => Some(50),
            _ => None,
        }
    }

    /// Every group but 4242.
    fn group_exists(&self, gid: u32) -> bool {
        gid != 4242
    }
}

#[test]
fn a_units_identity_comes_from_user_and_group() {
    let identity = |text: &str| unit_identity(&UnitFile::parse(text).unwrap(), &TestUsers);
    assert_eq!(identity("[Service]\nExecStart=/x\n"), Some((0, 0)));
    assert_eq!(identity("[Service]\nUser=1000\n"), Some((1000, 100)));
    assert_eq!(
        identity("[Service]\nUser=app\nGroup=staff\n"),
        Some((1001, 50))
    );
    assert_eq!(identity("[Service]\nUser=1001\nGroup=7\n"), Some((1001, 7)));
    assert_eq!(identity("[Service]\nUser=nobody-here\n"), None);
    assert_eq!(identity("[Service]\nUser=4242\n"), None);
    assert_eq!(identity("[Service]\nUser=app\nDynamicUser=yes\n"), None);
}

fn run(pod_ctx: PodSecurityContext, ctx: SecurityContext, vendor: &str) -> Result<UnitFile> {
    let pod = Pod {
        spec: Some(PodSpec {
            security_context: Some(pod_ctx),
            ..Default::default()
        }),
        ..Default::default()
    };
    let container = Container {
        name: "c".into(),
        security_context: Some(ctx),
        ..Default::default()
    };
    let mut unit = UnitFile::parse(&format!("[Service]\n{vendor}")).unwrap();
    apply_identity(&mut unit, &pod, &container, &TestUsers, &restricted())?;
    Ok(unit)
}

/// Groups 0 (root) and 42 (shadow) are restricted.
fn restricted() -> NodeSecurity {
    NodeSecurity {
        restricted_gids: [0, 42].into(),
        ..Default::default()
    }
}

fn user_group(unit: &UnitFile) -> (Option<&str>, Option<&str>) {
    (unit.get("Service", "User"), unit.get("Service", "Group"))
}

#[test]
fn container_overrides_pod_and_primary_group_is_looked_up() {
    let pod = PodSecurityContext {
        run_as_user: Some(1001),
        run_as_group: Some(5),
        ..Default::default()
    };
    let unit = run(
        pod,
        SecurityContext {
            run_as_user: Some(1000),
            ..Default::default()
        },
        "User=daemon\nDynamicUser=yes\n",
    )
    .unwrap();
    assert_eq!(user_group(&unit), (Some("1000"), Some("5")));
    assert_eq!(unit.get("Service", "DynamicUser"), None);
    let unit = run(
        Default::default(),
        SecurityContext {
            run_as_user: Some(1000),
            ..Default::default()
        },
        "",
    )
    .unwrap();
    assert_eq!(user_group(&unit), (Some("1000"), Some("100")));
}

#[test]
fn vendor_user_stays_without_pod_identity() {
    let unit = run(
        Default::default(),
        Default::default(),
        "User=daemon\nGroup=daemon\n",
    )
    .unwrap();
    assert_eq!(user_group(&unit), (Some("daemon"), Some("daemon")));
}

#[test]
fn run_as_user_name() {
    let windows = |name: &str| SecurityContext {
        windows_options: Some(WindowsSecurityContextOptions {
            run_as_user_name: Some(name.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let unit = run(Default::default(), windows("app"), "").unwrap();
    assert_eq!(user_group(&unit), (Some("app"), Some("1001")));
    for bad in ["nobody-here", "root\nUser=0", "-x", "", "a b"] {
        assert!(
            run(Default::default(), windows(bad), "").is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn invalid_ids_and_unknown_groups() {
    for uid in [-1, 65_535, 4_294_967_295, 1 << 40] {
        let ctx = SecurityContext {
            run_as_user: Some(uid),
            run_as_group: Some(1),
            ..Default::default()
        };
        assert!(run(Default::default(), ctx, "").is_err(), "{uid}");
    }
    let unknown = SecurityContext {
        run_as_user: Some(4242),
        ..Default::default()
    };
    assert!(run(Default::default(), unknown, "").is_err());
}

#[test]
fn run_as_non_root() {
    let non_root = |uid| SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: uid,
        ..Default::default()
    };
    assert!(run(Default::default(), non_root(Some(0)), "").is_err());
    assert!(run(Default::default(), non_root(None), "").is_err());
    assert!(run(Default::default(), non_root(None), "User=nosuch\n").is_err());
    assert!(run(Default::default(), non_root(None), "User=daemon\n").is_ok());
    assert!(run(Default::default(), non_root(Some(1000)), "").is_ok());
}

#[test]
fn system_users_reads_the_host_database() {
    assert_eq!(SystemUsers.user_by_name("root"), Some((0, 0)));
    assert_eq!(SystemUsers.primary_group(0), Some(0));
    assert_eq!(SystemUsers.user_by_name("no-such-user-systemk"), None);
}

#[test]
fn supplementary_groups() {
    let pod = PodSecurityContext {
        supplemental_groups: Some(vec![10, 20]),
        fs_group: Some(30),
        ..Default::default()
    };
    let unit = run(pod, Default::default(), "").unwrap();
    assert_eq!(unit.get("Service", "SupplementaryGroups"), Some("10 20 30"));
}

#[test]
fn users_and_groups_unknown_to_the_node_are_refused_with_the_fix() {
    let user = SecurityContext {
        run_as_user: Some(4242),
        run_as_group: Some(100),
        ..Default::default()
    };
    let err = run(Default::default(), user, "").unwrap_err().to_string();
    assert!(err.contains("runAsUser 4242 has no entry"), "{err}");
    assert!(err.contains("useradd --system --uid 4242"), "{err}");
    let group = SecurityContext {
        run_as_user: Some(1000),
        run_as_group: Some(4242),
        ..Default::default()
    };
    let err = run(Default::default(), group, "").unwrap_err().to_string();
    assert!(err.contains("runAsGroup 4242 has no entry"), "{err}");
    let fs_group = PodSecurityContext {
        fs_group: Some(4242),
        ..Default::default()
    };
    let err = run(fs_group, Default::default(), "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("groupadd --system --gid 4242"), "{err}");
}

#[test]
fn restricted_groups_need_privileged() {
    let cases = [
        (
            PodSecurityContext {
                supplemental_groups: Some(vec![10, 42]),
                ..Default::default()
            },
            SecurityContext::default(),
        ),
        (
            PodSecurityContext {
                fs_group: Some(42),
                ..Default::default()
            },
            SecurityContext::default(),
        ),
        (
            PodSecurityContext::default(),
            SecurityContext {
                run_as_user: Some(1001),
                run_as_group: Some(0),
                ..Default::default()
            },
        ),
        (
            PodSecurityContext {
                run_as_group: Some(42),
                ..Default::default()
            },
            SecurityContext::default(),
        ),
    ];
    for (pod, ctx) in cases {
        let err = run(pod.clone(), ctx.clone(), "").unwrap_err().to_string();
        assert!(err.contains("restricted group"), "{err}");
        let privileged = SecurityContext {
            privileged: Some(true),
            ..ctx
        };
        assert!(run(pod, privileged, "").is_ok());
    }
}

#[test]
fn root_keeps_its_own_primary_group() {
    let root = SecurityContext {
        run_as_user: Some(0),
        ..Default::default()
    };
    assert_eq!(
        user_group(&run(Default::default(), root.clone(), "").unwrap()),
        (Some("0"), Some("0"))
    );
    let root_group = SecurityContext {
        run_as_group: Some(0),
        ..root
    };
    assert!(run(Default::default(), root_group, "").is_ok());
}
