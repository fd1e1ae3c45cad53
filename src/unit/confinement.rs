//! What confines a container beyond the baseline sandbox of `hardening.rs`: the pod's
//! and container's `securityContext` in their Kubernetes meaning, and the node's own
//! secrets kept out of reach. Every field is honoured or refused (but an explicit
//! `readOnlyRootFilesystem: false`, which `pod::fields` warns about)
//! (docs/units.md, "Confinement").
//!
//! An unprivileged container (the default) gets what a container runtime's default
//! gives, in systemd's terms:
//!
//! - the capability bounding set of `capabilities.rs`; the [`HOST_ROOT`] capabilities
//!   (`SYS_ADMIN`, `SYS_PTRACE`, …) cannot be added, since pods share the host's
//!   namespaces and they would make the pod the host's root;
//! - `PrivateDevices=yes`: a `/dev` with only the pseudo-devices; hostPath volumes of
//!   type `CharDevice`/`BlockDevice` add exactly those devices (`DeviceAllow=`);
//! - `ProtectKernelTunables=`, `ProtectKernelModules=`, `ProtectKernelLogs=`,
//!   `ProtectControlGroups=`, `ProtectClock=`, `ProtectHostname=`, `LockPersonality=`,
//!   except that a container holding `SYS_TIME`/`WAKE_ALARM` keeps the clock and one
//!   holding `SYSLOG` the kernel log (systemd would drop those capabilities again);
//! - the seccomp filter of `seccomp.rs`;
//! - `InaccessiblePaths=` over systemk's state, runtime and configuration directories,
//!   its kubeconfig and keys ([`NodeSecurity::hidden_paths`]), and over the host's control
//!   sockets (D-Bus, systemd's private socket, udev), through which root could ask
//!   systemd for an unconfined unit (those below `/run` are not in the container's own
//!   `/run` at all, and `run_dir.rs` drops their lines); hostPath volumes over those paths, or over `/proc`
//!   and `/sys` (which would bypass the read-only kernel tunables), are refused. The
//!   processes that hold systemk's secrets keep every capability, so a pod without
//!   `CAP_SYS_PTRACE` cannot open their `/proc/<pid>/root` either;
//! - `ProtectProc=ptraceable` unless `hostPID: true`: processes the pod could not ptrace
//!   (other users', and those with capabilities it lacks: systemk, systemd) are hidden;
//! - vendor units of `Type=dbus` are refused (they need the host's bus).
//!
//! `privileged: true` skips all of this and gives the baseline sandbox alone: root with
//! every capability on the host.
//!
//! Layer 2: pure.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Container, Pod, PodSecurityContext, SecurityContext, Volume,
};

use super::capabilities::{CapabilitySet, HOST_ROOT, vendor_ambient};
use super::error::{Error, Result};
use super::file::UnitFile;
use super::path;
use super::seccomp::SeccompProfile;

const SERVICE: &str = "Service";

/// Host sockets through which root could command the host: the system bus (systemd's
/// `StartTransientUnit`), systemd's private socket, udev's control socket, the SysV
/// `initctl` FIFO (a runlevel request powers the host off; a read-only mount does not
/// stop writes to a FIFO) and journald's control socket (rotate, flush, sync).
pub const HOST_CONTROL_SOCKETS: &[&str] = &[
    "/run/dbus/system_bus_socket",
    "/run/systemd/private",
    "/run/udev/control",
    "/run/initctl",
    "/run/systemd/journal/io.systemd.journal",
];

/// Pseudo file systems a hostPath must not re-expose writable at another path.
const KERNEL_PATHS: &[&str] = &["/proc", "/sys"];

/// What the node protects from its pods; the same for every pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSecurity {
    /// Absolute paths unprivileged pods never see: systemk's state, runtime and
    /// configuration directories, kubeconfig, keys.
    pub hidden_paths: Vec<String>,
    /// Group ids a pod may take (`runAsGroup`, `supplementalGroups`, `fsGroup`, the
    /// primary group of `runAsUser`) only when privileged.
    pub restricted_gids: BTreeSet<u32>,
    /// Whether the kernel enforces AppArmor, so `AppArmorProfile=` would hold.
    pub apparmor: bool,
}

/// The effective security settings of one container: the container's own, else the
/// pod's, as Kubernetes merges them.
pub(crate) struct Effective<'a> {
    pod: Option<&'a PodSecurityContext>,
    container: Option<&'a SecurityContext>,
}

impl<'a> Effective<'a> {
    pub(crate) fn of(pod: &'a Pod, container: &'a Container) -> Self {
        Self {
            pod: pod.spec.as_ref().and_then(|s| s.security_context.as_ref()),
            container: container.security_context.as_ref(),
        }
    }

    /// `privileged: true`.
    pub(crate) fn privileged(&self) -> bool {
        self.container.and_then(|c| c.privileged) == Some(true)
    }

    fn seccomp_type(&self) -> Option<&'a str> {
        self.container
            .and_then(|c| c.seccomp_profile.as_ref())
            .or(self.pod.and_then(|p| p.seccomp_profile.as_ref()))
            .map(|p| p.type_.as_str())
    }

    fn app_armor(&self) -> Option<&'a AppArmorProfile> {
        self.container
            .and_then(|c| c.app_armor_profile.as_ref())
            .or(self.pod.and_then(|p| p.app_armor_profile.as_ref()))
    }
}

/// The refusals of the confinement that depend on the pod spec alone (not on the node's
/// AppArmor, users or the vendor unit): admission runs them before any install, as the
/// kubelet refuses sysctls and host-process pods at admission; building the unit runs them
/// again for `systemk render`.
pub fn check_spec_confinement(pod: &Pod, container: &Container) -> Result<()> {
    let effective = Effective::of(pod, container);
    check_refused_fields(pod, container, &effective)?;
    SeccompProfile::from_spec(&container.name, effective.seccomp_type()).map(drop)
}

/// Applies the confinement to `unit`'s `[Service]`, which holds the vendor's directives
/// and the baseline sandbox.
pub fn apply_confinement(
    unit: &mut UnitFile,
    pod: &Pod,
    container: &Container,
    node: &NodeSecurity,
) -> Result<()> {
    let name = container.name.as_str();
    let effective = Effective::of(pod, container);
    check_refused_fields(pod, container, &effective)?;
    let seccomp = SeccompProfile::from_spec(name, effective.seccomp_type())?;
    let annotated = annotated_app_armor(pod, name);
    let app_armor = app_armor_profile(name, effective.app_armor().or(annotated.as_ref()), node)?;
    if let Some(profile) = app_armor {
        unit.set(SERVICE, "AppArmorProfile", profile)?;
    }
    let host_pid = pod.spec.as_ref().and_then(|s| s.host_pid) == Some(true);
    if !host_pid {
        // Not `invisible`: its hidepid mount exempts group 0 (the kernel's default
        // `gid=`), so a root pod would still see every process and its command line.
        unit.set(SERVICE, "ProtectProc", "ptraceable")?;
    }
    if effective.privileged() {
        return Ok(());
    }
    if unit.get(SERVICE, "Type") == Some("dbus") {
        return Err(Error::InvalidVendorUnit {
            line: "Type=dbus".to_owned(),
            why: "a D-Bus service needs the host's system bus, which only privileged pods \
                  reach",
        });
    }
    let capabilities = bounding_set(unit, container)?;
    unit.set(SERVICE, "CapabilityBoundingSet", capabilities.directive())?;
    let ambient = vendor_ambient(&unit.get_list(SERVICE, "AmbientCapabilities"))?;
    if let Some(ambient) = ambient {
        unit.set(
            SERVICE,
            "AmbientCapabilities",
            ambient.intersect(&capabilities).directive(),
        )?;
    }
    // A capability the pod holds lifts the protection that would take it away again, as
    // the runtimes' seccomp profile allows the calls of the capabilities a container has.
    let clock = capabilities.contains("SYS_TIME") || capabilities.contains("WAKE_ALARM");
    let kernel_log = capabilities.contains("SYSLOG");
    for (key, lifted) in [
        ("PrivateDevices", false),
        ("ProtectKernelTunables", false),
        ("ProtectKernelModules", false),
        ("ProtectKernelLogs", kernel_log),
        ("ProtectControlGroups", false),
        ("ProtectClock", clock),
        ("ProtectHostname", false),
        ("LockPersonality", false),
    ] {
        if !lifted {
            unit.set(SERVICE, key, "yes")?;
        }
    }
    let mut allowed_calls = Vec::new();
    if clock {
        allowed_calls.push("@clock");
    }
    if capabilities.contains("SYS_PACCT") {
        allowed_calls.push("acct");
    }
    for device in devices(pod, container)? {
        unit.add(SERVICE, "DeviceAllow", device)?;
    }
    check_host_paths(pod, container, node)?;
    for hidden in node
        .hidden_paths
        .iter()
        .map(String::as_str)
        .chain(HOST_CONTROL_SOCKETS.iter().copied())
    {
        let hidden = path::absolute("hidden path", hidden)?;
        unit.add(
            SERVICE,
            "InaccessiblePaths",
            format!("-{}", path::directive(&hidden)),
        )?;
    }
    seccomp.apply(unit, &allowed_calls)
}

fn bounding_set(unit: &UnitFile, container: &Container) -> Result<CapabilitySet> {
    let base = CapabilitySet::from_vendor_lines(&unit.get_list(SERVICE, "CapabilityBoundingSet"))?
        .unwrap_or_else(CapabilitySet::runtime_default);
    let asked = container
        .security_context
        .as_ref()
        .and_then(|c| c.capabilities.as_ref());
    let host_root = asked
        .and_then(|c| c.add.as_ref())
        .into_iter()
        .flatten()
        .find(|cap| {
            let upper = cap.to_ascii_uppercase();
            let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
            name == "ALL" || HOST_ROOT.contains(&name)
        });
    if let Some(cap) = host_root {
        return Err(Error::Unsupported {
            what: format!(
                "capabilities.add {cap} in container {} without privileged: true: pods share \
                 the host's namespaces, so it would make the pod root on the host",
                container.name
            ),
        });
    }
    base.apply(&container.name, asked)
}

/// Fields systemk cannot honour for any pod.
fn check_refused_fields(pod: &Pod, container: &Container, effective: &Effective<'_>) -> Result<()> {
    let name = container.name.as_str();
    let refuse = |what: &str| {
        Err(Error::Unsupported {
            what: format!("{what} (container {name})"),
        })
    };
    let spec = pod.spec.as_ref();
    let pod_ctx = effective.pod;
    if spec.and_then(|s| s.host_users) == Some(false) {
        return refuse("hostUsers: false: systemd 252 cannot give a pod its own user namespace");
    }
    if pod_ctx
        .and_then(|p| p.sysctls.as_ref())
        .is_some_and(|s| !s.is_empty())
    {
        return refuse(
            "sysctls: pods share the host's kernel namespaces, so they would change the host",
        );
    }
    if pod_ctx.and_then(|p| p.supplemental_groups_policy.as_deref()) == Some("Strict") {
        return refuse("supplementalGroupsPolicy: Strict: systemd always adds the user's groups");
    }
    let se_linux = effective
        .container
        .and_then(|c| c.se_linux_options.as_ref())
        .or(pod_ctx.and_then(|p| p.se_linux_options.as_ref()));
    if se_linux.is_some_and(|o| {
        [&o.user, &o.role, &o.type_, &o.level]
            .iter()
            .any(|f| f.as_deref().is_some_and(|v| !v.is_empty()))
    }) {
        return refuse("seLinuxOptions: SELinux is not supported");
    }
    let ctx = effective.container;
    if ctx
        .and_then(|c| c.proc_mount.as_deref())
        .is_some_and(|m| m != "Default")
    {
        return refuse("procMount other than Default");
    }
    let windows = ctx
        .and_then(|c| c.windows_options.as_ref())
        .or(pod_ctx.and_then(|p| p.windows_options.as_ref()));
    if windows.is_some_and(|w| {
        w.host_process == Some(true)
            || w.gmsa_credential_spec.is_some()
            || w.gmsa_credential_spec_name.is_some()
    }) {
        return refuse("windowsOptions other than runAsUserName");
    }
    Ok(())
}

/// Prefix of the annotation that asked for an AppArmor profile before the field existed;
/// the kubelet still honours it when the fields are unset.
const APP_ARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// The profile the container's AppArmor annotation asks for, read as the kubelet reads
/// it: `runtime/default`, `unconfined`, `localhost/<profile>`; anything else is kept as
/// an unknown type, to be refused.
fn annotated_app_armor(pod: &Pod, container: &str) -> Option<AppArmorProfile> {
    let key = format!("{APP_ARMOR_ANNOTATION}{container}");
    let value = pod.metadata.annotations.as_ref()?.get(&key)?;
    let (type_, localhost_profile) = match value.as_str() {
        "runtime/default" => ("RuntimeDefault".to_owned(), None),
        "unconfined" => ("Unconfined".to_owned(), None),
        other => match other.strip_prefix("localhost/") {
            Some(profile) => ("Localhost".to_owned(), Some(profile.to_owned())),
            None => (format!("annotation {other}"), None),
        },
    };
    Some(AppArmorProfile {
        type_,
        localhost_profile,
    })
}

/// `AppArmorProfile=` for the profile asked for, if any.
fn app_armor_profile(
    container: &str,
    profile: Option<&AppArmorProfile>,
    node: &NodeSecurity,
) -> Result<Option<String>> {
    let refuse = |why: &str| {
        Err(Error::Unsupported {
            what: format!("appArmorProfile in container {container}: {why}"),
        })
    };
    let Some(profile) = profile else {
        return Ok(None);
    };
    match profile.type_.as_str() {
        "Unconfined" => Ok(None),
        "RuntimeDefault" => refuse(
            "systemk has no default AppArmor profile; use Localhost with a loaded profile, or \
             Unconfined (systemd's sandbox and seccomp apply either way)",
        ),
        "Localhost" if !node.apparmor => refuse("AppArmor is not enabled on this node"),
        "Localhost" => {
            let name = profile.localhost_profile.as_deref().unwrap_or_default();
            let valid = !name.is_empty()
                && !name.starts_with('-')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-./:@+".contains(&b));
            if valid {
                Ok(Some(name.to_owned()))
            } else {
                refuse("localhostProfile must be a profile name of [A-Za-z0-9_-./:@+]")
            }
        }
        other => refuse(&format!("unknown type {other:?}")),
    }
}

/// `DeviceAllow=` values for the container's device hostPaths.
fn devices(pod: &Pod, container: &Container) -> Result<Vec<String>> {
    let mut allowed = Vec::new();
    for (mount, volume) in mounted_volumes(pod, container) {
        let Some(host) = volume.host_path.as_ref() else {
            continue;
        };
        if !matches!(host.type_.as_deref(), Some("CharDevice" | "BlockDevice")) {
            continue;
        }
        let device = path::absolute(&format!("hostPath of volume {}", volume.name), &host.path)?;
        let access = if mount.read_only == Some(true) {
            "r"
        } else {
            "rw"
        };
        allowed.push(format!("{} {access}", path::directive(&device)));
    }
    Ok(allowed)
}

/// Refuses hostPaths that would re-expose what the confinement hides.
fn check_host_paths(pod: &Pod, container: &Container, node: &NodeSecurity) -> Result<()> {
    for (_, volume) in mounted_volumes(pod, container) {
        let Some(host) = volume.host_path.as_ref() else {
            continue;
        };
        let source = path::absolute(&format!("hostPath of volume {}", volume.name), &host.path)?;
        check_host_path_source(&volume.name, &source, node)?;
    }
    Ok(())
}

/// Refuses a hostPath `source` (normalised and absolute; the pod layer also passes it
/// with its symlinks resolved) that lies within, or contains, a path only privileged
/// pods may see: systemk's hidden paths, the host's control sockets, `/proc`, `/sys`.
pub fn check_host_path_source(volume: &str, source: &str, node: &NodeSecurity) -> Result<()> {
    let protected = node
        .hidden_paths
        .iter()
        .map(String::as_str)
        .chain(HOST_CONTROL_SOCKETS.iter().copied())
        .chain(KERNEL_PATHS.iter().copied());
    for hit in protected {
        if overlaps(source, hit) {
            return Err(Error::InvalidVolume {
                volume: volume.to_owned(),
                why: format!(
                    "hostPath {source} would expose {hit}, which only privileged pods may see"
                ),
            });
        }
    }
    Ok(())
}

/// Whether one of two normalised absolute paths lies within the other.
fn overlaps(a: &str, b: &str) -> bool {
    let within = |inner: &str, outer: &str| {
        outer == "/"
            || inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    within(a, b) || within(b, a)
}

fn mounted_volumes<'a>(
    pod: &'a Pod,
    container: &'a Container,
) -> impl Iterator<Item = (&'a k8s_openapi::api::core::v1::VolumeMount, &'a Volume)> {
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    let volumes: Vec<&Volume> = volumes.collect();
    container
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(move |mount| {
            volumes
                .iter()
                .find(|v| v.name == mount.name)
                .map(|v| (mount, *v))
        })
}

#[cfg(test)]
mod tests;
