//! One line of `systemk pods` per pod, computed exactly as `kubectl get pods` prints it
//! (`printPod` in kubernetes pkg/printers/internalversion/printers.go; ages as
//! `duration.HumanDuration` in apimachinery). Pure: the pod and `now` come in, text goes
//! out. Sidecars (init containers with `restartPolicy: Always`) count as kubectl counts
//! them: in READY's total, ready once started and ready, and their restarts with the app
//! containers' once the pod is initialised.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

/// The columns, as kubectl names them with `-A`.
pub const HEADER: [&str; 6] = ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"];

/// Spaces between columns (kubectl's tabwriter padding).
const COLUMN_GAP: usize = 3;

/// kubectl's reason for a pod in the `Unknown` phase (`status.reason` of unreachable nodes).
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

/// One pod's cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    /// The namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// `ready/total` app containers and sidecars.
    pub ready: String,
    /// kubectl's STATUS: `Init:0/2`, a waiting or terminated reason, or the phase.
    pub status: String,
    /// Restarts, with the age of the last one: `3 (2m ago)`.
    pub restarts: String,
    /// Time since the pod started.
    pub age: String,
}

impl PodRow {
    fn cells(&self) -> [&str; 6] {
        [
            &self.namespace,
            &self.name,
            &self.ready,
            &self.status,
            &self.restarts,
            &self.age,
        ]
    }
}

/// The row kubectl prints for `pod` at `now`.
pub fn pod_row(pod: &Pod, now: Timestamp) -> PodRow {
    let status = pod.status.clone().unwrap_or_default();
    let init_list = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.init_containers.as_deref())
        .unwrap_or_default();
    let init_specs = init_list.len();
    let sidecar = |name: &str| {
        init_list
            .iter()
            .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    };
    let sidecars = init_list.iter().filter(|c| sidecar(&c.name)).count();
    let total = pod.spec.as_ref().map_or(0, |spec| spec.containers.len()) + sidecars;
    let phase = status.phase.clone().unwrap_or_default();
    let mut reason = status.reason.clone().unwrap_or_else(|| phase.clone());
    let mut restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let (mut sidecar_restarts, mut last_sidecar_restart) = (0, None);
    let mut ready = 0;
    let mut initializing = false;
    for (index, container) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += i64::from(container.restart_count);
        last_restart = later(last_restart, last_finished(container));
        let is_sidecar = sidecar(&container.name);
        if is_sidecar {
            sidecar_restarts += i64::from(container.restart_count);
            last_sidecar_restart = later(last_sidecar_restart, last_finished(container));
        }
        let state = container.state.clone().unwrap_or_default();
        if state.terminated.as_ref().is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if is_sidecar && container.started == Some(true) {
            ready += usize::from(container.ready);
            continue;
        }
        if let Some(terminated) = &state.terminated {
            reason = match terminated.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(why) => format!("Init:{why}"),
                None => match terminated.signal.filter(|s| *s != 0) {
                    Some(signal) => format!("Init:Signal:{signal}"),
                    None => format!("Init:ExitCode:{}", terminated.exit_code),
                },
            };
        } else {
            reason = match state.waiting.and_then(|w| w.reason) {
                Some(why) if !why.is_empty() && why != "PodInitializing" => format!("Init:{why}"),
                _ => format!("Init:{index}/{init_specs}"),
            };
        }
        initializing = true;
        break;
    }
    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for container in status.container_statuses.iter().flatten().rev() {
            restarts += i64::from(container.restart_count);
            last_restart = later(last_restart, last_finished(container));
            let state = container.state.clone().unwrap_or_default();
            let waiting = state
                .waiting
                .and_then(|w| w.reason)
                .filter(|r| !r.is_empty());
            if let Some(why) = waiting {
                reason = why;
            } else if let Some(terminated) = state.terminated {
                reason = match terminated.reason.filter(|r| !r.is_empty()) {
                    Some(why) => why,
                    None => match terminated.signal.filter(|s| *s != 0) {
                        Some(signal) => format!("Signal:{signal}"),
                        None => format!("ExitCode:{}", terminated.exit_code),
                    },
                };
            } else if container.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason.as_deref() == Some(NODE_UNREACHABLE_REASON) {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }
    let restarts = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", age(at, now)),
        _ => restarts.to_string(),
    };
    let started = status
        .start_time
        .map(|t| t.0)
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
    PodRow {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts,
        age: started.map_or_else(|| "<unknown>".to_owned(), |at| age(at, now)),
    }
}

/// The rows as kubectl aligns them: a header, left-aligned columns three spaces apart.
pub fn table(rows: &[PodRow]) -> String {
    let mut widths = HEADER.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.cells()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in std::iter::once(HEADER).chain(rows.iter().map(PodRow::cells)) {
        let mut line = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if index + 1 < cells.len() {
                let pad = width - cell.chars().count() + COLUMN_GAP;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `duration.HumanDuration` of the time from `since` to `now`: `45s`, `3m12s`, `14m`,
/// `120m`, `3h5m`, `20h`, `4d3h`, `30d`, `2y45d`.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let micros = now.as_microsecond() - since.as_microsecond();
    human_duration(micros.div_euclid(1_000_000))
}

fn human_duration(seconds: i64) -> String {
    const DAY_HOURS: i64 = 24;
    const YEAR_DAYS: i64 = 365;
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_rest(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_rest(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < DAY_HOURS * 8 {
        return with_rest(hours / DAY_HOURS, "d", hours % DAY_HOURS, "h");
    }
    if hours < DAY_HOURS * YEAR_DAYS * 2 {
        return format!("{}d", hours / DAY_HOURS);
    }
    let days = hours / DAY_HOURS;
    if hours < DAY_HOURS * YEAR_DAYS * 8 {
        return with_rest(days / YEAR_DAYS, "y", days % YEAR_DAYS, "d");
    }
    format!("{}y", days / YEAR_DAYS)
}

/// `5m`, or `5m12s` when the rest is not zero.
fn with_rest(value: i64, unit: &str, rest: i64, rest_unit: &str) -> String {
    if rest == 0 {
        format!("{value}{unit}")
    } else {
        format!("{value}{unit}{rest}{rest_unit}")
    }
}

fn last_finished(container: &ContainerStatus) -> Option<Timestamp> {
    let terminated = container.last_state.as_ref()?.terminated.as_ref()?;
    terminated.finished_at.as_ref().map(|t| t.0)
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    a.max(b)
}

fn condition_true(pod: &Pod, kind: &str) -> bool {
    conditions(pod).any(|c| c.type_ == kind && c.status == "True")
}

fn conditions(pod: &Pod) -> impl Iterator<Item = &k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests;
