//! The restart state machine as it is kept on disk, so restart counts, back-off and the
//! last termination survive a restart of systemk (systemd does not know them: systemk
//! starts containers again itself). Times are kept as microseconds since the epoch, the
//! unit systemd reports them in.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{ContainerRestarts, Exit, ExitStatus, RestartPolicy, RestartState, StartError};

/// The serialised form of a [`ContainerRestarts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartRecord {
    container: String,
    policy: String,
    state: StateRecord,
    restart_count: u32,
    backoff_step: u32,
    last_started_us: Option<i64>,
    last_exit: Option<ExitRecord>,
    /// Absent in records written before start failures were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_start_error: Option<StartErrorRecord>,
    /// The termination message of `last_exit`; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartErrorRecord {
    reason: String,
    log: Vec<String>,
    log_read: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
enum StateRecord {
    NotStarted,
    Running { started_us: i64 },
    BackingOff { until_us: i64, delay_ms: u64 },
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExitRecord {
    code: Option<i32>,
    signal: Option<i32>,
    started_us: i64,
    finished_us: i64,
}

impl ContainerRestarts {
    /// What to keep on disk.
    pub fn to_record(&self) -> RestartRecord {
        RestartRecord {
            container: self.container.clone(),
            policy: self.policy.as_str().to_owned(),
            state: match self.state {
                RestartState::NotStarted => StateRecord::NotStarted,
                RestartState::Running { started_at } => StateRecord::Running {
                    started_us: micros(started_at),
                },
                RestartState::BackingOff { until, delay } => StateRecord::BackingOff {
                    until_us: micros(until),
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                },
                RestartState::Terminated => StateRecord::Terminated,
            },
            restart_count: self.restart_count,
            backoff_step: self.backoff_step,
            last_started_us: self.last_started_at.map(micros),
            last_exit: self.last_exit.map(|exit| ExitRecord {
                code: match exit.status {
                    ExitStatus::Code(code) => Some(code),
                    ExitStatus::Signal(_) => None,
                },
                signal: exit.status.signal(),
                started_us: micros(exit.started_at),
                finished_us: micros(exit.finished_at),
            }),
            last_start_error: self.last_start_error.as_ref().map(|e| StartErrorRecord {
                reason: e.reason.clone(),
                log: e.log.clone(),
                log_read: e.log_read,
            }),
            last_message: self.last_message.clone(),
        }
    }

    /// The state machine a record describes; `None` when the record is damaged or not
    /// of this container, in which case the caller starts afresh.
    pub fn from_record(record: &RestartRecord) -> Option<Self> {
        let policy = RestartPolicy::from_spec(Some(&record.policy)).ok()?;
        let state = match record.state {
            StateRecord::NotStarted => RestartState::NotStarted,
            StateRecord::Running { started_us } => RestartState::Running {
                started_at: timestamp(started_us)?,
            },
            StateRecord::BackingOff { until_us, delay_ms } => RestartState::BackingOff {
                until: timestamp(until_us)?,
                delay: Duration::from_millis(delay_ms),
            },
            StateRecord::Terminated => RestartState::Terminated,
        };
        let last_exit = match record.last_exit {
            None => None,
            Some(exit) => Some(Exit {
                status: match (exit.code, exit.signal) {
                    (Some(code), None) => ExitStatus::Code(code),
                    (None, Some(signal)) => ExitStatus::Signal(signal),
                    _ => return None,
                },
                started_at: timestamp(exit.started_us)?,
                finished_at: timestamp(exit.finished_us)?,
            }),
        };
        Some(Self {
            container: record.container.clone(),
            policy,
            state,
            restart_count: record.restart_count,
            backoff_step: record.backoff_step,
            last_started_at: match record.last_started_us {
                Some(us) => Some(timestamp(us)?),
                None => None,
            },
            last_exit,
            last_start_error: record.last_start_error.as_ref().map(|e| StartError {
                reason: e.reason.clone(),
                log: e.log.clone(),
                log_read: e.log_read,
            }),
            last_message: record.last_message.clone(),
            // A probe's kill is followed by its exit within the same pass.
            killed_by_probe: false,
        })
    }
}

impl RestartRecord {
    /// The container this record belongs to.
    pub fn container(&self) -> &str {
        &self.container
    }
}

fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

fn timestamp(us: i64) -> Option<Timestamp> {
    Timestamp::from_microsecond(us).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::restart::Role;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    #[test]
    fn a_backing_off_container_round_trips_through_json() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        restarts.started(at(0)).unwrap();
        restarts
            .exited(Exit {
                status: ExitStatus::Signal(9),
                started_at: at(0),
                finished_at: at(5),
            })
            .unwrap();
        let json = serde_json::to_string(&restarts.to_record()).unwrap();
        let back: RestartRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(ContainerRestarts::from_record(&back), Some(restarts));
    }

    #[test]
    fn a_failed_start_round_trips_and_old_records_still_read() {
        let mut restarts = ContainerRestarts::new("app", RestartPolicy::Always, Role::App);
        restarts.started(at(0)).unwrap();
        let exit = Exit {
            status: ExitStatus::Code(3),
            started_at: at(0),
            finished_at: at(0),
        };
        restarts
            .start_failed(exit, "ExecStartPre failed".into())
            .unwrap();
        restarts.attach_start_log(vec!["mkdir: denied".into()]);
        let json = serde_json::to_string(&restarts.to_record()).unwrap();
        let back: RestartRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(ContainerRestarts::from_record(&back), Some(restarts));
        let old = json.replace(
            &json[json.find(",\"lastStartError\"").unwrap()..json.len() - 1],
            "",
        );
        let back: RestartRecord = serde_json::from_str(&old).unwrap();
        let restored = ContainerRestarts::from_record(&back).unwrap();
        assert_eq!(restored.last_start_error(), None);
        assert_eq!(restored.restart_count(), 0);
    }

    #[test]
    fn a_damaged_record_is_refused() {
        let restarts = ContainerRestarts::new("app", RestartPolicy::Never, Role::App);
        let mut record = restarts.to_record();
        record.policy = "Sometimes".into();
        assert_eq!(ContainerRestarts::from_record(&record), None);
    }
}
