//! The last journal lines of one run (invocation) of a unit, for the status of a container
//! whose start failed: what its start commands printed and what systemd said about them
//! ("Failed at step EXEC spawning …", "Control process exited, code=exited, status=3").
//! Read with `journalctl` (argv only, no shell), bounded in lines and bytes. The match is
//! the invocation ID: lines the unit's processes wrote (`_SYSTEMD_INVOCATION_ID`, set by
//! journald, not by the writer) or systemd itself wrote about that run (`INVOCATION_ID`
//! from PID 1). Layer 3.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::error::{Error, Result};

/// How long one read may take; the journal is local, a slow read is a sick journald.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long journald may take to write what it has queued before a read.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// Most bytes of journalctl output read; entries beyond are dropped.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// The messages of the last `lines` journal entries of the run `invocation_id` (32 hex
/// digits, as systemd reports it), oldest first; non-UTF-8 bytes are replaced.
pub async fn invocation_tail(invocation_id: &str, lines: usize) -> Result<Vec<String>> {
    read_tail(invocation_id, lines, true).await
}

/// The messages of the last `lines` entries the run `invocation_id` logged itself (its
/// output and `syslog()`), without systemd's own about it, oldest first: the
/// container's log of that run.
/// Only the `MESSAGE` field is asked for, and when the output is longer than can be
/// read, its end is kept: these are the newest entries.
///
/// The run's last output may still wait in journald's stream socket when systemk sees
/// the run ended, so `journalctl --sync` goes first: journald handles that request at a
/// lower priority than its streams, so it answers only once what was queued is in the
/// journal. A busy journald may take a while to get there (it writes every stream's
/// backlog first); a sync that fails or takes longer than [`SYNC_TIMEOUT`] is logged and
/// the journal read as it is: most of the run's output, rather than none.
pub async fn invocation_output_tail(invocation_id: &str, lines: usize) -> Result<Vec<String>> {
    if let Err(err) = sync(invocation_id).await {
        tracing::warn!(error = %crate::error_chain::Chain(&err), "the journal's last lines may be missing");
    }
    read_tail(invocation_id, lines, false).await
}

/// `journalctl --sync`, bounded by [`SYNC_TIMEOUT`].
async fn sync(invocation_id: &str) -> Result<()> {
    let failed = |message: String| Error::Journal {
        invocation: invocation_id.to_owned(),
        message,
    };
    let status = Command::new("journalctl")
        .arg("--sync")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(SYNC_TIMEOUT, status)
        .await
        .map_err(|_| {
            failed(format!(
                "journalctl --sync: no answer within {SYNC_TIMEOUT:?}"
            ))
        })?
        .map_err(|err| failed(err.to_string()))?;
    if !status.success() {
        return Err(failed(format!("journalctl --sync exited with {status}")));
    }
    Ok(())
}

async fn read_tail(invocation_id: &str, lines: usize, with_systemd: bool) -> Result<Vec<String>> {
    if invocation_id.len() != 32 || !invocation_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidInvocationId {
            id: invocation_id.chars().take(64).collect(),
        });
    }
    let failed = |message: String| Error::Journal {
        invocation: invocation_id.to_owned(),
        message,
    };
    let output = Command::new("journalctl")
        .args(invocation_tail_args(invocation_id, lines, with_systemd))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(READ_TIMEOUT, output)
        .await
        .map_err(|_| failed(format!("no answer within {READ_TIMEOUT:?}")))?
        .map_err(|err| failed(err.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!("journalctl exited with {}", output.status)));
    }
    let stdout = if with_systemd {
        &output.stdout[..output.stdout.len().min(MAX_OUTPUT_BYTES)]
    } else {
        // A cut first entry fails to parse and is skipped.
        &output.stdout[output.stdout.len().saturating_sub(MAX_OUTPUT_BYTES)..]
    };
    Ok(messages(stdout))
}

/// `journalctl` arguments for the last `lines` entries of one invocation, with
/// systemd's own entries about it when `with_systemd`.
fn invocation_tail_args(invocation_id: &str, lines: usize, with_systemd: bool) -> Vec<String> {
    let mut args = vec![
        "--no-pager".into(),
        "--quiet".into(),
        "--output=json".into(),
        format!("--lines={lines}"),
        format!("_SYSTEMD_INVOCATION_ID={invocation_id}"),
    ];
    if !with_systemd {
        args.push("--output-fields=MESSAGE".into());
    }
    if with_systemd {
        args.extend([
            "+".into(),
            format!("INVOCATION_ID={invocation_id}"),
            // Only PID 1 speaks for systemd; anyone may send a field called INVOCATION_ID.
            "_PID=1".into(),
        ]);
    }
    args
}

/// The MESSAGE of every entry of `journalctl -o json` output: a string, or an array of
/// bytes when it is not UTF-8.
fn messages(output: &[u8]) -> Vec<String> {
    output
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .filter_map(|entry| match entry.get("MESSAGE")? {
            Value::String(text) => Some(text.clone()),
            Value::Array(bytes) => {
                let bytes: Vec<u8> = bytes
                    .iter()
                    .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_match_the_invocation_from_the_unit_or_from_pid_1() {
        let id = "0123456789abcdef0123456789abcdef";
        let args = invocation_tail_args(id, 5, true);
        assert_eq!(
            args[3..],
            [
                "--lines=5".to_owned(),
                format!("_SYSTEMD_INVOCATION_ID={id}"),
                "+".to_owned(),
                format!("INVOCATION_ID={id}"),
                "_PID=1".to_owned(),
            ]
        );
    }

    #[test]
    fn the_output_tail_matches_the_units_own_entries_only() {
        let id = "0123456789abcdef0123456789abcdef";
        let args = invocation_tail_args(id, 80, false);
        assert_eq!(
            args[3..],
            [
                "--lines=80".to_owned(),
                format!("_SYSTEMD_INVOCATION_ID={id}"),
                "--output-fields=MESSAGE".to_owned(),
            ]
        );
    }

    #[test]
    fn messages_are_read_from_json_entries() {
        let output =
            b"{\"MESSAGE\":\"pre says hi\"}\nnot json\n{\"MESSAGE\":[104,105,255]}\n{\"X\":1}\n";
        assert_eq!(messages(output), ["pre says hi", "hi\u{fffd}"]);
    }

    #[tokio::test]
    async fn a_bad_invocation_id_is_refused_before_journalctl_runs() {
        for id in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcdef --all",
            "../../etc",
        ] {
            let err = invocation_tail(id, 5).await.unwrap_err();
            assert!(matches!(err, Error::InvalidInvocationId { .. }), "{err}");
        }
    }
}
