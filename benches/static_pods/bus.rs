//! The few systemd calls the benchmark makes itself, over the system bus: starting units
//! without waiting for their jobs (the floor), counting active units in one call, and
//! reading when each unit became active on CLOCK_MONOTONIC.

use std::collections::HashSet;

use anyhow::Context as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
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

/// Jobs the benchmark has pending in systemd at once, calls in flight included. systemd
/// tracks the client of every job queued over the system bus with a match rule on its own
/// bus connection, and dbus-daemon allows a connection 512 (`max_match_rules_per_connection`):
/// past that, systemd fails its connection ("Got disconnect on API bus"; seen here at ~710
/// start jobs enqueued at once). Below the 128 replies a connection may await too.
const JOBS_PENDING: usize = 100;

/// How long the benchmark waits for the next of its jobs to end.
const JOB_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Enqueues a start job for every unit, at most [`JOBS_PENDING`] pending at a time, and
/// returns once the last is enqueued.
pub async fn start_all(bus: &Connection, names: &[String]) -> anyhow::Result<()> {
    run_jobs(bus, "StartUnit", names).await
}

/// Enqueues a stop job for every unit, at most [`JOBS_PENDING`] pending at a time, and
/// returns once the last is enqueued.
pub async fn stop_all(bus: &Connection, names: &[String]) -> anyhow::Result<()> {
    run_jobs(bus, "StopUnit", names).await
}

/// Calls `method` (`StartUnit`, `StopUnit`) for every unit, a new call whenever one of
/// the [`JOBS_PENDING`] jobs ends (its `JobRemoved`). A unit that is not loaded has no
/// job to stop.
async fn run_jobs(bus: &Connection, method: &'static str, names: &[String]) -> anyhow::Result<()> {
    let capacity = std::num::NonZeroUsize::new(names.len() + JOBS_PENDING)
        .context("the job queue's capacity")?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(MANAGER)
        .member("JobRemoved")
        .build()?;
    let mut removals = zbus::MessageStream::for_match_rule(rule, bus, Some(capacity)).await?;
    let mut pending: HashSet<&str> = HashSet::new();
    let mut calls = FuturesUnordered::new();
    let mut next = names.iter();
    loop {
        while pending.len() < JOBS_PENDING {
            let Some(name) = next.next() else { break };
            pending.insert(name);
            calls.push(enqueue(bus, method, name));
        }
        if next.len() == 0 {
            // The last jobs run on; the callers wait for the units' states.
            while let Some(call) = calls.next().await {
                call?;
            }
            return Ok(());
        }
        tokio::select! {
            Some(call) = calls.next() => {
                if let Some(name) = call? {
                    pending.remove(name);
                }
            }
            removal = removals.next() => {
                let message = removal.context("the bus connection closed")??;
                let (_id, _job, unit, _result): (u32, OwnedObjectPath, String, String) =
                    message.body().deserialize()?;
                pending.remove(unit.as_str());
            }
            () = tokio::time::sleep(JOB_DEADLINE) => {
                anyhow::bail!("no job of {method} ended within {JOB_DEADLINE:?}")
            }
        }
    }
}

/// `method` for `name`; `Some(name)` when there is no job (stopping a unit not loaded).
async fn enqueue<'a>(
    bus: &Connection,
    method: &'static str,
    name: &'a str,
) -> anyhow::Result<Option<&'a str>> {
    let reply = bus
        .call_method(
            Some(SERVICE),
            MANAGER_PATH,
            Some(MANAGER),
            method,
            &(name, "replace"),
        )
        .await;
    match reply {
        Ok(_) => Ok(None),
        Err(error) if method == "StopUnit" && error.to_string().contains("NoSuchUnit") => {
            Ok(Some(name))
        }
        Err(error) => Err(error).with_context(|| format!("{method} {name}")),
    }
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
