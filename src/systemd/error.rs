//! The one error type of the `systemd` layer. D-Bus failures keep the error name and
//! message systemd sent, as strings: zbus types never leave this module.

use std::path::PathBuf;
use std::time::Duration;

/// D-Bus error names that mean "try again later": the bus or systemd is busy, restarting
/// or briefly unreachable.
const TRANSIENT_ERROR_NAMES: &[&str] = &[
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Timeout",
    "org.freedesktop.DBus.Error.TimedOut",
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.LimitsExceeded",
    "org.freedesktop.systemd1.TransactionIsDestructive",
    "org.freedesktop.systemd1.TransactionOrderIsCyclic",
];

/// systemd's answer when a unit is not loaded.
pub(crate) const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// What went wrong while talking to systemd or writing its unit files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// systemd answered a call with a D-Bus error.
    #[error("systemd {operation}{}: {name}: {message}", of_unit(unit))]
    Call {
        /// The call, e.g. "StartUnit".
        operation: &'static str,
        /// The unit (or units) it was about.
        unit: String,
        /// The D-Bus error name, e.g. `org.freedesktop.systemd1.NoSuchUnit`.
        name: String,
        /// The message systemd sent with it.
        message: String,
    },

    /// The bus connection failed or a reply could not be read.
    #[error("D-Bus {operation}{}: {message}", of_unit(unit))]
    Bus {
        /// What was being done.
        operation: &'static str,
        /// The unit it was about, or empty.
        unit: String,
        /// What zbus reported.
        message: String,
    },

    /// systemd's reply lacked a property every service unit has, or had it with
    /// another type.
    #[error("systemd reported no {property} for {unit}")]
    MissingProperty {
        /// The unit.
        unit: String,
        /// The D-Bus property name.
        property: &'static str,
    },

    /// The signal stream ended before a job finished: the bus connection closed.
    #[error("lost the connection to systemd while waiting for the {operation} job of {unit}")]
    JobWatchLost {
        /// The job type, e.g. "stop".
        operation: &'static str,
        /// The unit.
        unit: String,
    },

    /// A unit still had not stopped after SIGKILL.
    #[error("{unit} did not stop within {waited:?}, not even after SIGKILL")]
    StopTimedOut {
        /// The unit.
        unit: String,
        /// How long systemk waited in total.
        waited: Duration,
    },

    /// Reading, writing or removing a unit file failed.
    #[error("{operation} {path}")]
    Io {
        /// What was being done, e.g. "write unit file".
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A unit file systemk manages has no valid `[X-Kubernetes]` section.
    #[error("unit file {path}")]
    UnitFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::unit::Error,
    },

    /// A vendor unit name that is not a valid systemd unit name.
    #[error("{name:?} is not a valid systemd unit name: {why}")]
    InvalidUnitName {
        /// The offending value.
        name: String,
        /// What rule it breaks.
        why: &'static str,
    },

    /// An invocation ID that is not 32 hex digits (systemd never reports one).
    #[error("{id:?} is not a systemd invocation ID")]
    InvalidInvocationId {
        /// The offending value, cut to 64 characters.
        id: String,
    },

    /// Reading a unit run's journal failed.
    #[error("reading the journal of invocation {invocation}: {message}")]
    Journal {
        /// The invocation ID.
        invocation: String,
        /// What failed.
        message: String,
    },
}

/// " <unit>" for messages, nothing when the operation concerns no unit.
fn of_unit(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

/// Result with the systemd layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The CamelCase reason shown in pod status and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Call { .. } | Self::MissingProperty { .. } => "SystemdError",
            Self::Bus { .. } | Self::JobWatchLost { .. } => "SystemdUnavailable",
            Self::StopTimedOut { .. } => "StopTimedOut",
            Self::Io { .. } => "UnitFileError",
            Self::UnitFile { .. } => "InvalidUnitMetadata",
            Self::InvalidUnitName { .. } => "InvalidUnitName",
            Self::InvalidInvocationId { .. } | Self::Journal { .. } => "JournalError",
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Call { name, .. } => TRANSIENT_ERROR_NAMES.contains(&name.as_str()),
            Self::Bus { .. }
            | Self::JobWatchLost { .. }
            | Self::StopTimedOut { .. }
            | Self::Journal { .. } => true,
            Self::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput
            ),
            Self::UnitFile { .. }
            | Self::InvalidUnitName { .. }
            | Self::MissingProperty { .. }
            | Self::InvalidInvocationId { .. } => false,
        }
    }

    /// Whether systemd could not be reached at all (the bus connection failed or
    /// closed), as opposed to systemd answering with an error.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Bus { .. } | Self::JobWatchLost { .. })
    }

    /// The D-Bus error name when systemd answered with an error.
    pub fn dbus_name(&self) -> Option<&str> {
        match self {
            Self::Call { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether systemd said the unit is not loaded.
    pub(crate) fn is_no_such_unit(&self) -> bool {
        self.dbus_name() == Some(NO_SUCH_UNIT)
    }

    /// Classifies a zbus error of `operation` on `unit`.
    pub(super) fn from_zbus(operation: &'static str, unit: &str, error: zbus::Error) -> Self {
        use zbus::DBusError as _;
        let unit = unit.to_owned();
        match error {
            zbus::Error::MethodError(name, message, _) => Self::Call {
                operation,
                unit,
                name: name.to_string(),
                message: message.unwrap_or_default(),
            },
            zbus::Error::FDO(fdo) => Self::Call {
                operation,
                unit,
                name: fdo.name().to_string(),
                message: fdo.description().unwrap_or_default().to_owned(),
            },
            other => Self::Bus {
                operation,
                unit,
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str) -> Error {
        Error::Call {
            operation: "StartUnit",
            unit: "systemk.a.b.c.service".into(),
            name: name.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn missing_unit_is_permanent() {
        assert!(!call(NO_SUCH_UNIT).is_transient());
        assert!(call(NO_SUCH_UNIT).is_no_such_unit());
        assert_eq!(call(NO_SUCH_UNIT).reason(), "SystemdError");
    }

    #[test]
    fn no_reply_is_transient() {
        assert!(call("org.freedesktop.DBus.Error.NoReply").is_transient());
    }

    #[test]
    fn message_keeps_dbus_name() {
        let text = call(NO_SUCH_UNIT).to_string();
        assert!(
            text.contains(NO_SUCH_UNIT) && text.contains("StartUnit"),
            "{text}"
        );
    }
}
