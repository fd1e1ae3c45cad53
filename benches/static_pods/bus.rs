//! The few systemd calls the benchmark makes itself, over the system bus: starting units
//! without waiting for their jobs (the floor), counting active units in one call, and
//! reading when each unit became active on CLOCK_MONOTONIC.

use anyhow::Context as _;
use futures::StreamExt as _;
use zbus::{Connection, OwnedObjectPath, OwnedVariant};

const SERVICE: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";

/// A row of `ListUnitsByPatterns`: name, description, load, active, sub, following,
/// object path, job id, job type, job path.
type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// Calls in flight at once: the system bus refuses more than 128 pending replies per
/// connection (dbus-daemon's `max_replies_per_connection`).
const IN_FLIGHT: usize = 100;

/// Enqueues a start job for every unit, [`IN_FLIGHT`] calls at a time, and returns
/// without waiting for the jobs.
pub async fn start_all(bus: &Connection, names: &[String]) -> anyhow::Result<()> {
    let calls = names.iter().map(|name| async move {
        let reply = bus
            .call_method(
                Some(SERVICE),
                MANAGER_PATH,
                Some(MANAGER),
                "StartUnit",
                &(name.as_str(), "replace"),
            )
            .await;
        reply.with_context(|| format!("StartUnit {name}"))
    });
    let mut replies = futures::stream::iter(calls).buffer_unordered(IN_FLIGHT);
    while let Some(reply) = replies.next().await {
        reply?;
    }
    Ok(())
}

/// How many units matching `pattern` are active now.
pub async fn count_active(bus: &Connection, pattern: &str) -> anyhow::Result<usize> {
    let reply = bus
        .call_method(
            Some(SERVICE),
            MANAGER_PATH,
            Some(MANAGER),
            "ListUnitsByPatterns",
            &(vec!["active"], vec![pattern]),
        )
        .await
        .context("ListUnitsByPatterns")?;
    let rows: Vec<UnitRow> = reply.body().deserialize()?;
    Ok(rows.len())
}

/// `ActiveEnterTimestampMonotonic` of `name` in µs: when systemd saw it become active
/// (for `Type=exec`, once the main process has exec'd its binary).
pub async fn active_enter_monotonic_us(bus: &Connection, name: &str) -> anyhow::Result<u64> {
    let reply = bus
        .call_method(
            Some(SERVICE),
            MANAGER_PATH,
            Some(MANAGER),
            "GetUnit",
            &(name,),
        )
        .await
        .with_context(|| format!("GetUnit {name}"))?;
    let path: OwnedObjectPath = reply.body().deserialize()?;
    let reply = bus
        .call_method(
            Some(SERVICE),
            &path,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(UNIT, "ActiveEnterTimestampMonotonic"),
        )
        .await
        .with_context(|| format!("ActiveEnterTimestampMonotonic of {name}"))?;
    let value: OwnedVariant = reply.body().deserialize()?;
    u64::try_from(value).with_context(|| format!("ActiveEnterTimestampMonotonic of {name}"))
}

/// Enqueues a stop job for every unit, [`IN_FLIGHT`] calls at a time, and returns without
/// waiting for the jobs.
pub async fn stop_all(bus: &Connection, names: &[String]) -> anyhow::Result<()> {
    let calls = names.iter().map(|name| async move {
        let reply = bus
            .call_method(
                Some(SERVICE),
                MANAGER_PATH,
                Some(MANAGER),
                "StopUnit",
                &(name.as_str(), "replace"),
            )
            .await;
        match reply {
            // A unit that is not loaded is stopped already.
            Err(error) if !error.to_string().contains("NoSuchUnit") => {
                Err(error).with_context(|| format!("StopUnit {name}"))
            }
            _ => Ok(()),
        }
    });
    let mut replies = futures::stream::iter(calls).buffer_unordered(IN_FLIGHT);
    while let Some(reply) = replies.next().await {
        reply?;
    }
    Ok(())
}

/// daemon-reload; returns once systemd has re-read every unit file.
pub async fn reload(bus: &Connection) -> anyhow::Result<()> {
    bus.call_method(Some(SERVICE), MANAGER_PATH, Some(MANAGER), "Reload", &())
        .await
        .context("Reload")?;
    Ok(())
}

/// systemd's `Reloading` signals from now on (sent while a client such as the agent is
/// subscribed): `true` when a daemon-reload starts, `false` when it is done.
pub async fn reloads(bus: &Connection) -> anyhow::Result<zbus::MessageStream> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(MANAGER)
        .member("Reloading")
        .build()?;
    Ok(zbus::MessageStream::for_match_rule(rule, bus, None).await?)
}

/// Waits until a daemon-reload announced on `reloads` is done, at most `deadline`.
pub async fn reload_done(
    reloads: &mut zbus::MessageStream,
    deadline: std::time::Duration,
) -> anyhow::Result<()> {
    let done = async {
        while let Some(message) = reloads.next().await {
            if let Ok(false) = message?.body().deserialize::<bool>() {
                return Ok(());
            }
        }
        anyhow::bail!("the bus connection closed")
    };
    tokio::time::timeout(deadline, done)
        .await
        .with_context(|| format!("no daemon-reload within {deadline:?}"))?
}
