//! What a unit uses now: `MemoryCurrent` and `TasksCurrent` from systemd's accounting,
//! for the eviction monitor's ranking. Layer 3.

use std::collections::HashMap;

use zbus::{Connection, OwnedObjectPath, OwnedVariant};

use super::error::{Error, Result};
use super::proxy::SYSTEMD_SERVICE;
use crate::unit::UnitName;

/// What a unit uses now, from its cgroup's accounting; `None` where systemd does not
/// account it (systemd reports `u64::MAX` then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnitUsage {
    /// `MemoryCurrent`: bytes charged to the unit's cgroup (page cache included); without
    /// memory accounting, the main process' resident set (`VmRSS`).
    pub memory: Option<u64>,
    /// `TasksCurrent`: processes and threads.
    pub tasks: Option<u64>,
}

/// Reads the resource usage of `name`, whose unit object lives at `path`.
pub(super) async fn read(
    connection: &Connection,
    name: &UnitName,
    path: &OwnedObjectPath,
) -> Result<UnitUsage> {
    let failed = |error| Error::from_zbus("GetAll usage of", name.as_str(), error);
    let reply = connection
        .call_method(
            Some(SYSTEMD_SERVICE),
            path,
            Some("org.freedesktop.DBus.Properties"),
            "GetAll",
            &("org.freedesktop.systemd1.Service",),
        )
        .await
        .map_err(failed)?;
    let properties: HashMap<String, OwnedVariant> = reply.body().deserialize().map_err(failed)?;
    let counter = |key| {
        properties
            .get(key)
            .and_then(|value| u64::try_from(value).ok())
            .filter(|&value| value != u64::MAX)
    };
    // Without memory accounting (cgroup v1 without the memory controller, as in the test
    // sandbox) systemd has no figure: the main process' resident set stands in.
    let main_pid = properties
        .get("MainPID")
        .and_then(|value| u32::try_from(value).ok())
        .filter(|&pid| pid != 0);
    let memory = counter("MemoryCurrent").or_else(|| {
        let status = std::fs::read_to_string(format!("/proc/{}/status", main_pid?)).ok()?;
        super::cgroup_usage::vm_rss(&status)
    });
    Ok(UnitUsage {
        memory,
        tasks: counter("TasksCurrent"),
    })
}
