//! The container's side of an attach session: no command runs; the output of the
//! container's current run comes from the journal and the client's input goes to the
//! container's FIFO. `journalctl --follow` matched on the run's invocation ID
//! (`_SYSTEMD_INVOCATION_ID`) and the pod's UID (`SYSTEMK_POD_UID`, as the logs handler
//! matches): only what the run writes from the request on (to the µs, so nothing written
//! while `journalctl` starts is lost, input the client sent at once included), as
//! `docker attach` and the kubelet stream it, never an earlier run or pod. The journal does not tell stdout from stderr
//! (systemd hands the unit one stream for both), so it all goes out on stdout, or on
//! stderr when only that was asked for. The session ends with success when the run ends
//! (systemd reports no main process, or a later run), after its last lines; the client's
//! leaving kills `journalctl`. Layer 6.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::unix::pipe;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::State;
use super::command_session::StreamFlags;
use super::journal::{JSON_ENTRY_ARGS, LineFormat, entry_line, oversized_entry_line};
use super::logs::{Entry, read_entry};
use super::remote_command::{CommandEnds, FromCommand};
use super::stream::status::Outcome;
use crate::pod::check_uid;
use crate::systemd::{ManagedUnit, Systemd};
use crate::unit::UnitName;

/// How often systemd is asked whether the run still goes on.
const RUN_CHECK: Duration = Duration::from_secs(1);
/// After the run ended, lines still arriving are passed on until the journal stays quiet
/// this long.
const DRAIN_IDLE: Duration = Duration::from_millis(500);

/// Where an output line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Stdout,
    Stderr,
    /// Neither was asked for: lines are read (to see the run end) and dropped.
    Nowhere,
}

/// What the session follows: one run of one container unit.
pub struct Follow {
    systemd: Systemd,
    unit: UnitName,
    invocation_id: String,
    args: Vec<String>,
    target: Target,
    format: LineFormat,
    max_entry_bytes: usize,
}

impl Follow {
    /// The current run of `unit` from `since_us` (µs since the epoch) on, its output sent
    /// where `flags` ask; an error text when the unit's invocation ID or pod UID cannot be
    /// matched on.
    pub fn of(
        state: &State,
        unit: &ManagedUnit,
        flags: StreamFlags,
        since_us: i64,
    ) -> Result<Self, String> {
        let invocation_id = unit.status.invocation_id.clone();
        let args = follow_args(&invocation_id, &unit.meta.pod_uid, since_us)?;
        let target = match (flags.stdout, flags.stderr) {
            (true, _) => Target::Stdout,
            (false, true) => Target::Stderr,
            (false, false) => Target::Nowhere,
        };
        Ok(Self {
            systemd: state.systemd.clone(),
            unit: unit.status.name.clone(),
            invocation_id,
            args,
            target,
            format: LineFormat {
                timestamps: false,
                since_us: Some(since_us),
                max_line_bytes: state.limits.max_line_bytes,
            },
            max_entry_bytes: state.limits.max_entry_bytes,
        })
    }

    /// Whether the run followed is over: no main process, or a later run.
    async fn run_ended(&self) -> bool {
        match self.systemd.status(&self.unit).await {
            Ok(status) => status.main_pid == 0 || status.invocation_id != self.invocation_id,
            Err(error) => {
                tracing::info!(unit = %self.unit, %error, "attach: cannot read the unit's state");
                false
            }
        }
    }
}

/// The `journalctl` arguments for what the run `invocation_id` of the pod `pod_uid`
/// writes from `since_us` on (whole seconds: [`entry_line`] drops what is older to the
/// µs); an error text when either is not what systemd and the API give.
fn follow_args(invocation_id: &str, pod_uid: &str, since_us: i64) -> Result<Vec<String>, String> {
    if invocation_id.len() != 32 || !invocation_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "the container's run has no invocation ID ({invocation_id:?})"
        ));
    }
    check_uid(pod_uid).map_err(|err| err.to_string())?;
    let mut args: Vec<String> = JSON_ENTRY_ARGS.map(str::to_owned).to_vec();
    args.extend(["--follow".to_owned(), "--no-tail".to_owned()]);
    args.push(format!("--since=@{}", since_us.div_euclid(1_000_000)));
    args.push(format!("_SYSTEMD_INVOCATION_ID={invocation_id}"));
    args.push(format!("SYSTEMK_POD_UID={pod_uid}"));
    Ok(args)
}

/// Runs the container's side: once the client's streams are open, copies the run's
/// output out and the client's input into `fifo` (dropped when there is none) until the
/// run ends or the transport goes away.
pub async fn run(ends: CommandEnds, follow: Follow, fifo: Option<pipe::Sender>) {
    let (ready, stdin, output) = ends.into_parts();
    if ready.await.is_err() {
        return;
    }
    let outcome = tokio::select! {
        outcome = copy_output(&follow, &output) => outcome,
        () = feed(fifo, stdin) => None,
    };
    if let Some(outcome) = outcome {
        let _ = output.send(FromCommand::Done(outcome)).await;
    }
    tracing::info!(unit = %follow.unit, "attach: the container's side ended");
}

/// Copies the run's output to `output` until the run ended and its last lines are out;
/// `None` when the transport went away.
async fn copy_output(follow: &Follow, output: &mpsc::Sender<FromCommand>) -> Option<Outcome> {
    let spawned = Command::new("journalctl")
        .args(&follow.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => return Some(Outcome::Failed(format!("cannot run journalctl: {error}"))),
    };
    let Some(stdout) = child.stdout.take() else {
        return Some(Outcome::Failed("journalctl has no output".into()));
    };
    let mut entries = BufReader::new(stdout);
    let mut check = tokio::time::interval(RUN_CHECK);
    let mut drain_until: Option<Instant> = None;
    loop {
        tokio::select! {
            entry = read_entry(&mut entries, follow.max_entry_bytes) => {
                let line = match entry {
                    Ok(Some(Entry::Whole(entry))) => entry_line(&entry, &follow.format),
                    Ok(Some(Entry::Oversized(prefix))) => {
                        oversized_entry_line(&prefix, follow.max_entry_bytes, &follow.format)
                    }
                    Ok(None) | Err(_) => {
                        return Some(Outcome::Failed("the journal could not be followed".into()));
                    }
                };
                let Some(line) = line else { continue };
                if drain_until.is_some() {
                    drain_until = Some(Instant::now() + DRAIN_IDLE);
                }
                let message = match follow.target {
                    Target::Stdout => FromCommand::Stdout(line),
                    Target::Stderr => FromCommand::Stderr(line),
                    Target::Nowhere => continue,
                };
                if output.send(message).await.is_err() {
                    return None;
                }
            }
            _ = check.tick(), if drain_until.is_none() => {
                if follow.run_ended().await {
                    drain_until = Some(Instant::now() + DRAIN_IDLE);
                }
            }
            () = tokio::time::sleep_until(drain_until.unwrap_or_else(Instant::now)),
                if drain_until.is_some() => return Some(Outcome::Success),
            () = output.closed() => return None,
        }
    }
}

/// Writes the client's input into `fifo` until the client closes it; without a FIFO (or
/// once it fails) the input is read and dropped, so the client is never held back. The
/// container's input stays open: systemd holds the FIFO. Never completes.
async fn feed(mut fifo: Option<pipe::Sender>, mut chunks: mpsc::Receiver<Vec<u8>>) {
    while let Some(chunk) = chunks.recv().await {
        if let Some(pipe) = fifo.as_mut()
            && let Err(error) = pipe.write_all(&chunk).await
        {
            tracing::info!(%error, "attach: the container's standard input is gone");
            fifo = None;
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_journal_is_followed_from_now_for_this_run_of_this_pod() {
        let args = follow_args(RUN, "6f1c1d2e-0000-4000-8000-000000000031", 1_500_000).unwrap();
        assert!(args.contains(&"--follow".to_owned()) && args.contains(&"--no-tail".to_owned()));
        assert!(args.contains(&"--since=@1".to_owned()));
        assert_eq!(
            args[args.len() - 2..],
            [
                format!("_SYSTEMD_INVOCATION_ID={RUN}"),
                "SYSTEMK_POD_UID=6f1c1d2e-0000-4000-8000-000000000031".to_owned()
            ]
        );
    }

    #[test]
    fn a_run_without_an_invocation_id_or_a_bad_uid_is_not_followed() {
        assert!(follow_args("", "u-1", 0).is_err());
        assert!(follow_args("0123 OR x", "u-1", 0).is_err());
        assert!(follow_args(RUN, "u 1 _SYSTEMD_UNIT=x", 0).is_err());
    }
}
