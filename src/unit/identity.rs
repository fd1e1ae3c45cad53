//! The user and groups a container runs as, from its `securityContext` (which overrides
//! the pod's): `runAsUser` → `User=<uid>`; `runAsGroup` → `Group=<gid>`, else the
//! user's primary group from the user database; `windowsOptions.runAsUserName` (only
//! when no `runAsUser` is set) → `User=<name>` with that user's primary group;
//! `supplementalGroups` and `fsGroup` → `SupplementaryGroups=`. When the pod sets no
//! user, the vendor unit's `User=`/`Group=` stay, so packaged daemons keep their
//! account. `runAsNonRoot` is enforced against whichever user results.
//!
//! The user database is behind [`UserDb`] so building stays testable; [`SystemUsers`]
//! (NSS via `getpwuid_r`/`getpwnam_r`) is the one lookup in this layer.
//!
//! Layer 2: pure apart from [`SystemUsers`].

use k8s_openapi::api::core::v1::{Container, Pod};
use nix::unistd::{Gid, Group, Uid, User};

use super::error::{Error, Result};
use super::file::UnitFile;

/// systemd refuses these as user or group ids: `(uid_t) -1` and its 16-bit form.
const INVALID_IDS: [u32; 2] = [u32::MAX, 65_535];
/// Longest user name `useradd` accepts on Debian.
const USER_NAME_MAX: usize = 32;

/// The user database lookups the builder needs.
pub trait UserDb {
    /// The primary group of the user with this uid, if the user exists.
    fn primary_group(&self, uid: u32) -> Option<u32>;
    /// `(uid, primary gid)` of the user with this name, if it exists.
    fn user_by_name(&self, name: &str) -> Option<(u32, u32)>;
    /// The gid of the group with this name, if it exists.
    fn group_by_name(&self, name: &str) -> Option<u32>;
    /// Whether a group with this gid exists.
    fn group_exists(&self, gid: u32) -> bool;
}

/// The host's user database (NSS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemUsers;

impl UserDb for SystemUsers {
    fn primary_group(&self, uid: u32) -> Option<u32> {
        User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|user| user.gid.as_raw())
    }

    fn user_by_name(&self, name: &str) -> Option<(u32, u32)> {
        User::from_name(name)
            .ok()
            .flatten()
            .map(|user| (user.uid.as_raw(), user.gid.as_raw()))
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        Group::from_name(name)
            .ok()
            .flatten()
            .map(|group| group.gid.as_raw())
    }

    fn group_exists(&self, gid: u32) -> bool {
        Group::from_gid(Gid::from_raw(gid)).ok().flatten().is_some()
    }
}

/// Sets `User=`, `Group=` and `SupplementaryGroups=` in `unit`'s `[Service]`, which
/// already holds the vendor's directives.
pub fn apply_identity(
    unit: &mut UnitFile,
    pod: &Pod,
    container: &Container,
    users: &dyn UserDb,
) -> Result<()> {
    let name = container.name.as_str();
    let pod_ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let ctx = container.security_context.as_ref();
    let run_as_user = ctx
        .and_then(|c| c.run_as_user)
        .or(pod_ctx.and_then(|c| c.run_as_user));
    let run_as_group = ctx
        .and_then(|c| c.run_as_group)
        .or(pod_ctx.and_then(|c| c.run_as_group));
    let user_name = ctx
        .and_then(|c| c.windows_options.as_ref())
        .or(pod_ctx.and_then(|c| c.windows_options.as_ref()))
        .and_then(|w| w.run_as_user_name.as_deref());
    let non_root = ctx
        .and_then(|c| c.run_as_non_root)
        .or(pod_ctx.and_then(|c| c.run_as_non_root));

    let group = run_as_group
        .map(|gid| known_group(name, "runAsGroup", gid, users))
        .transpose()?;
    let (user, primary) = match (run_as_user, user_name) {
        (Some(uid), _) => {
            let uid = id(name, "runAsUser", uid)?;
            let primary = users.primary_group(uid).ok_or_else(|| {
                identity_error(
                    name,
                    format!(
                        "runAsUser {uid} has no entry in this node's user database, and systemd runs units only as known users (create it, e.g. useradd --system --uid {uid} <name>)"
                    ),
                )
            })?;
            (Some((uid.to_string(), uid)), Some(primary))
        }
        (None, Some(user)) => {
            check_user_name(name, user)?;
            let (uid, gid) = users.user_by_name(user).ok_or_else(|| {
                identity_error(
                    name,
                    format!("runAsUserName {user:?}: no such user on this node"),
                )
            })?;
            (Some((user.to_owned(), uid)), Some(gid))
        }
        (None, None) => (None, None),
    };
    if let Some((user, uid)) = &user {
        let group = group
            .or(primary)
            .ok_or_else(|| identity_error(name, format!("user {uid} has no primary group")))?;
        unit.remove("Service", "DynamicUser");
        unit.set("Service", "User", user.clone())?;
        unit.set("Service", "Group", group.to_string())?;
    } else if let Some(group) = group {
        unit.set("Service", "Group", group.to_string())?;
    }
    if non_root == Some(true) {
        check_non_root(unit, name, user.map(|(_, uid)| uid), users)?;
    }
    let supplementary = pod_ctx
        .map(|c| {
            c.supplemental_groups
                .iter()
                .flatten()
                .chain(c.fs_group.as_ref())
        })
        .into_iter()
        .flatten()
        .map(|&gid| {
            known_group(name, "supplementalGroups/fsGroup", gid, users).map(|g| g.to_string())
        })
        .collect::<Result<Vec<_>>>()?;
    if !supplementary.is_empty() {
        unit.add("Service", "SupplementaryGroups", supplementary.join(" "))?;
    }
    Ok(())
}

/// The uid and gid a built unit runs as: its `User=` and `Group=` (numbers or names),
/// the user's primary group when no `Group=` is set, root without `User=`. `None` when
/// that cannot be known: a user or group missing from the user database, or
/// `DynamicUser=` (systemd picks the id when the unit starts).
pub fn unit_identity(unit: &UnitFile, users: &dyn UserDb) -> Option<(u32, u32)> {
    if unit
        .get("Service", "DynamicUser")
        .is_some_and(|value| matches!(value, "yes" | "true" | "on" | "1"))
    {
        return None;
    }
    let (uid, primary) = match unit.get("Service", "User") {
        None | Some("") => (0, Some(0)),
        Some(user) => match user.parse::<u32>() {
            Ok(uid) => (uid, users.primary_group(uid)),
            Err(_) => users
                .user_by_name(user)
                .map(|(uid, gid)| (uid, Some(gid)))?,
        },
    };
    let gid = match unit.get("Service", "Group") {
        None | Some("") => primary?,
        Some(group) => group
            .parse::<u32>()
            .ok()
            .or_else(|| users.group_by_name(group))?,
    };
    Some((uid, gid))
}

/// `runAsNonRoot`: the resulting user must be known and not root, like the kubelet's
/// check of an image user.
fn check_non_root(
    unit: &UnitFile,
    container: &str,
    uid: Option<u32>,
    users: &dyn UserDb,
) -> Result<()> {
    let uid = match uid {
        Some(uid) => Some(uid),
        None => match unit.get("Service", "User") {
            None | Some("") => Some(0),
            Some(user) => user
                .parse()
                .ok()
                .or_else(|| users.user_by_name(user).map(|(uid, _)| uid)),
        },
    };
    match uid {
        Some(0) => Err(identity_error(
            container,
            "runAsNonRoot is set but the container would run as root".to_owned(),
        )),
        Some(_) => Ok(()),
        None => Err(identity_error(
            container,
            "runAsNonRoot is set but the vendor unit's user is unknown, so it cannot be verified"
                .to_owned(),
        )),
    }
}

fn id(container: &str, field: &str, value: i64) -> Result<u32> {
    u32::try_from(value)
        .ok()
        .filter(|id| !INVALID_IDS.contains(id))
        .ok_or_else(|| identity_error(container, format!("{field} {value} is not a valid id")))
}

fn check_user_name(container: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= USER_NAME_MAX
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(identity_error(
            container,
            format!("runAsUserName {name:?} is not a valid Unix user name"),
        ))
    }
}

/// A gid from the spec that the node knows: systemd refuses to start a unit whose
/// `Group=` or `SupplementaryGroups=` names a group without an entry (exit 216/GROUP).
fn known_group(container: &str, field: &str, value: i64, users: &dyn UserDb) -> Result<u32> {
    let gid = id(container, field, value)?;
    if users.group_exists(gid) {
        Ok(gid)
    } else {
        Err(identity_error(
            container,
            format!(
                "{field} {gid} has no entry in this node's group database, and systemd starts units only with known groups (create it, e.g. groupadd --system --gid {gid} <name>)"
            ),
        ))
    }
}

fn identity_error(container: &str, why: String) -> Error {
    Error::InvalidIdentity {
        container: container.to_owned(),
        why,
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
        apply_identity(&mut unit, &pod, &container, &TestUsers)?;
        Ok(unit)
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
}
