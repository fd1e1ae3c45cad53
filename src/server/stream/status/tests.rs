use serde_json::Value;

use super::*;

fn parsed(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("status is JSON")
}

#[test]
fn success_is_the_kubelets_bytes() {
    // Go's json.Marshal of metav1.Status{Status: "Success"}.
    assert_eq!(
        status_json(&Outcome::Success),
        br#"{"metadata":{},"status":"Success"}"#
    );
    assert_eq!(status_text(&Outcome::Success), None);
}

#[test]
fn a_non_zero_exit_code_is_what_client_go_reads_as_the_exit_code() {
    let status = parsed(&status_json(&Outcome::Exited(3)));
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    let text = status_text(&Outcome::Exited(3)).expect("a text");
    assert_eq!(
        text,
        b"command terminated with non-zero exit code: exit status 3"
    );
}

#[test]
fn an_internal_error_is_a_500_status() {
    let status = parsed(&status_json(&Outcome::Failed("no such unit".into())));
    assert_eq!(status["reason"], "InternalError");
    assert_eq!(status["code"], 500);
    assert_eq!(status["message"], "Internal error occurred: no such unit");
    assert_eq!(status["details"]["causes"][0]["message"], "no such unit");
}
