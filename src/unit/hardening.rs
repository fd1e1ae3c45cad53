//! The sandbox every systemk unit gets, at least as strict as the original systemk's
//! and never weaker than the vendor unit's own:
//!
//! - `ProtectSystem=strict`: the whole file system is read-only except `/dev`, `/proc`
//!   and `/sys`, and `/run`, which is the container's own (`run_dir.rs`): the host's
//!   `/run` is not in the unit at all. (systemd 252 would leave the host's `/run`
//!   writable under `ProtectSystem=strict` as soon as `ProtectKernelTunables=`,
//!   `ProtectControlGroups=` or `ProtectProc=` is set, checked in the booted systemd;
//!   hence the `ReadOnlyPaths=/run` of earlier versions.) systemd itself makes a
//!   vendor's `RuntimeDirectory=`, `StateDirectory=`, `CacheDirectory=` and
//!   `LogsDirectory=` writable.
//! - `PIDFile=` outside `/run`: writable so a forking daemon can write it: its own
//!   directory, or only the file when it lies directly in a top-level directory
//!   (`pid_file.rs`).
//! - The package's own state directories (`writable_dirs`) outside `/run` become
//!   `ReadWritePaths=-`; those in `/run` are bound into the container's `/run`.
//! - `ProtectHome=tmpfs` (or the vendor's stricter `yes`), `PrivateTmp=yes`,
//!   `PrivateMounts=yes`.
//! - Unless the pod sets `hostIPC: true`, `/dev`'s two world-writable places are the
//!   unit's own: `PrivateIPC=yes` gives it its own POSIX message queues (`/dev/mqueue`)
//!   and SysV IPC, and `/dev/shm` is a tmpfs of its own. Unlike a Kubernetes pod, the
//!   containers of one pod do not share shared memory. (The private `/dev` of
//!   unprivileged pods is `confinement.rs`'s.)
//! - `NoNewPrivileges=yes` exactly when the container sets
//!   `allowPrivilegeEscalation: false`, as Kubernetes maps that field; otherwise the
//!   vendor's setting stays. Forcing it would break vendor units whose processes must
//!   gain privileges through setuid/setgid binaries or file capabilities (sudo inside an
//!   sshd session, mail delivery through setgid `postdrop`).
//!
//! Layer 2: pure.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Container;

use super::error::{Error, Result};
use super::file::UnitFile;
use super::path;
use super::pid_file::allow_pid_file;

const SERVICE: &str = "Service";

/// Applies the sandbox to `unit`'s `[Service]`, which already holds the vendor's
/// directives.
pub fn apply_hardening(
    unit: &mut UnitFile,
    container: &Container,
    writable_dirs: &[PathBuf],
    host_ipc: bool,
) -> Result<()> {
    unit.set(SERVICE, "ProtectSystem", "strict")?;
    let vendor_home = unit.get(SERVICE, "ProtectHome").unwrap_or_default();
    let home = if matches!(vendor_home, "yes" | "true" | "on" | "1") {
        "yes"
    } else {
        "tmpfs"
    };
    unit.set(SERVICE, "ProtectHome", home)?;
    unit.set(SERVICE, "PrivateTmp", "yes")?;
    unit.set(SERVICE, "PrivateMounts", "yes")?;
    if !host_ipc {
        unit.set(SERVICE, "PrivateIPC", "yes")?;
        // A list directive: the vendor's own entries stay.
        unit.add(
            SERVICE,
            "TemporaryFileSystem",
            "/dev/shm:mode=1777,nosuid,nodev",
        )?;
    }
    let no_escalation = container
        .security_context
        .as_ref()
        .and_then(|c| c.allow_privilege_escalation)
        == Some(false);
    if no_escalation {
        unit.set(SERVICE, "NoNewPrivileges", "yes")?;
    }
    allow_pid_file(unit)?;
    for dir in writable_dirs.iter().filter(|d| !d.starts_with("/run")) {
        let text = dir.to_str().ok_or_else(|| Error::InvalidPath {
            what: "package state directory".to_owned(),
            path: dir.to_string_lossy().into_owned(),
            why: "it is not UTF-8",
        })?;
        let dir = path::absolute("package state directory", text)?;
        unit.add(
            SERVICE,
            "ReadWritePaths",
            format!("-{}", path::directive(&dir)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::SecurityContext;

    use super::*;

    fn harden(vendor: &str, container: &Container, dirs: &[&str]) -> UnitFile {
        let mut unit = UnitFile::parse(&format!("[Service]\n{vendor}")).unwrap();
        let dirs: Vec<PathBuf> = dirs.iter().map(PathBuf::from).collect();
        apply_hardening(&mut unit, container, &dirs, false).unwrap();
        unit
    }

    #[test]
    fn baseline_sandbox() {
        let unit = harden(
            "ProtectSystem=no\nProtectHome=no\nPrivateTmp=no\n",
            &Container::default(),
            &[],
        );
        assert_eq!(
            unit.render(),
            "[Service]\nProtectSystem=strict\nProtectHome=tmpfs\nPrivateTmp=yes\nPrivateMounts=yes\n\
             PrivateIPC=yes\nTemporaryFileSystem=/dev/shm:mode=1777,nosuid,nodev\n"
        );
    }

    #[test]
    fn stricter_vendor_settings_stay() {
        let unit = harden(
            "ProtectHome=yes\nNoNewPrivileges=yes\n",
            &Container::default(),
            &[],
        );
        assert_eq!(unit.get("Service", "ProtectHome"), Some("yes"));
        assert_eq!(unit.get("Service", "NoNewPrivileges"), Some("yes"));
    }

    #[test]
    fn no_new_privileges_follows_allow_privilege_escalation() {
        let container = Container {
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            harden("", &container, &[]).get("Service", "NoNewPrivileges"),
            Some("yes")
        );
        assert_eq!(
            harden("", &Container::default(), &[]).get("Service", "NoNewPrivileges"),
            None
        );
    }

    #[test]
    fn pid_file_and_package_dirs_are_writable() {
        let unit = harden(
            "PIDFile=/var/lib/bar/bar.pid\n",
            &Container::default(),
            &["/var/lib/foo", "/var/log/f%o/", "/run/foo"],
        );
        assert_eq!(
            unit.get_all("Service", "ReadWritePaths"),
            ["-/var/lib/bar", "-/var/lib/foo", "-/var/log/f%%o"]
        );
    }

    #[test]
    fn bad_package_dirs_are_refused() {
        let mut unit = UnitFile::new();
        for bad in ["relative", "/a/../b", "/a b"] {
            assert!(
                apply_hardening(
                    &mut unit,
                    &Container::default(),
                    &[PathBuf::from(bad)],
                    false
                )
                .is_err(),
                "{bad}"
            );
        }
    }
}
