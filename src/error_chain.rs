//! Printing an error with its causes, once each. Layer 0, beside `backoff`: every layer's
//! errors use it, and it knows none of them.
//!
//! The convention of the whole crate: an error's `Display` says what failed at its own
//! level and never repeats its source; the source is kept with `#[source]` (or
//! `#[from]`). [`chain`] then joins the error and each cause with ": ", for logs, pod
//! status messages and events. Errors of other crates sometimes quote their own source;
//! a cause whose text the line already ends with is not printed again.

use std::fmt;

/// `err` and every cause below it, joined with ": ", each printed once.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    Chain(err).to_string()
}

/// Displays an error with its causes, as [`chain`] does, without building a `String`
/// first: `tracing::warn!(error = %Chain(&err), "...")`.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(inner) = cause {
            let inner_text = inner.to_string();
            // Foreign errors may quote their source already; an empty cause adds nothing.
            if !inner_text.is_empty() && !text.ends_with(&inner_text) {
                text.push_str(": ");
                text.push_str(&inner_text);
            }
            cause = inner.source();
        }
        f.write_str(&text)
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether `err`'s own message contains the text of its direct source: the mistake
/// [`chain`] would print twice. For tests of every error enum.
pub fn repeats_its_source(err: &(dyn std::error::Error + 'static)) -> bool {
    err.source()
        .map(|source| source.to_string())
        .is_some_and(|source| !source.is_empty() && err.to_string().contains(&source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("quoting: {0}")]
    struct Quoting(#[source] std::io::Error);

    fn io(text: &str) -> std::io::Error {
        std::io::Error::other(text.to_owned())
    }

    #[test]
    fn joins_every_cause_with_colons() {
        let err = Outer(Middle(io("disk full")));
        assert_eq!(chain(&err), "outer: middle: disk full");
        assert_eq!(Chain(&err).to_string(), "outer: middle: disk full");
    }

    #[test]
    fn a_cause_already_quoted_is_printed_once() {
        let err = Quoting(io("disk full"));
        assert_eq!(chain(&err), "quoting: disk full");
        assert!(repeats_its_source(&err));
        assert!(!repeats_its_source(&Outer(Middle(io("x")))));
    }

    #[test]
    fn an_error_without_source_is_its_message() {
        assert_eq!(chain(&io("alone")), "alone");
    }
}
