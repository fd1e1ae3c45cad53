//! The slices systemk writes at start: `systemk.slice` with the limits from the host's
//! size and the reservations (`--system-reserved`, `--kube-reserved`), and
//! `systemk-besteffort.slice` below it (`unit::pod_slice`). `systemk-burstable.slice`
//! weighs its pods' requests: the reconciler writes it once it knows them. Layer 7.

use std::path::Path;

use crate::pod::eviction::{Reservation, Resources};
use crate::sources::kube as cluster;
use crate::unit::{QosTier, SliceLimits, SliceName, best_effort_slice_unit, slice_unit};

/// `systemk.slice` and `systemk-besteffort.slice`, rendered.
pub(super) fn slices(reservation: &Reservation) -> crate::unit::Result<Vec<(SliceName, String)>> {
    Ok(vec![
        (
            SliceName::root(),
            slice_unit(&slice_limits(reservation))?.render(),
        ),
        (
            SliceName::of_tier(QosTier::BestEffort),
            best_effort_slice_unit()?.render(),
        ),
    ])
}

/// The limits of systemk.slice: capacity minus `--system-reserved` and `--kube-reserved`
/// (the kubelet's pods cgroup; the eviction threshold stays inside, so eviction acts
/// before the kernel's OOM killer). A resource nothing is reserved of stays unlimited, and
/// the slice keeps systemd's default CPU weight: no reservation, nothing to keep.
fn slice_limits(reservation: &Reservation) -> SliceLimits {
    let reserved = reservation.system.plus(reservation.kube);
    let facts = cluster::read_facts(Path::new("/"));
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|text| text.trim().parse().ok());
    let capacity = Resources {
        cpu_millis: facts.as_ref().map_or(0, |f| f.cpus.saturating_mul(1000)),
        memory: facts.as_ref().map_or(0, |f| f.memory_bytes),
        ephemeral_storage: 0,
        pids: pid_max.unwrap_or(0),
    };
    if let Err(err) = &facts {
        tracing::warn!(error = %crate::error_chain::Chain(err), "cannot read the host's size: systemk.slice is unlimited");
        return SliceLimits::default();
    }
    let limit = reservation.pods_limit(capacity);
    SliceLimits {
        memory_max: (reserved.memory > 0).then_some(limit.memory),
        cpu_millis: (reserved.cpu_millis > 0).then_some(limit.cpu_millis),
        tasks_max: (reserved.pids > 0 && pid_max.is_some()).then_some(limit.pids),
    }
}
