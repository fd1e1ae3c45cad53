//! Starts that fail: what systemd reports when a container's unit could not get its
//! program running, turned into an exit the restart state machine counts (so a unit that
//! fails to start backs off like one that exits, instead of being started again at once),
//! and the bounded message the container's `lastState.terminated` shows. The facts and
//! bounds live here; [`super::observe`] reads a unit status with them. Pure. Layer 4.
//!
//! What systemd 252 reports, checked in the test sandbox:
//! - `ExecStartPre=` fails, or the `ExecStart=` of `Type=forking`/`oneshot` (a control
//!   process) fails: `ActiveState=failed`, `Result=exit-code` (or `signal`, `timeout`,
//!   `protocol` for a missing PID file …), `ExecMainStartTimestamp`, `ExecMainCode` and
//!   `ExecMainStatus` all 0 (reset at every start), `InactiveExitTimestamp` = when the
//!   start began, the exit only in the `ExecStartPre`/`ExecStart` property; the start job
//!   ends `failed`. Nothing else marks the attempt, so it is keyed on
//!   `InactiveExitTimestamp`.
//! - The main process of `Type=simple`/`exec`/`notify` cannot be set up (program missing,
//!   203/EXEC; user missing, 217/USER; 200–245 in general): the main process existed, so
//!   `ExecMain*` hold the start, exit and code (`ExecMainCode=1`, status 203); the job of
//!   a `simple` unit ends `done`, of a `notify` one `failed`. This already counts as an
//!   exit; it is a start failure too, for the message.
//! - A failed `Condition…=` or `ExecCondition=` (exit 1–254): `ActiveState=inactive`,
//!   `Result=success`, `ConditionResult=no`, no invocation ID, job `done`. A failed
//!   `Requires=` dependency: the same, job `dependency`. Nothing ran and the unit's state
//!   did not change, so no event asks for another pass; not modelled as a failure.

use super::restart::ExitStatus;

/// The exit code shown for a start that failed without any command failing (e.g. a
/// `Type=forking` unit whose `PIDFile=` never appeared: `Result=protocol`): the 128
/// container runtimes report for `StartError`.
pub const START_ERROR_EXIT_CODE: i32 = 128;

/// The terminated reason the kubelet shows when the runtime could not start a container.
pub const START_ERROR_REASON: &str = "StartError";

/// Journal lines of a failed start kept for the status.
pub const LOG_LINES: usize = 6;

/// Bytes kept of one journal line.
pub const MAX_LINE_BYTES: usize = 300;

/// Bytes of the whole message, reason and lines together. The kubelet bounds a
/// container's termination message to 4096 bytes; this stays well below.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// How a start command ended, for the reason of a failed start.
pub fn ended(status: Option<ExitStatus>) -> String {
    match status {
        Some(ExitStatus::Code(code)) => match setup_step(code) {
            Some(what) => format!("exited with status {code} (systemd's {what})"),
            None => format!("exited with status {code}"),
        },
        Some(ExitStatus::Signal(signal)) => format!("was killed by signal {signal}"),
        None => "ended".to_owned(),
    }
}

/// What systemd's own exit codes mean (`systemd.exec(5)`, "Process Exit Codes"): systemd
/// exits the child with one of them when setting the process up failed, before the
/// program ran.
pub fn setup_step(code: i32) -> Option<&'static str> {
    Some(match code {
        200 => "CHDIR: the workingDir could not be entered",
        203 => "EXEC: the program could not be executed (missing, or not executable)",
        204 => "MEMORY: out of memory while setting the process up",
        208 => "STDIN: standard input could not be set up",
        209 => "STDOUT: standard output could not be set up",
        216 => "GROUP: the group could not be resolved",
        217 => "USER: the user could not be resolved",
        218 => "CAPABILITIES: capabilities could not be set",
        219 => "CGROUP: the process could not join its cgroup",
        226 => "NAMESPACE: the mount namespace (volumes, hardening) could not be set up",
        227 => "NO_NEW_PRIVILEGES: no_new_privs could not be set",
        228 => "SECCOMP: the system call filter could not be applied",
        233 => "RUNTIME_DIRECTORY: the runtime directory could not be created",
        238 => "STATE_DIRECTORY: the state directory could not be created",
        243 => "CREDENTIALS: credentials could not be set up",
        201..=245 => "systemd could not set the process up",
        _ => return None,
    })
}

/// The message of a failed start: `reason`, then the last journal `lines` of that run,
/// each on its own line. Bounded: at most [`LOG_LINES`] lines of [`MAX_LINE_BYTES`]
/// each and [`MAX_MESSAGE_BYTES`] in all, cut at character boundaries. Control
/// characters in a line (a pod's output is arbitrary) become U+FFFD, so one journal entry
/// stays one line and no terminal escape reaches whoever reads the status; the result is
/// plain data for a JSON string.
pub fn start_error_message(reason: &str, lines: &[String]) -> String {
    let mut message = clean(reason, MAX_LINE_BYTES);
    let skip = lines.len().saturating_sub(LOG_LINES);
    let lines: Vec<String> = lines[skip..]
        .iter()
        .map(|line| clean(line, MAX_LINE_BYTES))
        .collect();
    if !lines.is_empty() {
        message.push_str("; last log lines:");
        for line in lines {
            message.push('\n');
            message.push_str(&line);
        }
    }
    cut(message, MAX_MESSAGE_BYTES)
}

/// `text` with control characters replaced and cut to `max` bytes.
fn clean(text: &str, max: usize) -> String {
    let cleaned: String = text
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    cut(cleaned, max)
}

/// `text` cut to at most `max` bytes at a character boundary, ending in "…" when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

#[cfg(test)]
mod tests;
