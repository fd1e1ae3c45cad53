//! One attempt's result, as the kubelet's `probe.Result` and its output. Pure. Layer 4.

/// The kubelet keeps at most this much of a probe's output (prober `maxReadLength`).
pub const MAX_OUTPUT: usize = 10 * 1024;

/// How an attempt ended. `Warning` counts as success and gets its own event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Result {
    /// The container passed.
    Success,
    /// Passed with a remark (an HTTP redirect to another host).
    Warning,
    /// The container failed the probe.
    Failure,
}

/// One attempt: its result and the output the `Unhealthy` event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub result: Result,
    /// What the probe said, bounded to [`MAX_OUTPUT`] bytes.
    pub output: String,
}

impl Outcome {
    /// A passed attempt.
    pub fn success(output: impl Into<String>) -> Self {
        Outcome::new(Result::Success, output)
    }

    /// A failed attempt.
    pub fn failure(output: impl Into<String>) -> Self {
        Outcome::new(Result::Failure, output)
    }

    /// Any result, the output cut to [`MAX_OUTPUT`] bytes on a character boundary.
    pub fn new(result: Result, output: impl Into<String>) -> Self {
        Outcome {
            result,
            output: bounded(output.into()),
        }
    }

    /// Whether it counts as success for the thresholds.
    pub fn passed(&self) -> bool {
        self.result != Result::Failure
    }
}

/// Bytes of output (a body, a command's output) as text, bounded; invalid UTF-8 is
/// replaced rather than refused, so a binary body still shows in the event.
pub fn text(bytes: &[u8]) -> String {
    bounded(String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_OUTPUT)]).into_owned())
}

fn bounded(mut output: String) -> String {
    if output.len() > MAX_OUTPUT {
        let mut end = MAX_OUTPUT;
        while !output.is_char_boundary(end) {
            end -= 1;
        }
        output.truncate(end);
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_on_a_character_boundary() {
        let long = "é".repeat(MAX_OUTPUT);
        let outcome = Outcome::failure(long);
        assert!(outcome.output.len() <= MAX_OUTPUT);
        assert!(outcome.output.len() > MAX_OUTPUT - 2);
        assert_eq!(text(&[0xff; 3]), "\u{fffd}\u{fffd}\u{fffd}");
        assert!(Outcome::new(Result::Warning, "").passed());
    }
}
