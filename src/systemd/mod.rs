//! Layer 3: the systemd D-Bus client (zbus) and unit-file writing. zbus types never
//! leave this module: other layers see [`UnitName`](crate::unit::UnitName),
//! [`ActiveState`], [`UnitStatus`], [`UnitUsage`], [`UnitEvent`] and this layer's [`Error`].

mod cgroup_usage;
mod client;
mod dbus_errors;
pub mod enter;
mod error;
mod events;
mod exec_commands;
mod files;
mod freshness;
mod jobs;
mod journal;
mod kill;
mod proxy;
mod reload;
mod status;
mod usage;

pub use cgroup_usage::{CgroupUsage, Cgroups, MemoryUsage};
pub use client::{ManagedUnit, Systemd};
pub use dbus_errors::{DbusErrorLabels, DbusErrors};
pub use enter::{
    Ended, EnterCommand, EnterOutcome, Interactive, Streams, run_in_unit, spawn_in_unit,
};
pub use error::{Error, Result};
pub use events::UnitEvent;
pub use exec_commands::FailedCommand;
pub use jobs::JobResult;
pub use journal::{invocation_output_tail, invocation_tail};
pub use status::{ActiveState, UnitStatus};
pub use usage::UnitUsage;
