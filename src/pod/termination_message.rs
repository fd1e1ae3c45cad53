//! Termination messages, by the kubelet's rules (pkg/kubelet/kuberuntime/
//! kuberuntime_container.go `getTerminationMessage`, `readLastStringFromContainerLogs`;
//! the limits of pkg/kubelet/container/runtime.go; the per-pod cut of
//! pkg/kubelet/status/status_manager.go `normalizeStatus`):
//!
//! - after a run ends, the message is the last 4096 bytes of the container's
//!   termination-message file (`unit::termination_log`), which it wrote at
//!   `terminationMessagePath`;
//! - with `terminationMessagePolicy: FallbackToLogsOnError`, a run that failed (exit code
//!   not 0, or a signal) and left the file empty or missing takes the last 80 lines of its
//!   log instead — of that run only (its journal invocation), at most the last 2048 bytes;
//!   a start that never ran the program has no logs to fall back to, as the kubelet skips
//!   `ContainerCannotRun`;
//! - a file that cannot be read gives "Error on reading termination log …", no fallback;
//! - in the pod's status every terminated message (state and lastState) is cut to its
//!   first 12 KiB / (number of containers and init containers) bytes.
//!
//! Pure: the file's bytes and the journal lines come in as data. Layer 4.

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, PodStatus};

/// The kubelet's `MaxContainerTerminationMessageLength`: bytes kept of the file, its end.
pub const MAX_FILE_BYTES: usize = 4 * 1024;
/// The kubelet's `MaxContainerTerminationMessageLogLines`.
pub const MAX_LOG_LINES: usize = 80;
/// The kubelet's `MaxContainerTerminationMessageLogLength`: bytes kept of the log lines.
pub const MAX_LOG_BYTES: usize = 2 * 1024;
/// The kubelet's `MaxPodTerminationMessageLogLength`: bytes of all messages of a pod.
pub const MAX_POD_BYTES: usize = 12 * 1024;

/// A container's `terminationMessagePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePolicy {
    /// `File` (the default): the message is what the file holds.
    File,
    /// `FallbackToLogsOnError`: the log's end when the run failed and the file is empty.
    FallbackToLogsOnError,
}

impl MessagePolicy {
    /// The policy the spec names; anything else (the API server allows only these two)
    /// is `File`.
    pub fn from_spec(value: Option<&str>) -> Self {
        match value {
            Some("FallbackToLogsOnError") => Self::FallbackToLogsOnError,
            _ => Self::File,
        }
    }
}

/// What reading the termination-message file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRead {
    /// There is no file (the container never had one, e.g. a privileged one's `/dev`).
    Missing,
    /// Its last bytes, at most [`MAX_FILE_BYTES`].
    Bytes(Vec<u8>),
    /// It could not be read: the path and why.
    Failed(String),
}

/// What the message of a run is, once the file was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// This text; `None` when there is none.
    Known(Option<String>),
    /// The end of the run's log: read it, then call [`from_log`].
    FromLog,
}

/// The message of a run that ended (`failed`: with a non-zero code or a signal;
/// `program_ran`: not a start error) from what its file held, under `policy`.
pub fn message(policy: MessagePolicy, failed: bool, program_ran: bool, file: FileRead) -> Message {
    let fallback = policy == MessagePolicy::FallbackToLogsOnError && failed && program_ran;
    match file {
        FileRead::Failed(why) => {
            Message::Known(Some(format!("Error on reading termination log {why}")))
        }
        FileRead::Bytes(bytes) if !bytes.is_empty() => Message::Known(Some(
            String::from_utf8_lossy(tail(&bytes, MAX_FILE_BYTES)).into_owned(),
        )),
        FileRead::Missing | FileRead::Bytes(_) if fallback => Message::FromLog,
        FileRead::Missing | FileRead::Bytes(_) => Message::Known(None),
    }
}

/// The message from a run's log lines (oldest first): the last [`MAX_LOG_LINES`] lines,
/// each ended by a newline as it was written, then their last [`MAX_LOG_BYTES`] bytes.
/// `None` when the run logged nothing.
pub fn from_log(lines: &[String]) -> Option<String> {
    let first = lines.len().saturating_sub(MAX_LOG_LINES);
    let text: String = lines[first..]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    let kept = tail(text.as_bytes(), MAX_LOG_BYTES);
    (!kept.is_empty()).then(|| String::from_utf8_lossy(kept).into_owned())
}

/// `status` with every terminated message cut to the pod's share: [`MAX_POD_BYTES`]
/// divided by the number of containers (`containers`, init containers included).
pub fn cut_to_pod_share(status: &mut PodStatus, containers: usize) {
    let share = MAX_POD_BYTES / containers.max(1);
    let cut_state = |state: &mut Option<ContainerState>| {
        let message = state
            .as_mut()
            .and_then(|s| s.terminated.as_mut())
            .and_then(|t| t.message.as_mut());
        if let Some(message) = message {
            truncate_at_char(message, share);
        }
    };
    let lists = [
        status.init_container_statuses.as_mut(),
        status.container_statuses.as_mut(),
    ];
    for list in lists.into_iter().flatten() {
        for ContainerStatus {
            state, last_state, ..
        } in list.iter_mut()
        {
            cut_state(state);
            cut_state(last_state);
        }
    }
}

/// The last `max` bytes of `bytes`.
fn tail(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(max)..]
}

/// `text` cut to at most `max` bytes, at a character boundary (Go cuts bytes, and its
/// JSON encoder then replaces a split character with U+FFFD; a `String` must stay UTF-8).
fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests;
