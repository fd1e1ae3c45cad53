//! A unit's observed state, as systemd reports it on D-Bus: the mapping from property
//! values to [`ActiveState`] and [`UnitStatus`], and reading them for one unit.

use std::fmt;

use std::collections::HashMap;

use zbus::{Connection, OwnedObjectPath, OwnedVariant};

use super::error::{Error, Result};
use super::exec_commands::{FailedCommand, failed_command};
use super::proxy::SYSTEMD_SERVICE;
use crate::unit::UnitName;

/// `si_code` values of `ExecMainCode` (waitid(2)): how the main process ended.
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_DUMPED: i32 = 3;

/// A unit's `ActiveState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveState {
    /// Started and running (or exited with `RemainAfterExit=yes`).
    Active,
    /// Reloading its configuration.
    Reloading,
    /// Not running.
    Inactive,
    /// Not running, and the last run failed.
    Failed,
    /// Starting.
    Activating,
    /// Stopping.
    Deactivating,
    /// Under maintenance (e.g. cleaning).
    Maintenance,
    /// Refreshing its mounts.
    Refreshing,
    /// A state this version of systemk does not know.
    Unknown(String),
}

impl ActiveState {
    /// Maps systemd's string.
    pub fn parse(state: &str) -> Self {
        match state {
            "active" => Self::Active,
            "reloading" => Self::Reloading,
            "inactive" => Self::Inactive,
            "failed" => Self::Failed,
            "activating" => Self::Activating,
            "deactivating" => Self::Deactivating,
            "maintenance" => Self::Maintenance,
            "refreshing" => Self::Refreshing,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// systemd's string for this state.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Reloading => "reloading",
            Self::Inactive => "inactive",
            Self::Failed => "failed",
            Self::Activating => "activating",
            Self::Deactivating => "deactivating",
            Self::Maintenance => "maintenance",
            Self::Refreshing => "refreshing",
            Self::Unknown(other) => other,
        }
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What systemd knows about one service unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    /// The unit.
    pub name: UnitName,
    /// `ActiveState`.
    pub active_state: ActiveState,
    /// `SubState`, e.g. `running`, `exited`, `dead`, `auto-restart`.
    pub sub_state: String,
    /// `Result` of the last run: `success`, `exit-code`, `signal`, `timeout`, ...
    pub result: String,
    /// `MainPID`, 0 when no main process runs.
    pub main_pid: u32,
    /// `ExecMainCode`: 1 exited, 2 killed, 3 dumped core, 0 never ran.
    pub exec_main_code: i32,
    /// `ExecMainStatus`: the exit code when `exec_main_code` is 1, else the signal.
    pub exec_main_status: i32,
    /// When the main process started, CLOCK_REALTIME µs, 0 = never.
    pub exec_main_start_us: u64,
    /// When the main process ended, CLOCK_REALTIME µs, 0 = never.
    pub exec_main_exit_us: u64,
    /// When the unit last became active, CLOCK_REALTIME µs, 0 = never.
    pub active_enter_us: u64,
    /// When the unit last became inactive, CLOCK_REALTIME µs, 0 = never.
    pub inactive_enter_us: u64,
    /// `NRestarts`: restarts systemd itself did (`Restart=`).
    pub n_restarts: u32,
    /// When the unit last left the inactive or failed state, i.e. when its latest start
    /// began, CLOCK_REALTIME µs, 0 = never.
    pub inactive_exit_us: u64,
    /// `InvocationID` of the latest run as 32 hex digits; empty before the first.
    pub invocation_id: String,
    /// `ControlGroup`: the unit's cgroup below systemd's root, e.g.
    /// `/systemk.slice/…/systemk.ns.pod.c.service`; empty while it has none (not running).
    pub control_group: String,
    /// The start command that failed in the latest start, if one did (see
    /// [`FailedCommand`]).
    pub failed_command: Option<FailedCommand>,
}

impl UnitStatus {
    /// What systemd reports of a unit it has not loaded once it loads it: inactive,
    /// `dead`, `success`, no process, every timestamp and counter zero.
    pub(super) fn unloaded(name: UnitName) -> Self {
        Self {
            name,
            active_state: ActiveState::Inactive,
            sub_state: "dead".to_owned(),
            result: "success".to_owned(),
            main_pid: 0,
            exec_main_code: 0,
            exec_main_status: 0,
            exec_main_start_us: 0,
            exec_main_exit_us: 0,
            active_enter_us: 0,
            inactive_enter_us: 0,
            n_restarts: 0,
            inactive_exit_us: 0,
            invocation_id: String::new(),
            control_group: String::new(),
            failed_command: None,
        }
    }

    /// The main process' exit code, when it exited on its own.
    pub fn exit_code(&self) -> Option<i32> {
        (self.exec_main_code == CLD_EXITED).then_some(self.exec_main_status)
    }

    /// The signal that ended the main process, when one did.
    pub fn signal(&self) -> Option<i32> {
        matches!(self.exec_main_code, CLD_KILLED | CLD_DUMPED).then_some(self.exec_main_status)
    }
}

/// Reads the status of `name`, whose unit object lives at `path`.
///
/// One `GetAll` with the empty interface name returns the properties of every interface
/// of the unit from one moment: reading them one by one could pair the `ExecMainCode` of
/// a running process with the exit timestamp of that same process a moment later.
pub(super) async fn read(
    connection: &Connection,
    name: &UnitName,
    path: &OwnedObjectPath,
) -> Result<UnitStatus> {
    let failed = |error| Error::from_zbus("GetAll properties of", name.as_str(), error);
    let reply = connection
        .call_method(
            Some(SYSTEMD_SERVICE),
            path,
            Some("org.freedesktop.DBus.Properties"),
            "GetAll",
            &("",),
        )
        .await
        .map_err(failed)?;
    let properties: HashMap<String, OwnedVariant> = reply.body().deserialize().map_err(failed)?;
    from_properties(name, &properties)
}

/// Maps the D-Bus properties of a service unit.
fn from_properties(
    name: &UnitName,
    properties: &HashMap<String, OwnedVariant>,
) -> Result<UnitStatus> {
    fn get<'a, T>(
        name: &UnitName,
        properties: &'a HashMap<String, OwnedVariant>,
        key: &'static str,
    ) -> Result<T>
    where
        T: TryFrom<&'a OwnedVariant>,
    {
        properties
            .get(key)
            .and_then(|value| T::try_from(value).ok())
            .ok_or_else(|| Error::MissingProperty {
                unit: name.to_string(),
                property: key,
            })
    }
    Ok(UnitStatus {
        name: name.clone(),
        active_state: ActiveState::parse(get(name, properties, "ActiveState")?),
        sub_state: get::<&str>(name, properties, "SubState")?.to_owned(),
        result: get::<&str>(name, properties, "Result")?.to_owned(),
        main_pid: get(name, properties, "MainPID")?,
        exec_main_code: get(name, properties, "ExecMainCode")?,
        exec_main_status: get(name, properties, "ExecMainStatus")?,
        exec_main_start_us: get(name, properties, "ExecMainStartTimestamp")?,
        exec_main_exit_us: get(name, properties, "ExecMainExitTimestamp")?,
        active_enter_us: get(name, properties, "ActiveEnterTimestamp")?,
        inactive_enter_us: get(name, properties, "InactiveEnterTimestamp")?,
        n_restarts: get(name, properties, "NRestarts")?,
        inactive_exit_us: get(name, properties, "InactiveExitTimestamp")?,
        invocation_id: invocation_id(properties),
        control_group: properties
            .get("ControlGroup")
            .and_then(|value| <&str>::try_from(value).ok())
            .unwrap_or_default()
            .to_owned(),
        failed_command: failed_command(properties),
    })
}

/// `InvocationID` (16 bytes) as systemd and the journal write it: 32 lowercase hex
/// digits; empty when absent or not 16 bytes.
fn invocation_id(properties: &HashMap<String, OwnedVariant>) -> String {
    let bytes = properties
        .get("InvocationID")
        .and_then(|value| value.try_clone().ok())
        .and_then(|value| Vec::<u8>::try_from(value).ok())
        .unwrap_or_default();
    if bytes.len() != 16 {
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use zbus::Variant;

    use super::*;

    fn status(code: i32, value: i32) -> UnitStatus {
        UnitStatus {
            name: "systemk.a.b.c.service".parse().unwrap(),
            active_state: ActiveState::Failed,
            sub_state: "failed".into(),
            result: "exit-code".into(),
            main_pid: 0,
            exec_main_code: code,
            exec_main_status: value,
            exec_main_start_us: 0,
            exec_main_exit_us: 0,
            active_enter_us: 0,
            inactive_enter_us: 0,
            n_restarts: 0,
            inactive_exit_us: 0,
            invocation_id: String::new(),
            control_group: String::new(),
            failed_command: None,
        }
    }

    #[test]
    fn exited_status_is_an_exit_code() {
        assert_eq!(status(1, 3).exit_code(), Some(3));
        assert_eq!(status(1, 3).signal(), None);
    }

    #[test]
    fn killed_and_dumped_status_is_a_signal() {
        assert_eq!(status(2, 9).signal(), Some(9));
        assert_eq!(status(3, 11).signal(), Some(11));
        assert_eq!(status(2, 9).exit_code(), None);
    }

    #[test]
    fn never_ran_has_neither() {
        assert_eq!(status(0, 0).exit_code(), None);
        assert_eq!(status(0, 0).signal(), None);
    }

    fn properties(pairs: &[(&str, Variant<'static>)]) -> HashMap<String, OwnedVariant> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), OwnedVariant::try_from(value).unwrap()))
            .collect()
    }

    fn running_service() -> Vec<(&'static str, Variant<'static>)> {
        vec![
            ("ActiveState", Variant::from("active")),
            ("SubState", Variant::from("running")),
            ("Result", Variant::from("success")),
            ("MainPID", Variant::from(42u32)),
            ("ExecMainCode", Variant::from(0i32)),
            ("ExecMainStatus", Variant::from(0i32)),
            (
                "ExecMainStartTimestamp",
                Variant::from(1_700_000_000_000_000u64),
            ),
            ("ExecMainExitTimestamp", Variant::from(0u64)),
            (
                "ActiveEnterTimestamp",
                Variant::from(1_700_000_000_000_001u64),
            ),
            ("InactiveEnterTimestamp", Variant::from(0u64)),
            ("NRestarts", Variant::from(2u32)),
            (
                "InactiveExitTimestamp",
                Variant::from(1_699_999_999_999_000u64),
            ),
            (
                "InvocationID",
                Variant::from((0u8..16).collect::<Vec<u8>>()),
            ),
        ]
    }

    #[test]
    fn properties_map_to_status() {
        let name: UnitName = "systemk.a.b.c.service".parse().unwrap();
        let status = from_properties(&name, &properties(&running_service())).unwrap();
        assert_eq!(status.active_state, ActiveState::Active);
        assert_eq!((status.main_pid, status.n_restarts), (42, 2));
        assert_eq!(status.exec_main_start_us, 1_700_000_000_000_000);
        assert_eq!(status.sub_state, "running");
        assert_eq!(status.inactive_exit_us, 1_699_999_999_999_000);
        assert_eq!(status.invocation_id, "000102030405060708090a0b0c0d0e0f");
        assert_eq!(status.failed_command, None);
    }

    #[test]
    fn missing_or_mistyped_property_is_an_error() {
        let name: UnitName = "systemk.a.b.c.service".parse().unwrap();
        let mut service = running_service();
        service.retain(|(key, _)| *key != "NRestarts");
        let error = from_properties(&name, &properties(&service)).unwrap_err();
        assert!(error.to_string().contains("NRestarts"), "{error}");
        service.push(("NRestarts", Variant::from("two")));
        assert!(from_properties(&name, &properties(&service)).is_err());
    }

    #[test]
    fn active_states_round_trip() {
        for state in [
            "active",
            "inactive",
            "failed",
            "activating",
            "deactivating",
            "reloading",
        ] {
            assert_eq!(ActiveState::parse(state).as_str(), state);
        }
        assert_eq!(
            ActiveState::parse("new"),
            ActiveState::Unknown("new".into())
        );
    }
}
