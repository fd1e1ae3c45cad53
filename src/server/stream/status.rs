//! What exec writes on the status stream (channel 3) when the command ends, as the kubelet
//! writes it (`remotecommand.ServeExec`): from v4 on a JSON `metav1.Status`, Success, or
//! Failure with reason `NonZeroExitCode` and a cause `ExitCode` holding the code, which
//! client-go turns into kubectl's exit code; before v4 only an error text. Pure.
//! Layer: server.

use serde_json::json;

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Success,
    /// A non-zero exit code.
    Exited(i32),
    /// It could not be run or waited for; the text says why.
    Failed(String),
}

/// The v4/v5 status message.
pub fn status_json(outcome: &Outcome) -> Vec<u8> {
    let status = match outcome {
        Outcome::Success => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": message(outcome),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(error) => json!({
            "metadata": {},
            "status": "Failure",
            "message": message(outcome),
            "reason": "InternalError",
            "details": {"causes": [{"message": error}]},
            "code": 500,
        }),
    };
    status.to_string().into_bytes()
}

/// The pre-v4 status message: nothing on success, else the error text.
pub fn status_text(outcome: &Outcome) -> Option<Vec<u8>> {
    (*outcome != Outcome::Success).then(|| message(outcome).into_bytes())
}

fn message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success => String::new(),
        Outcome::Exited(code) => {
            format!("command terminated with non-zero exit code: exit status {code}")
        }
        Outcome::Failed(error) => format!("Internal error occurred: {error}"),
    }
}

#[cfg(test)]
#[path = "status/tests.rs"]
mod tests;
