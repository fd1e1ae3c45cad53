//! What a run that just ended left behind, read once when systemk sees it end: the last
//! journal lines of a start that failed (`pod::start_failure`), and the container's
//! termination message (`pod::termination_message`). Part of a pass. Layer 4.

use std::path::Path;

use k8s_openapi::api::core::v1::Container;

use super::off_runtime;
use crate::pod::restart::ContainerRestarts;
use crate::pod::start_failure;
use crate::pod::termination_file;
use crate::pod::termination_message::{self, FileRead, Message, MessagePolicy};
use crate::systemd::{UnitStatus, invocation_output_tail, invocation_tail};

/// Keeps the last journal lines of a start that just failed, for the status. A journal
/// that cannot be read leaves the reason alone: the status still says what failed.
pub(super) async fn read_start_log(restarts: &mut ContainerRestarts, unit: &UnitStatus) {
    if restarts
        .last_start_error()
        .is_none_or(|error| error.log_read)
    {
        return;
    }
    if unit.invocation_id.is_empty() {
        restarts.attach_start_log(Vec::new());
        return;
    }
    let lines = match invocation_tail(&unit.invocation_id, start_failure::LOG_LINES).await {
        Ok(lines) => lines,
        Err(err) => {
            tracing::warn!(unit = %unit.name, error = %crate::error_chain::Chain(&err), "reading the journal of a failed start failed");
            Vec::new()
        }
    };
    restarts.attach_start_log(lines);
}

/// Keeps the termination message of the run that just ended (`pod::termination_message`):
/// its file, or with `FallbackToLogsOnError` the end of that run's journal. A journal
/// that cannot be read leaves no message.
pub(super) async fn read_message(
    restarts: &mut ContainerRestarts,
    unit: &UnitStatus,
    container: &Container,
    pod_dir: &Path,
) {
    let Some(exit) = restarts.last_exit() else {
        return;
    };
    let policy = MessagePolicy::from_spec(container.termination_message_policy.as_deref());
    let program_ran = restarts.last_start_error().is_none();
    let (dir, name) = (pod_dir.to_owned(), container.name.clone());
    let file = off_runtime(pod_dir, move || Ok(termination_file::read(&dir, &name)))
        .await
        .unwrap_or_else(|err| FileRead::Failed(crate::error_chain::Chain(&err).to_string()));
    let message = match termination_message::message(
        policy,
        !exit.status.succeeded(),
        program_ran,
        file,
    ) {
        Message::Known(message) => message,
        Message::FromLog if unit.invocation_id.is_empty() => None,
        Message::FromLog => {
            match invocation_output_tail(&unit.invocation_id, termination_message::MAX_LOG_LINES)
                .await
            {
                Ok(lines) => termination_message::from_log(&lines),
                Err(err) => {
                    tracing::warn!(unit = %unit.name, error = %crate::error_chain::Chain(&err), "reading the journal for a termination message failed");
                    None
                }
            }
        }
    };
    restarts.attach_message(message);
}
