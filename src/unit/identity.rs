//! The user and groups a container runs as, from its `securityContext` (which overrides
//! the pod's): `runAsUser` → `User=<uid>`; `runAsGroup` → `Group=<gid>`, else the
//! user's primary group from the user database; `windowsOptions.runAsUserName` (only
//! when no `runAsUser` is set) → `User=<name>` with that user's primary group;
//! `supplementalGroups` and `fsGroup` → `SupplementaryGroups=`. When the pod sets no
//! user, the vendor unit's `User=`/`Group=` stay, so packaged daemons keep their
//! account. `runAsNonRoot` is enforced against whichever user results.
//!
//! Pod ids are host ids: a group the pod takes grants what that group grants on the
//! host. So the groups a pod asks for — `runAsGroup` (or the primary group of the
//! `runAsUser` it names), `supplementalGroups`, `fsGroup` — must not be one of the
//! node's restricted groups ([`NodeSecurity::restricted_gids`]: root, shadow, disk, …
//! and every group owning a device node, by default) unless the container is
//! privileged. Root's own primary group 0 stays allowed for `runAsUser: 0`: a root
//! process holds it anyway.
//!
//! The user database is behind [`UserDb`] so building stays testable; [`SystemUsers`]
//! (NSS via `getpwuid_r`/`getpwnam_r`) is the one lookup in this layer.
//!
//! Layer 2: pure apart from [`SystemUsers`].

use k8s_openapi::api::core::v1::{Container, Pod};
use nix::unistd::{Gid, Group, Uid, User};

use super::confinement::{Effective, NodeSecurity};
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
    security: &NodeSecurity,
) -> Result<()> {
    let name = container.name.as_str();
    let privileged = Effective::of(pod, container).privileged();
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
        let root_keeps_its_group = *uid == 0 && group == 0;
        if !(privileged || root_keeps_its_group) {
            check_unrestricted(
                name,
                "runAsGroup (or the primary group of runAsUser)",
                group,
                security,
            )?;
        }
        unit.remove("Service", "DynamicUser");
        unit.set("Service", "User", user.clone())?;
        unit.set("Service", "Group", group.to_string())?;
    } else if let Some(group) = group {
        if !privileged {
            check_unrestricted(name, "runAsGroup", group, security)?;
        }
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
            let gid = known_group(name, "supplementalGroups/fsGroup", gid, users)?;
            if !privileged {
                check_unrestricted(name, "supplementalGroups/fsGroup", gid, security)?;
            }
            Ok(gid.to_string())
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

/// A group a pod asks for must not be one of the node's restricted groups.
fn check_unrestricted(
    container: &str,
    field: &str,
    gid: u32,
    security: &NodeSecurity,
) -> Result<()> {
    if security.restricted_gids.contains(&gid) {
        return Err(identity_error(
            container,
            format!(
                "{field} {gid} is a restricted group of this node (it grants host credentials or devices); only a privileged container may take it"
            ),
        ));
    }
    Ok(())
}

fn identity_error(container: &str, why: String) -> Error {
    Error::InvalidIdentity {
        container: container.to_owned(),
        why,
    }
}

#[cfg(test)]
pub(crate) mod tests;
