//! `build`: one container of a pod → the unit file that runs it. Pure: everything it
//! needs (the vendor unit, the package's state dirs, node facts, the user database)
//! comes in through [`BuildInput`].
//!
//! The unit keeps the vendor's `[Service]` directives (Type, User, Group, PIDFile,
//! RuntimeDirectory, Environment, ExecStartPre/Post, ExecReload, ExecStop, KillMode,
//! KillSignal, …) except those systemk owns; a vendor `Exec*=` command with a `+`, `!`,
//! `!!` or `@` prefix refuses the unit (`exec/vendor_lines.rs`).
//!
//! - `ExecStart=`, composed by `exec.rs`; a synthesised unit is `Type=exec`, so a
//!   missing binary fails the start job instead of a started-then-failed unit.
//! - Restarts: `Restart=no` — systemk restarts with the kubelet's back-off, because
//!   systemd 252 has none. `StartLimitIntervalSec=0` in `[Unit]`, so systemd's start
//!   limit never leaves a unit stuck in `failed`. `RemainAfterExit=yes`, so a finished
//!   container stays `active (exited)` with its exit status readable (the caller
//!   restarts with RestartUnit: StartUnit on such a unit does nothing).
//! - The sandbox (`hardening.rs`), identity (`identity.rs`), `WorkingDirectory=` from
//!   `workingDir`, environment (`env.rs`), bind mounts (`volumes.rs`) and cgroup limits
//!   (`resources.rs`); `Slice=` the pod's own slice (`pod_slice.rs`), the vendor's slice
//!   dropped.
//! - Stopping: `TimeoutStopSec=` = `terminationGracePeriodSeconds` (default 30),
//!   `SendSIGKILL=yes`; `KillSignal=` stays the vendor's (the package's equivalent of an
//!   image's STOPSIGNAL), else `SIGTERM`; a grace of 0 kills with `SIGKILL` at once.
//! - Standard input: none, but with `stdin: true` the container's socket unit
//!   (`stdin.rs`, `StandardInput=socket`).
//! - Logs: `StandardOutput=journal`, `StandardError=journal`,
//!   `SyslogIdentifier=<container>`, `LogExtraFields=SYSTEMK_POD_UID=<uid>` so logs of
//!   one pod instance can be told from an earlier pod of the same name.
//!
//! From the vendor's `[Unit]` only `Documentation=`, `After=` and `Wants=` are kept:
//! conditions would silently skip the container and `Requires=`/`BindsTo=` would tie it
//! to vendor units systemk disables. The vendor's `[Install]` is replaced by
//! `WantedBy=multi-user.target`, so pods come back after a reboot without systemk.
//! `[X-Kubernetes]` comes last and seals the unit with its SpecHash (`meta.rs`).
//!
//! Layer 2: pure.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::confinement::{Effective, NodeSecurity, apply_confinement};
use super::env::{NodeInfo, env_file, env_file_path, environment_words};
use super::error::{Error, Result};
use super::escape::environment;
use super::exec::{check_vendor_exec_lines, compose_exec_start};
use super::file::UnitFile;
use super::hardening::apply_hardening;
use super::identity::{UserDb, apply_identity};
use super::meta::{KubernetesMeta, RestartPolicy};
use super::name::UnitName;
use super::path;
use super::pod_order;
use super::pod_slice::SliceName;
use super::resources::resource_directives;
use super::run_dir::{apply_private_run, run_dir_path};
use super::stdin::{apply_stdin, wants_stdin};
use super::termination_log::container_mounts;

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// `[Service]` directives systemk sets itself; the vendor's are dropped.
const OWNED_SERVICE_KEYS: &[&str] = &[
    "ExecStart",
    "Restart",
    "RestartSec",
    "RestartPreventExitStatus",
    "RestartForceExitStatus",
    "StartLimitInterval",
    "StartLimitIntervalSec",
    "StartLimitBurst",
    "StartLimitAction",
    "RemainAfterExit",
    "TimeoutStopSec",
    "SendSIGKILL",
    "StandardInput",
    "StandardOutput",
    "StandardError",
    "SyslogIdentifier",
    "Slice",
];

/// Vendor `[Unit]` directives carried over.
const KEPT_UNIT_KEYS: &[&str] = &["Documentation", "After", "Wants"];

/// Everything [`build`] needs, as plain data.
#[derive(Clone, Copy)]
pub struct BuildInput<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The container of that pod to build a unit for.
    pub container: &'a Container,
    /// Whether `container` is one of the pod's `initContainers`.
    pub init_container: bool,
    /// Its position in `initContainers` or `containers`.
    pub container_index: usize,
    /// What the image resolved to (`<package>=<version>`, `sha256:<hex>`).
    pub image_id: &'a str,
    /// The package's service unit, parsed, if it has one.
    pub vendor_unit: Option<&'a UnitFile>,
    /// Package-owned state directories to make writable.
    pub writable_dirs: &'a [PathBuf],
    /// Facts about this node.
    pub node: &'a NodeInfo,
    /// The pod's state directory (`/var/lib/systemk/pods/<uid>`).
    pub pod_dir: &'a Path,
    /// The pod's runtime directory on tmpfs (`/run/systemk/pods/<uid>`): its environment
    /// files, secret and projected volumes, staged `subPath`s.
    pub runtime_pod_dir: &'a Path,
    /// The user database, for primary groups.
    pub users: &'a dyn UserDb,
    /// What the node keeps from its pods.
    pub security: &'a NodeSecurity,
    /// The pod's slice ([`SliceName::for_pod`]).
    pub slice: &'a SliceName,
}

/// The unit file for one container of a pod.
pub fn build(input: &BuildInput<'_>) -> Result<UnitFile> {
    let BuildInput {
        pod,
        container,
        vendor_unit,
        ..
    } = *input;
    let metadata = &pod.metadata;
    let namespace = metadata.namespace.as_deref().unwrap_or("default");
    let pod_name = metadata.name.as_deref().unwrap_or_default();
    let name = UnitName::for_container(namespace, pod_name, &container.name)?;
    let pod_uid = metadata
        .uid
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::Unsupported {
            what: format!("pod {namespace}/{pod_name} without metadata.uid"),
        })?;
    let spec = pod.spec.as_ref();
    let restart_policy = match spec.and_then(|s| s.restart_policy.as_deref()) {
        None => RestartPolicy::default(),
        Some(text) => text.parse().map_err(|_| Error::Unsupported {
            what: format!("restartPolicy {text:?}"),
        })?,
    };

    let mut unit = UnitFile::new();
    unit.add(
        "Unit",
        "Description",
        format!(
            "systemk pod {namespace}/{pod_name} container {}",
            container.name
        ),
    )?;
    if let Some(section) = vendor_unit.and_then(|v| v.section("Unit")) {
        for (key, value) in section
            .entries()
            .filter(|(k, _)| KEPT_UNIT_KEYS.contains(k))
        {
            unit.add("Unit", key, value)?;
        }
    }
    unit.add("Unit", "StartLimitIntervalSec", "0")?;
    let before = pod_order::units_before(pod, input.init_container, input.container_index)?;
    pod_order::order_after(&mut unit, &before)?;

    unit.ensure_section("Service")?;
    if let Some(vendor) = vendor_unit {
        check_vendor_exec_lines(vendor)?;
    }
    match vendor_unit.and_then(|v| v.section("Service")) {
        Some(section) => {
            for (key, value) in section
                .entries()
                .filter(|(k, _)| !OWNED_SERVICE_KEYS.contains(k))
            {
                unit.add("Service", key, value)?;
            }
        }
        None if pod_order::runs_to_completion(container, input.init_container) => {
            unit.add("Service", "Type", "oneshot")?;
        }
        None => unit.add("Service", "Type", "exec")?,
    }
    let command = container.command.as_deref().unwrap_or_default();
    let args = container.args.as_deref().unwrap_or_default();
    unit.add(
        "Service",
        "ExecStart",
        compose_exec_start(&container.name, command, args, vendor_unit)?,
    )?;
    unit.add("Service", "Restart", "no")?;
    unit.add("Service", "RemainAfterExit", "yes")?;
    apply_identity(&mut unit, pod, container, input.users, input.security)?;
    if let Some(dir) = container.working_dir.as_deref().filter(|d| !d.is_empty()) {
        let dir = path::absolute(&format!("workingDir of container {}", container.name), dir)?;
        unit.set("Service", "WorkingDirectory", path::directive(&dir))?;
    }
    for word in environment_words(input.node)? {
        unit.add("Service", "Environment", word)?;
    }
    // After the vendor's EnvironmentFile= lines, so the pod's values win (see env.rs).
    if env_file(container)?.is_some() {
        let path = env_file_path(input.runtime_pod_dir, &container.name);
        let path = path.to_str().ok_or_else(|| Error::Unsupported {
            what: format!("runtime directory {} that is not UTF-8", path.display()),
        })?;
        let path = path::absolute("environment file", path)?;
        unit.add("Service", "EnvironmentFile", path::directive(&path))?;
    }
    let host_ipc = spec.and_then(|s| s.host_ipc) == Some(true);
    apply_hardening(&mut unit, container, input.writable_dirs, host_ipc)?;
    apply_confinement(&mut unit, pod, container, input.security)?;
    let dirs = (input.pod_dir, input.runtime_pod_dir);
    for mount in container_mounts(pod, container, dirs, input.security)? {
        let (key, value) = mount.directive();
        unit.add("Service", key, value)?;
    }
    // Last of the mounts: it checks every mount target in /run.
    apply_private_run(
        &mut unit,
        &run_dir_path(input.pod_dir, &container.name),
        input.writable_dirs,
        Effective::of(pod, container).privileged(),
    )?;
    for (key, value) in resource_directives(container)? {
        unit.add("Service", key, value)?;
    }
    // Every container runs in its pod's slice, below its QoS slice and systemk.slice,
    // whose limits keep reserved resources for the host.
    unit.add("Service", "Slice", input.slice.as_str())?;
    let grace = spec
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace == 0 {
        unit.set("Service", "KillSignal", "SIGKILL")?;
    } else if unit.get("Service", "KillSignal").is_none() {
        unit.add("Service", "KillSignal", "SIGTERM")?;
    }
    // The API server turns a negative grace into 1 s; 0 would mean "no timeout" to systemd.
    unit.add("Service", "TimeoutStopSec", format!("{}s", grace.max(1)))?;
    unit.add("Service", "SendSIGKILL", "yes")?;
    if wants_stdin(container) {
        apply_stdin(&mut unit, &name)?;
    }
    // Explicit: with StandardInput=socket both would default to the socket.
    unit.add("Service", "StandardOutput", "journal")?;
    unit.add("Service", "StandardError", "journal")?;
    unit.add("Service", "SyslogIdentifier", container.name.as_str())?;
    unit.add(
        "Service",
        "LogExtraFields",
        environment("SYSTEMK_POD_UID", pod_uid)?,
    )?;

    unit.add("Install", "WantedBy", "multi-user.target")?;

    let mut meta = KubernetesMeta {
        namespace: namespace.to_owned(),
        pod_name: pod_name.to_owned(),
        pod_uid: pod_uid.to_owned(),
        container: container.name.clone(),
        container_index: input.container_index,
        init_container: input.init_container,
        image: container.image.clone().unwrap_or_default(),
        image_id: input.image_id.to_owned(),
        restart_policy,
        spec_hash: String::new(),
    };
    meta.write_to(&mut unit)?;
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::super::identity::tests::TestUsers;
    use super::*;

    fn pod(uid: Option<&str>, spec: PodSpec) -> Pod {
        let container = Container {
            name: "c".into(),
            command: Some(vec!["/bin/true".into()]),
            ..Default::default()
        };
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                uid: uid.map(Into::into),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![container],
                ..spec
            }),
            ..Default::default()
        }
    }

    fn build_pod(pod: &Pod, vendor: Option<&UnitFile>) -> Result<UnitFile> {
        build_in(pod, vendor, &SliceName::root())
    }

    fn build_in(pod: &Pod, vendor: Option<&UnitFile>, slice: &SliceName) -> Result<UnitFile> {
        build(&BuildInput {
            pod,
            container: &pod.spec.as_ref().unwrap().containers[0],
            init_container: false,
            container_index: 0,
            image_id: "",
            vendor_unit: vendor,
            writable_dirs: &[],
            node: &NodeInfo::default(),
            pod_dir: Path::new("/p"),
            runtime_pod_dir: Path::new("/r"),
            users: &TestUsers,
            slice,
            security: &NodeSecurity::default(),
        })
    }

    #[test]
    fn namespace_defaults_and_uid_is_required() {
        let unit = build_pod(&pod(Some("u"), PodSpec::default()), None).unwrap();
        let meta = KubernetesMeta::from_unit(&unit).unwrap();
        assert_eq!(
            meta.unit_name().unwrap().as_str(),
            "systemk.default.p.c.service"
        );
        assert!(build_pod(&pod(None, PodSpec::default()), None).is_err());
        assert!(build_pod(&pod(Some(""), PodSpec::default()), None).is_err());
    }

    #[test]
    fn grace_period_edges() {
        let grace = |seconds| {
            let spec = PodSpec {
                termination_grace_period_seconds: seconds,
                ..Default::default()
            };
            let unit = build_pod(&pod(Some("u"), spec), None).unwrap();
            let get = |k| unit.get("Service", k).unwrap().to_owned();
            (get("KillSignal"), get("TimeoutStopSec"))
        };
        assert_eq!(grace(None), ("SIGTERM".into(), "30s".into()));
        assert_eq!(grace(Some(0)), ("SIGKILL".into(), "1s".into()));
        assert_eq!(grace(Some(-5)), ("SIGTERM".into(), "1s".into()));
        assert_eq!(grace(Some(90)), ("SIGTERM".into(), "90s".into()));
    }

    #[test]
    fn restart_policy_is_validated() {
        let spec = |policy: &str| PodSpec {
            restart_policy: Some(policy.into()),
            ..Default::default()
        };
        let unit = build_pod(&pod(Some("u"), spec("Never")), None).unwrap();
        assert_eq!(
            KubernetesMeta::from_unit(&unit).unwrap().restart_policy,
            RestartPolicy::Never
        );
        assert!(build_pod(&pod(Some("u"), spec("Sometimes")), None).is_err());
    }

    #[test]
    fn owned_vendor_directives_are_replaced() {
        let vendor = UnitFile::parse(
            "[Unit]\nConditionPathExists=/x\nBindsTo=y.service\n\
             [Service]\nRestart=always\nRemainAfterExit=no\nStandardOutput=null\n\
             StartLimitBurst=3\nSlice=vendor.slice\nExecStart=/bin/v\n[Install]\nWantedBy=graphical.target\n",
        )
        .unwrap();
        let unit = build_pod(&pod(Some("u"), PodSpec::default()), Some(&vendor)).unwrap();
        assert_eq!(unit.get_all("Service", "Restart"), ["no"]);
        assert_eq!(unit.get_all("Service", "RemainAfterExit"), ["yes"]);
        assert_eq!(unit.get_all("Service", "StandardOutput"), ["journal"]);
        assert_eq!(unit.get("Service", "StartLimitBurst"), None);
        assert_eq!(unit.get("Unit", "ConditionPathExists"), None);
        assert_eq!(unit.get("Unit", "BindsTo"), None);
        assert_eq!(unit.get_all("Install", "WantedBy"), ["multi-user.target"]);
        assert_eq!(unit.get("Service", "Type"), None);
        assert_eq!(unit.get_all("Service", "Slice"), ["systemk.slice"]);
        let pod_slice = SliceName::for_pod(super::super::QosTier::BestEffort, "ab-1").unwrap();
        let unit = build_in(
            &pod(Some("u"), PodSpec::default()),
            Some(&vendor),
            &pod_slice,
        )
        .unwrap();
        assert_eq!(
            unit.get_all("Service", "Slice"),
            ["systemk-besteffort-podab_1.slice"]
        );
    }
}
