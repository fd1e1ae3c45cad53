//! The report of `systemk doctor`: one line per check (`OK`, `WARN` or `FAIL`, the check's
//! name, what was found), or the same as JSON, and the exit code (1 when a check failed).
//! Pure.

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Status {
    /// Nothing to do.
    #[serde(rename = "OK")]
    Ok,
    /// Works now, but someone should look.
    #[serde(rename = "WARN")]
    Warn,
    /// Broken: the message says what to do.
    #[serde(rename = "FAIL")]
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `client certificate`.
    pub check: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found, and what to do when it is not OK; one line.
    pub message: String,
}

impl Check {
    /// A check with `status`.
    pub fn new(check: &'static str, status: Status, message: impl Into<String>) -> Self {
        Self {
            check,
            status,
            message: message.into(),
        }
    }
}

/// The report as text: `STATUS check: message`, one line each.
pub fn text(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|check| {
            // Newlines from outside data (error chains) must not break the one-line form.
            let message = check.message.replace(['\n', '\r'], " ");
            format!("{:<4} {}: {message}\n", check.status.label(), check.check)
        })
        .collect()
}

/// The report as JSON: `{"status": worst, "checks": [...]}`.
pub fn json(checks: &[Check]) -> String {
    let report = serde_json::json!({
        "status": worst(checks),
        "checks": checks,
    });
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// The worst status of `checks` (OK when there are none).
pub fn worst(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|check| check.status)
        .max()
        .unwrap_or(Status::Ok)
}

/// The exit code: 1 when a check failed, else 0 (warnings do not fail).
pub fn exit_code(checks: &[Check]) -> u8 {
    u8::from(worst(checks) == Status::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_one_line_per_check_and_the_exit_code_follows_the_worst() {
        let checks = [
            Check::new("kubeconfig", Status::Ok, "fine"),
            Check::new("client certificate", Status::Warn, "two\nlines"),
        ];
        assert_eq!(
            text(&checks),
            "OK   kubeconfig: fine\nWARN client certificate: two lines\n"
        );
        assert_eq!(exit_code(&checks), 0);
        let failed = [checks[0].clone(), Check::new("x", Status::Fail, "broken")];
        assert_eq!(exit_code(&failed), 1);
        let parsed: serde_json::Value = serde_json::from_str(&json(&failed)).unwrap();
        assert_eq!(parsed["status"], "FAIL");
        assert_eq!(parsed["checks"][1]["check"], "x");
        assert_eq!(parsed["checks"][1]["status"], "FAIL");
    }
}
