//! Ending a unit's processes without a stop job, for a container a probe restarts: the
//! unit's `KillSignal=` to every process of it, SIGKILL to the cgroup once the grace
//! runs out. A stop job would leave the unit `inactive`, and systemd may unload an
//! inactive unit at once and forget how its main process ended; this way systemk's
//! units (`RemainAfterExit=yes`) end `active (exited)` or `failed`, with the exit kept,
//! exactly as when the process ends by itself. Layer 3.

use std::time::Duration;

use zbus::OwnedVariant;

use super::client::Systemd;
use super::error::{Error, Result};
use super::proxy::SYSTEMD_SERVICE;
use crate::unit::UnitName;

/// Linux `SIGTERM`: the signal of a unit whose `KillSignal` cannot be read.
const SIGTERM: i32 = 15;
/// Linux `SIGKILL`, once the grace has run out.
const SIGKILL: i32 = 9;
/// How long the main process may take to go after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How often the main process is looked for while it is given time.
const POLL: Duration = Duration::from_millis(100);

impl Systemd {
    /// Sends the unit's `KillSignal=` to all its processes and waits up to `grace` for
    /// its main process to end, then SIGKILLs every process left. Returns whether the
    /// main process ended.
    pub async fn kill_within(&self, name: &UnitName, grace: Duration) -> Result<bool> {
        let signal = self.kill_signal(name).await.unwrap_or(SIGTERM);
        self.send_signal(name, signal).await?;
        if self.main_ended_within(name, grace).await? {
            return Ok(true);
        }
        tracing::warn!(unit = %name, ?grace, "the grace ran out; sending SIGKILL");
        self.send_signal(name, SIGKILL).await?;
        self.main_ended_within(name, KILL_WAIT).await
    }

    async fn send_signal(&self, name: &UnitName, signal: i32) -> Result<()> {
        self.manager
            .kill_unit(name.as_str(), "all", signal)
            .await
            .map_err(self.failed("KillUnit", name.as_str()))
    }

    async fn main_ended_within(&self, name: &UnitName, wait: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.status(name).await?.main_pid == 0 {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The unit's `KillSignal=` as systemd parsed it.
    async fn kill_signal(&self, name: &UnitName) -> Result<i32> {
        let failed = |error| {
            self.dbus_errors
                .record(Error::from_zbus("Get KillSignal of", name.as_str(), error))
        };
        let path = self
            .manager
            .load_unit(name.as_str())
            .await
            .map_err(failed)?;
        let reply = self
            .connection
            .call_method(
                Some(SYSTEMD_SERVICE),
                &path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.freedesktop.systemd1.Service", "KillSignal"),
            )
            .await
            .map_err(failed)?;
        let value: OwnedVariant = reply.body().deserialize().map_err(failed)?;
        Ok(i32::try_from(&value).unwrap_or(SIGTERM))
    }
}
