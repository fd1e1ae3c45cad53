//! The host facts behind `unit::NodeSecurity`: which group ids `--restricted-groups`
//! names (group names through NSS, `@devices` by walking `/dev`), and whether AppArmor
//! is enforced. Read once at startup. Layer 7.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::unistd::Group;

use super::{
    AgentArgs, CONFIG_DIR, DEFAULT_CACHE_DIR, DEFAULT_MANIFEST_DIR, DEFAULT_RESTRICTED_GROUPS,
    DEFAULT_RUNTIME_DIR, DEFAULT_STATE_DIR,
};
use crate::unit::NodeSecurity;

/// Stands for every group that owns a device node under `/dev`.
const DEVICES: &str = "@devices";

/// Where the kernel tells whether AppArmor is enabled.
const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";

/// The group ids `groups` names: numbers as they are, names looked up (a name the host
/// does not know restricts nothing: no pod can take a group the host lacks), `@devices`
/// as the owners of the device nodes under `dev`.
pub fn restricted_gids(groups: &[String], dev: &Path) -> BTreeSet<u32> {
    let mut gids = BTreeSet::new();
    for group in groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
        if group == DEVICES {
            device_groups(dev, &mut gids);
        } else if let Ok(gid) = group.parse::<u32>() {
            gids.insert(gid);
        } else if let Ok(Some(found)) = Group::from_name(group) {
            gids.insert(found.gid.as_raw());
        } else {
            tracing::debug!(group, "restricted group unknown on this host");
        }
    }
    gids
}

/// What unprivileged pods must never see of the agent: its state, runtime files, cache, configuration
/// and manifests, the kubeconfig it uses and its kubelet API keys. Relative flags are
/// made absolute against `cwd`, as the agent reads them.
pub fn hidden_paths(args: &AgentArgs, kubeconfig: Option<&Path>, cwd: &Path) -> Vec<String> {
    let candidates: [Option<&Path>; 11] = [
        Some(&args.paths.state_dir),
        Some(&args.paths.runtime_dir),
        Some(&args.cache_dir),
        Some(Path::new(CONFIG_DIR)),
        Some(&args.pod_manifest_path),
        kubeconfig,
        args.tls_cert_file.as_deref(),
        args.tls_private_key_file.as_deref(),
        args.client_ca_file.as_deref(),
        args.bootstrap_kubeconfig.as_deref(),
        args.cert_dir.as_deref(),
    ];
    let mut paths: Vec<String> = Vec::new();
    for path in candidates.into_iter().flatten() {
        let absolute: PathBuf = cwd.join(path);
        if let Some(text) = absolute.to_str().map(normalise)
            && !paths.contains(&text)
        {
            paths.push(text);
        }
    }
    paths
}

/// What an agent with every flag at its default would keep from pods (for `systemk
/// render`, which has no agent flags).
pub fn default_node_security() -> NodeSecurity {
    let groups: Vec<String> = DEFAULT_RESTRICTED_GROUPS
        .split(',')
        .map(str::to_owned)
        .collect();
    NodeSecurity {
        hidden_paths: [
            DEFAULT_STATE_DIR,
            DEFAULT_RUNTIME_DIR,
            DEFAULT_CACHE_DIR,
            CONFIG_DIR,
            DEFAULT_MANIFEST_DIR,
        ]
        .map(str::to_owned)
        .to_vec(),
        restricted_gids: restricted_gids(&groups, Path::new("/dev")),
        apparmor: apparmor_enabled(),
    }
}

/// `path` without `.` components, doubled or trailing slashes (`..` is kept: the unit
/// layer refuses it, loudly).
fn normalise(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Whether the kernel enforces AppArmor.
pub fn apparmor_enabled() -> bool {
    fs::read_to_string(APPARMOR_ENABLED).is_ok_and(|text| text.trim() == "Y")
}

/// Adds the owning group of every character and block device below `dir`; symlinks are
/// not followed, and the shared-memory tmpfs is no device.
fn device_groups(dir: &Path, gids: &mut BTreeSet<u32>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_char_device() || kind.is_block_device() {
            gids.insert(meta.gid());
        } else if kind.is_dir() && !matches!(entry.file_name().to_str(), Some("shm" | "mqueue")) {
            device_groups(&entry.path(), gids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_paths_cover_the_agents_files() {
        use clap::Parser;
        let cli = crate::config::Cli::try_parse_from([
            "systemk",
            "--state-dir",
            "state/",
            "--tls-cert-file",
            "/etc/k/cert.pem",
            "--tls-private-key-file",
            "/etc/k/key.pem",
        ])
        .unwrap();
        let paths = hidden_paths(
            &cli.agent,
            Some(Path::new("/etc/systemk/kubeconfig")),
            Path::new("/work"),
        );
        assert_eq!(
            paths,
            [
                "/work/state",
                "/run/systemk",
                "/var/cache/systemk/debs",
                "/etc/systemk",
                "/etc/systemk/manifests",
                "/etc/systemk/kubeconfig",
                "/etc/k/cert.pem",
                "/etc/k/key.pem"
            ]
        );
    }

    #[test]
    fn numbers_names_and_devices() {
        let gids = restricted_gids(
            &[
                "0".into(),
                "root".into(),
                " 42 ".into(),
                "no-such-group-x".into(),
            ],
            Path::new("/nonexistent"),
        );
        assert_eq!(gids, BTreeSet::from([0, 42]));
        let devices = restricted_gids(&[DEVICES.into()], Path::new("/dev"));
        let null_owner = fs::metadata("/dev/null").unwrap().gid();
        assert!(devices.contains(&null_owner));
    }
}
