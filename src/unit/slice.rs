//! `systemk.slice`: the cgroup every pod's units run in (`Slice=` on each container unit),
//! whose limits keep the reserved resources for the host, as the kubelet's `kubepods`
//! cgroup does with `--enforce-node-allocatable=pods`: `MemoryMax=` and `TasksMax=` at
//! capacity minus the reservations (the eviction threshold stays inside, so systemk evicts
//! before the kernel's OOM killer acts), `CPUWeight=` from the same CPU figure with the
//! kubelet's shares-to-weight formula (the kubelet sets `cpu.shares`/`cpu.weight`, no
//! quota: reserved CPU is a guaranteed share under contention, idle CPU stays usable).
//! Pure. Layer 2.

use super::error::Result;
use super::file::UnitFile;
use super::resources::cpu_weight;

/// The slice of every pod unit.
pub const SLICE: &str = "systemk.slice";

/// What all pods together may use; `None` leaves the resource unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SliceLimits {
    /// Memory in bytes (`MemoryMax=`).
    pub memory_max: Option<u64>,
    /// CPU in millicores (`CPUWeight=`, the kubelet's conversion).
    pub cpu_millis: Option<u64>,
    /// Processes and threads (`TasksMax=`).
    pub tasks_max: Option<u64>,
}

/// The unit file of [`SLICE`] with `limits`.
pub fn slice_unit(limits: &SliceLimits) -> Result<UnitFile> {
    let mut unit = UnitFile::new();
    unit.add("Unit", "Description", "systemk pods")?;
    unit.add("Unit", "Documentation", "man:systemk(8)")?;
    unit.add("Slice", "MemoryAccounting", "yes")?;
    unit.add("Slice", "TasksAccounting", "yes")?;
    let or_infinity = |value: Option<u64>| value.map_or("infinity".to_owned(), |v| v.to_string());
    unit.add("Slice", "MemoryMax", or_infinity(limits.memory_max))?;
    unit.add("Slice", "TasksMax", or_infinity(limits.tasks_max))?;
    if let Some(millis) = limits.cpu_millis {
        unit.add("Slice", "CPUWeight", cpu_weight(millis).to_string())?;
    }
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_directives() {
        let unit = slice_unit(&SliceLimits {
            memory_max: Some(7 << 30),
            cpu_millis: Some(1900),
            tasks_max: Some(4_000_000),
        })
        .unwrap();
        assert_eq!(unit.get("Slice", "MemoryMax"), Some("7516192768"));
        assert_eq!(unit.get("Slice", "TasksMax"), Some("4000000"));
        // 1900m → 1945 shares → weight 75, as the kubelet's kubepods on cgroup v2.
        assert_eq!(unit.get("Slice", "CPUWeight"), Some("75"));
        let open = slice_unit(&SliceLimits::default()).unwrap();
        assert_eq!(open.get("Slice", "MemoryMax"), Some("infinity"));
        assert_eq!(open.get("Slice", "TasksMax"), Some("infinity"));
        assert_eq!(open.get("Slice", "CPUWeight"), None);
    }
}
