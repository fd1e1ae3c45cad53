//! Who owns a volume's files: the user the containers mounting it run as, so a secret of
//! mode 0400 stays readable by its daemon. When those containers run as different users
//! (or one's user cannot be known), root owns them, as the kubelet's files are. The
//! pod's `fsGroup` is the group when set, as the kubelet's; else the user's group. Pure.
//! Layer 4.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use super::atomic::FileOwner;
use crate::pod::containers;

/// The owner of the files of the volume `volume` of `pod`. `identities` holds each
/// container's `(uid, gid)` by name, `None` when it cannot be known.
pub fn volume_owner(
    pod: &Pod,
    volume: &str,
    identities: &HashMap<String, Option<(u32, u32)>>,
) -> FileOwner {
    let mut mounting = containers(pod).into_iter().filter(|c| {
        c.container
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == volume)
    });
    let identity_of = |name: &str| identities.get(name).copied().flatten();
    let first = mounting.next().and_then(|c| identity_of(&c.container.name));
    let agreed = first.filter(|first| {
        mounting.all(|c| identity_of(&c.container.name).is_some_and(|id| id.0 == first.0))
    });
    let (uid, gid) = agreed.unwrap_or((0, 0));
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|c| c.fs_group)
        .and_then(|gid| u32::try_from(gid).ok());
    FileOwner {
        uid,
        gid: fs_group.unwrap_or(gid),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, VolumeMount};

    use super::*;

    fn mounting(name: &str, volume: &str) -> Container {
        Container {
            name: name.into(),
            volume_mounts: Some(vec![VolumeMount {
                name: volume.into(),
                mount_path: "/v".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn pod(fs_group: Option<i64>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![
                    mounting("app", "cfg"),
                    mounting("sidecar", "cfg"),
                    mounting("other", "creds"),
                ],
                security_context: Some(PodSecurityContext {
                    fs_group,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ids(entries: &[(&str, Option<(u32, u32)>)]) -> HashMap<String, Option<(u32, u32)>> {
        entries
            .iter()
            .map(|(name, id)| ((*name).to_owned(), *id))
            .collect()
    }

    #[test]
    fn the_user_of_the_mounting_containers_owns_the_files() {
        let same = ids(&[
            ("app", Some((1000, 100))),
            ("sidecar", Some((1000, 100))),
            ("other", Some((0, 0))),
        ]);
        assert_eq!(
            volume_owner(&pod(None), "cfg", &same),
            FileOwner {
                uid: 1000,
                gid: 100
            }
        );
        assert_eq!(
            volume_owner(&pod(Some(2000)), "cfg", &same),
            FileOwner {
                uid: 1000,
                gid: 2000
            }
        );
    }

    #[test]
    fn disagreeing_or_unknown_users_leave_the_files_to_root() {
        let differ = ids(&[("app", Some((1000, 100))), ("sidecar", Some((1001, 100)))]);
        let unknown = ids(&[("app", Some((1000, 100))), ("sidecar", None)]);
        for identities in [differ, unknown] {
            assert_eq!(
                volume_owner(&pod(Some(5)), "cfg", &identities),
                FileOwner { uid: 0, gid: 5 }
            );
        }
        assert_eq!(
            volume_owner(&pod(None), "unmounted", &HashMap::new()),
            FileOwner { uid: 0, gid: 0 }
        );
    }
}
