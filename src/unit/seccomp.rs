//! `seccompProfile` → systemd's `SystemCallFilter=`.
//!
//! `RuntimeDefault` (also systemk's default when a pod says nothing, as the kubelet's
//! `--seccomp-default` makes it) stands in for the runtimes' default profile: the
//! allow-list `@system-service` (systemd's set for ordinary services), then a deny-list
//! of what the runtimes' profile blocks: `@debug` (ptrace, process_vm_*, perf), kernel
//! modules, reboot, swap, the clock, raw I/O, CPU emulation, obsolete calls, the kernel
//! keyring (not namespaced), mounting, `bpf`, `kexec`, `userfaultfd` and
//! `open_by_handle_at` (the "shocker" escape). `chroot` stays allowed, as in the
//! runtimes' profile (daemons use it for privilege separation). Calls fail with `EPERM`
//! like the runtimes' `SCMP_ACT_ERRNO`, not with systemd's default `SIGSYS`, and only the
//! native architecture is allowed. `RestrictNamespaces=yes` stands for the profile's
//! refusal of `unshare`/`setns`/namespace `clone` flags.
//!
//! A vendor unit's own allow-list (its first `SystemCallFilter=` without `~`) replaces
//! `@system-service`, since systemd ORs allow-lists and the vendor's is the narrower;
//! the vendor's deny-lists stay; the runtimes' deny-list comes last. The result is never
//! weaker than the vendor unit alone nor than the runtimes' profile.
//!
//! `Unconfined` keeps only the vendor's filter. `Localhost` profiles are OCI JSON, which
//! systemd cannot load: refused.
//!
//! Layer 2: pure.

use super::error::{Error, Result};
use super::file::UnitFile;

const SERVICE: &str = "Service";

/// The allow-list systemk starts from. systemd files `chroot` under `@mount`, which
/// `@system-service` leaves out; the runtimes' profile allows it, and Debian's daemons
/// chroot their privilege-separated children (dovecot's login processes, vsftpd's
/// sessions), so it is added back (mount itself stays denied below).
const ALLOWED: &str = "@system-service chroot";

/// What the runtimes' default profile blocks that `@system-service` may still allow.
const DENIED: &[&str] = &[
    "@debug",
    "@module",
    "@reboot",
    "@swap",
    "@clock",
    "@raw-io",
    "@cpu-emulation",
    "@obsolete",
    "@keyring",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "bpf",
    "kexec_load",
    "kexec_file_load",
    "userfaultfd",
    "open_by_handle_at",
    "acct",
    "quotactl",
];

/// The seccomp profile a container runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompProfile {
    /// systemk's equivalent of the runtimes' default profile.
    RuntimeDefault,
    /// No filter beyond the vendor unit's own.
    Unconfined,
}

impl SeccompProfile {
    /// The profile a `seccompProfile.type` asks for (`None`: the field is unset).
    pub fn from_spec(container: &str, kind: Option<&str>) -> Result<Self> {
        match kind {
            None | Some("RuntimeDefault") => Ok(Self::RuntimeDefault),
            Some("Unconfined") => Ok(Self::Unconfined),
            Some("Localhost") => Err(Error::Unsupported {
                what: format!(
                    "seccompProfile type Localhost in container {container}: systemd cannot load \
                     OCI seccomp profiles; use RuntimeDefault or Unconfined"
                ),
            }),
            Some(other) => Err(Error::Unsupported {
                what: format!("seccompProfile type {other:?} in container {container}"),
            }),
        }
    }

    /// Writes the filter into `unit`'s `[Service]`, which holds the vendor's lines.
    /// `allowed` are entries of the deny-list the container's capabilities grant, as the
    /// runtimes' profile allows them to a container holding the capability (`@clock` with
    /// `SYS_TIME`, `acct` with `SYS_PACCT`).
    pub fn apply(self, unit: &mut UnitFile, allowed: &[&str]) -> Result<()> {
        if self == Self::Unconfined {
            return Ok(());
        }
        let vendor: Vec<String> = unit
            .get_all(SERVICE, "SystemCallFilter")
            .into_iter()
            .map(str::to_owned)
            .collect();
        unit.remove(SERVICE, "SystemCallFilter");
        let vendor_allows = vendor
            .iter()
            .find(|line| !line.is_empty())
            .is_some_and(|first| !first.starts_with('~'));
        if !vendor_allows {
            unit.add(SERVICE, "SystemCallFilter", ALLOWED)?;
        }
        for line in vendor.into_iter().filter(|line| !line.is_empty()) {
            unit.add(SERVICE, "SystemCallFilter", line)?;
        }
        let denied: Vec<&str> = DENIED
            .iter()
            .copied()
            .filter(|entry| !allowed.contains(entry))
            .collect();
        unit.add(
            SERVICE,
            "SystemCallFilter",
            format!("~{}", denied.join(" ")),
        )?;
        unit.set(SERVICE, "SystemCallErrorNumber", "EPERM")?;
        unit.set(SERVICE, "SystemCallArchitectures", "native")?;
        unit.set(SERVICE, "RestrictNamespaces", "yes")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(vendor: &str, profile: SeccompProfile) -> UnitFile {
        let mut unit = UnitFile::parse(&format!("[Service]\n{vendor}")).unwrap();
        profile.apply(&mut unit, &[]).unwrap();
        unit
    }

    #[test]
    fn runtime_default_is_an_allow_list_then_the_runtimes_denials() {
        let unit = filtered("", SeccompProfile::RuntimeDefault);
        let lines = unit.get_all(SERVICE, "SystemCallFilter");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "@system-service chroot");
        let denied: Vec<&str> = lines[1]
            .trim_start_matches('~')
            .split_whitespace()
            .collect();
        // chroot is allowed, but nothing that would let a chrooted process build its own
        // view of the host: the mount calls stay denied.
        for wanted in [
            "@debug",
            "@module",
            "mount",
            "pivot_root",
            "move_mount",
            "open_tree",
            "bpf",
            "open_by_handle_at",
        ] {
            assert!(denied.contains(&wanted), "{wanted}");
        }
        assert!(!lines[1].contains("chroot"));
        assert_eq!(unit.get(SERVICE, "SystemCallErrorNumber"), Some("EPERM"));
        assert_eq!(unit.get(SERVICE, "RestrictNamespaces"), Some("yes"));
    }

    #[test]
    fn vendor_filters_stay_between() {
        let unit = filtered(
            "SystemCallFilter=@basic-io\nSystemCallFilter=~@privileged\n",
            SeccompProfile::RuntimeDefault,
        );
        let lines = unit.get_all(SERVICE, "SystemCallFilter");
        assert_eq!(&lines[..2], ["@basic-io", "~@privileged"]);
        assert!(lines[2].starts_with("~@debug"));
        let deny_only = filtered(
            "SystemCallFilter=~@privileged\n",
            SeccompProfile::RuntimeDefault,
        );
        let lines = deny_only.get_all(SERVICE, "SystemCallFilter");
        assert_eq!(&lines[..2], ["@system-service chroot", "~@privileged"]);
        let unconfined = filtered("SystemCallFilter=@basic-io\n", SeccompProfile::Unconfined);
        assert_eq!(
            unconfined.get_all(SERVICE, "SystemCallFilter"),
            ["@basic-io"]
        );
        assert_eq!(unconfined.get(SERVICE, "RestrictNamespaces"), None);
    }

    #[test]
    fn profile_types() {
        assert_eq!(
            SeccompProfile::from_spec("c", None).unwrap(),
            SeccompProfile::RuntimeDefault
        );
        assert_eq!(
            SeccompProfile::from_spec("c", Some("Unconfined")).unwrap(),
            SeccompProfile::Unconfined
        );
        for bad in ["Localhost", "Bogus"] {
            assert!(SeccompProfile::from_spec("c", Some(bad)).is_err());
        }
    }
}
