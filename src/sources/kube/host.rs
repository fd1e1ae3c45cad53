//! What the node reports about the machine: identity (kernel, OS image, machine and boot
//! IDs, architecture) and size (CPUs, memory, the state directory's file system); what is
//! left (memory, disk, process IDs) is the eviction signals' (`pod::eviction::observe`). Reads `/proc`, `/etc` and `statvfs`; the parsers
//! are pure and unit-tested. Layer 5; it never decides anything from what it reads.

use std::path::{Path, PathBuf};

use crate::sources::{Error, Result};

/// The machine's identity and size, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Logical CPUs.
    pub cpus: u64,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Size of the file system holding systemk's state, in bytes.
    pub storage_bytes: u64,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` of os-release.
    pub os_image: String,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// This boot's ID.
    pub boot_id: String,
    /// The architecture in Go's naming (`amd64`, `arm64`), as the `kubernetes.io/arch` label.
    pub architecture: String,
}

const MEMINFO: &str = "/proc/meminfo";
const OS_RELEASE: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];
const MACHINE_ID: &str = "/etc/machine-id";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
const KERNEL: &str = "/proc/sys/kernel/osrelease";

/// Reads the machine's identity and size; `state_dir` names the file system whose size
/// is the node's ephemeral storage.
pub fn read_facts(state_dir: &Path) -> Result<HostFacts> {
    let meminfo = read(MEMINFO, "memory size")?;
    let os_release = OS_RELEASE
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let (storage_bytes, _) = filesystem(state_dir)?;
    Ok(HostFacts {
        cpus: std::thread::available_parallelism()
            .map_or(1, |n| u64::try_from(n.get()).unwrap_or(1)),
        memory_bytes: meminfo_bytes(&meminfo, "MemTotal").unwrap_or(0),
        storage_bytes,
        kernel: read(KERNEL, "kernel release")?.trim().to_owned(),
        os_image: pretty_name(&os_release).unwrap_or_else(|| "Linux".to_owned()),
        machine_id: read(MACHINE_ID, "machine ID")?.trim().to_owned(),
        boot_id: read(BOOT_ID, "boot ID")?.trim().to_owned(),
        architecture: go_arch(std::env::consts::ARCH).to_owned(),
    })
}

fn read(path: &str, what: &'static str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::HostFact {
        what,
        path: PathBuf::from(path),
        source,
    })
}

/// (total, available to unprivileged users) bytes of the file system holding `dir`.
/// (What is left is observed by the eviction signals, `pod::eviction::observe`.)
// The statvfs field types are 32-bit on some targets; `from` widens them there.
#[allow(clippy::useless_conversion)]
fn filesystem(dir: &Path) -> Result<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(|errno| Error::HostFact {
        what: "file system size",
        path: dir.to_owned(),
        source: errno.into(),
    })?;
    let fragment = u64::from(stat.fragment_size());
    let total = u64::from(stat.blocks()).saturating_mul(fragment);
    let available = u64::from(stat.blocks_available()).saturating_mul(fragment);
    Ok((total, available))
}

/// A `/proc/meminfo` value (given in kB there) in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name != key {
            return None;
        }
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib.saturating_mul(1024))
    })
}

/// `PRETTY_NAME` of an os-release file, unquoted.
fn pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        Some(unquoted.to_owned())
    })
}

/// Rust's architecture name in Go's spelling, which Kubernetes labels use.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_values_are_bytes() {
        let text = "MemTotal:        8000000 kB\nMemFree:  10 kB\nMemAvailable:    4000 kB\n";
        assert_eq!(meminfo_bytes(text, "MemTotal"), Some(8_192_000_000));
        assert_eq!(meminfo_bytes(text, "MemAvailable"), Some(4_096_000));
        assert_eq!(meminfo_bytes(text, "Missing"), None);
    }

    #[test]
    fn pretty_name_is_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("PRETTY_NAME=Plain").as_deref(), Some("Plain"));
        assert_eq!(pretty_name("NAME=x"), None);
    }

    #[test]
    fn architectures_use_go_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }

    #[test]
    fn this_host_has_facts() {
        let facts = read_facts(Path::new("/")).unwrap();
        assert!(facts.cpus >= 1 && facts.memory_bytes > 0 && facts.storage_bytes > 0);
    }
}
