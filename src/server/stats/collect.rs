//! Reading one [`Sample`]: the node's figures ([`super::host`]), each running container's
//! unit cgroup and its pod's slice ([`Cgroups`]), and the emptyDir, configMap and secret
//! volumes of each pod below its directories. Only containers with a cgroup (running)
//! are read, as the kubelet lists only containers cAdvisor sees. Blocking: call it off
//! the runtime. Layer 6.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, Volume};
use k8s_openapi::jiff::Timestamp;

use super::host;
use super::summary::{ContainerSample, PodReference, PodSample, Sample};
use crate::pod::PodDirs;
use crate::pod::eviction::monitor::dir_usage;
use crate::systemd::{Cgroups, ManagedUnit};
use crate::unit::{api_volume_path, empty_dir_path, is_dns_label};

/// Reads everything at `time` for node `node_name`.
pub fn sample(
    node_name: &str,
    time: Timestamp,
    units: &[ManagedUnit],
    dirs: &PodDirs,
    cgroups: &Cgroups,
) -> Sample {
    let stat = host::read("/proc/stat");
    let mut pods: BTreeMap<&str, PodSample> = BTreeMap::new();
    for unit in units.iter().filter(|u| !u.status.control_group.is_empty()) {
        let meta = &unit.meta;
        let pod = pods
            .entry(meta.pod_uid.as_str())
            .or_insert_with(|| PodSample {
                pod_ref: PodReference {
                    name: meta.pod_name.clone(),
                    namespace: meta.namespace.clone(),
                    uid: meta.pod_uid.clone(),
                },
                ..PodSample::default()
            });
        let cgroup = &unit.status.control_group;
        if pod.usage.is_none()
            && let Some(slice) = pod_slice(cgroup, &meta.pod_uid)
        {
            pod.usage = Some((slice.to_owned(), cgroups.usage(slice)));
        }
        let started_us = match unit.status.exec_main_start_us {
            0 => unit.status.active_enter_us,
            us => us,
        };
        pod.containers.push(ContainerSample {
            name: meta.container.clone(),
            start_time: microseconds(started_us),
            cgroup: cgroup.clone(),
            usage: cgroups.usage(cgroup),
        });
    }
    let pods = pods
        .into_values()
        .map(|mut pod| {
            let saved = dirs.load_pod(&pod.pod_ref.uid);
            pod.start_time = saved
                .as_ref()
                .and_then(|p| p.status.as_ref()?.start_time.as_ref().map(|t| t.0))
                .or_else(|| pod.containers.iter().filter_map(|c| c.start_time).min());
            if let Some(saved) = &saved {
                pod.volumes = volumes(dirs, &pod.pod_ref.uid, saved);
            }
            pod
        })
        .collect();
    Sample {
        time,
        node_name: node_name.to_owned(),
        boot_time: host::boot_time(&stat),
        node_cpu_ns: host::cpu_ns(&stat),
        node_memory: host::memory(&host::read("/proc/meminfo"), &host::read("/proc/vmstat")),
        interfaces: host::interfaces(&host::read("/proc/net/dev")),
        node_fs: host::file_system(&dirs.state_dir()),
        image_fs: host::file_system(Path::new("/")),
        pods,
    }
}

/// The pod's slice: the parent of a container's cgroup, when it is that pod's slice
/// (`…-pod<uid with underscores>.slice`), never `systemk.slice` or a vendor's slice.
fn pod_slice<'a>(control_group: &'a str, uid: &str) -> Option<&'a str> {
    let (parent, _) = control_group.rsplit_once('/')?;
    let name = parent.rsplit('/').next()?;
    let mark = format!("-pod{}.slice", uid.replace('-', "_"));
    name.ends_with(&mark).then_some(parent)
}

/// A CLOCK_REALTIME µs timestamp of systemd; 0 is never.
fn microseconds(us: u64) -> Option<Timestamp> {
    let us = i64::try_from(us).ok().filter(|&us| us > 0)?;
    Timestamp::from_microsecond(us).ok()
}

/// The emptyDir, configMap and secret volumes of `pod` with their use.
fn volumes(dirs: &PodDirs, uid: &str, pod: &Pod) -> Vec<(String, host::FsUsage, u64, u64)> {
    let (pod_dir, runtime_dir) = (dirs.pod_dir(uid), dirs.runtime_pod_dir(uid));
    let path = |volume: &Volume| {
        if volume.empty_dir.is_some() {
            Some(empty_dir_path(&pod_dir, &volume.name))
        } else if volume.config_map.is_some() || volume.secret.is_some() {
            api_volume_path(&pod_dir, &runtime_dir, volume)
        } else {
            None
        }
    };
    let spec_volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    spec_volumes
        .into_iter()
        .flatten()
        // A saved pod passed admission; a name that is no DNS label never names a path.
        .filter(|volume| is_dns_label(&volume.name))
        .filter_map(|volume| {
            let dir = path(volume)?;
            let fs = host::file_system(&dir)?;
            let (bytes, inodes) = dir_usage(&dir)?;
            Some((volume.name.clone(), fs, bytes, inodes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_slice_is_its_containers_parent_named_for_its_uid() {
        let uid = "1234abcd-0000-4000-8000-00000000000f";
        let slice = "/systemk.slice/systemk-besteffort.slice/systemk-besteffort-pod1234abcd_0000_4000_8000_00000000000f.slice";
        let unit = format!("{slice}/systemk.shop.web.app.service");
        assert_eq!(pod_slice(&unit, uid), Some(slice));
        assert_eq!(
            pod_slice("/systemk.slice/systemk.shop.web.app.service", uid),
            None
        );
        let other =
            "/systemk.slice/systemk-pod99999999_0000_4000_8000_00000000000f.slice/x.service";
        assert_eq!(pod_slice(other, uid), None);
    }

    #[test]
    fn attack_a_volume_name_that_is_no_dns_label_names_no_path() {
        let root = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(&root.path().join("state"), &root.path().join("run"));
        let uid = "1234abcd-0000-4000-8000-00000000000f";
        let pod_dir = dirs.pod_dir(uid);
        std::fs::create_dir_all(empty_dir_path(&pod_dir, "cache")).unwrap();
        std::fs::write(empty_dir_path(&pod_dir, "cache").join("f"), b"x").unwrap();
        // What `../../..` would reach from the emptyDir directory.
        std::fs::create_dir_all(empty_dir_path(&pod_dir, "../../..")).unwrap();
        let pod: Pod = serde_json::from_value(serde_json::json!({"spec": {
            "containers": [],
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "../../..", "emptyDir": {}},
                {"name": "host", "hostPath": {"path": "/"}},
            ],
        }}))
        .unwrap();
        let found: Vec<String> = volumes(&dirs, uid, &pod)
            .into_iter()
            .map(|(name, _, bytes, inodes)| {
                assert!(bytes > 0 && inodes == 2, "{name}: {bytes} {inodes}");
                name
            })
            .collect();
        assert_eq!(found, ["cache"]);
    }

    #[test]
    fn a_start_of_zero_is_none() {
        assert_eq!(microseconds(0), None);
        assert_eq!(
            microseconds(1_700_000_000_000_000),
            Some(Timestamp::from_second(1_700_000_000).unwrap())
        );
    }
}
