//! Quoting of pod strings for unit files, so systemd hands the process exactly the
//! bytes the pod spec holds and no pod string can add a line or a directive.
//!
//! Rules, checked against systemd 252 (KNOWLEDGE §3 "Escaping"):
//!
//! - `ExecStart=` arguments are always written in double quotes. The whole line is
//!   specifier-expanded first (`%` → write `%%`), then split into words with quotes and
//!   C escapes honoured, then `$` is expanded at exec time (`$` → write `$$`). `""` is an
//!   empty argument. Quoting keeps a `;` *argument* literal, but not a first word:
//!   systemd reads separators and prefixes there after unquoting, so `exec.rs` refuses
//!   a first word `;` or one starting with a prefix character.
//! - `Environment=` assignments are written as one double-quoted `"NAME=value"` word with
//!   the same C escapes and `%%`, but `$` stays literal (systemd does not expand it there).
//!   Names must be what systemd's `env_name_is_valid()` accepts: `[A-Za-z_][A-Za-z0-9_]*`;
//!   anything else would be dropped by systemd with only a log warning.
//! - Inside the quotes `\`, `"` and `'` are backslash-escaped, newline, tab and CR become
//!   `\n`, `\t`, `\r` and every other control byte `\xNN`; non-ASCII passes through as
//!   UTF-8. So the rendered value never holds a raw line break and never ends in a
//!   backslash. NUL is the only byte that cannot reach a process and is rejected.
//!
//! Layer 2: pure, no I/O.

use super::error::{Error, Result};

/// `arg` as one double-quoted `ExecStart=` word.
pub fn exec_arg(what: &str, arg: &str) -> Result<String> {
    exec_arg_with(what, arg, Dollar::Double)
}

/// `arg` as one double-quoted `ExecStart=` word, with `$` written as `dollar` says
/// (literal after the vendor prefix `:`, which turns variable expansion off).
pub(crate) fn exec_arg_with(what: &str, arg: &str, dollar: Dollar) -> Result<String> {
    check_no_nul(what, arg)?;
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    push_c_escaped(&mut out, arg, dollar);
    out.push('"');
    Ok(out)
}

/// `NAME=value` as one double-quoted `Environment=` word.
pub fn environment(name: &str, value: &str) -> Result<String> {
    check_env_name(name)?;
    check_no_nul(&format!("environment variable {name}"), value)?;
    let mut out = String::with_capacity(name.len() + value.len() + 3);
    out.push('"');
    out.push_str(name);
    out.push('=');
    push_c_escaped(&mut out, value, Dollar::Literal);
    out.push('"');
    Ok(out)
}

/// Checks an environment variable name against systemd's rules (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn check_env_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("it starts with a digit")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Some("systemd only accepts ASCII letters, digits and '_' in environment names")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::Unpassable {
            what: "environment variable name".to_owned(),
            value: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// `value` C-escaped without quotes, for sections systemd does not interpret
/// (`[X-Kubernetes]`): backslash and control bytes escaped, edge spaces as `\x20` so
/// the parser's whitespace stripping cannot change the value. Inverse: [`unescape_plain`].
pub fn escape_plain(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ' ' if i == 0 || i == last => out.push_str("\\x20"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => push_hex(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_plain`]; `None` when the text holds an escape it never writes.
pub fn unescape_plain(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16).ok().filter(|b| b.is_ascii())?;
                out.push(char::from(byte));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// How `$` is written: `$$` where systemd expands variables, as is where it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dollar {
    /// `$` → `$$` (`ExecStart=` words).
    Double,
    /// `$` as is (`Environment=`, `ExecStart=` after the `:` prefix).
    Literal,
}

fn push_c_escaped(out: &mut String, value: &str, dollar: Dollar) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '%' => out.push_str("%%"),
            '$' if dollar == Dollar::Double => out.push_str("$$"),
            c if c.is_ascii_control() => push_hex(out, c),
            c => out.push(c),
        }
    }
}

fn push_hex(out: &mut String, c: char) {
    out.push_str(&format!("\\x{:02x}", u32::from(c)));
}

fn check_no_nul(what: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::Unpassable {
            what: what.to_owned(),
            value: value.to_owned(),
            why: "a NUL byte cannot be passed to a process",
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod reference;

#[cfg(test)]
mod tests {
    use super::reference::{
        ExecCommand, parse_exec_line, tricky_strings, unescape_environment, unescape_exec_line,
    };
    use super::*;

    // Quoted pod words are arguments here: systemd reads the first word of a command
    // after unquoting (a `";"` there separates, a `"+…"` is a prefix), which `exec.rs`
    // guards against; after the first word quoting keeps every string literal.
    #[test]
    fn exec_args_survive_systemd_parsing() {
        for s in tricky_strings() {
            let quoted = exec_arg("arg", &s).unwrap();
            assert!(!quoted.contains(['\n', '\r']), "{quoted:?}");
            assert_eq!(
                unescape_exec_line(&format!("/bin/x {quoted}")).unwrap(),
                vec!["/bin/x".to_owned(), s.clone()],
                "{quoted:?}"
            );
        }
    }

    #[test]
    fn whole_argv_survives_systemd_parsing() {
        let mut argv = vec!["/bin/x".to_owned()];
        argv.extend(tricky_strings());
        let words: Vec<_> = argv.iter().map(|a| exec_arg("arg", a).unwrap()).collect();
        let line = words.join(" ");
        assert!(!line.contains(['\n', '\r']));
        assert!(!crate::unit::file::ends_in_continuation(&line));
        assert_eq!(unescape_exec_line(&line).unwrap(), argv);
    }

    #[test]
    fn quoting_does_not_protect_a_first_word() {
        let line = [";", "+/bin/sh", "-c"]
            .map(|w| exec_arg("a", w).unwrap())
            .join(" ");
        let root = ExecCommand {
            prefix: "+".to_owned(),
            argv: vec!["/bin/sh".to_owned(), "-c".to_owned()],
        };
        assert_eq!(parse_exec_line(&line).unwrap(), [root]);
        assert!(unescape_exec_line(&line).is_err());
    }

    #[test]
    fn environment_values_survive_systemd_parsing() {
        for s in tricky_strings() {
            let word = environment("VALUE", &s).unwrap();
            assert!(!word.contains(['\n', '\r']), "{word:?}");
            assert_eq!(
                unescape_environment(&word).unwrap(),
                ("VALUE".to_owned(), s.clone())
            );
        }
    }

    #[test]
    fn dollar_is_doubled_only_in_exec() {
        assert_eq!(exec_arg("a", "$HOME %n").unwrap(), "\"$$HOME %%n\"");
        assert_eq!(environment("A", "$HOME %n").unwrap(), "\"A=$HOME %%n\"");
        assert_eq!(exec_arg("a", "").unwrap(), "\"\"");
    }

    #[test]
    fn nul_is_the_only_rejected_byte() {
        assert!(exec_arg("a", "x\0y").is_err());
        assert!(environment("A", "\0").is_err());
    }

    #[test]
    fn env_names_follow_systemd() {
        for good in ["A", "_x", "PATH_2", "lower"] {
            assert!(check_env_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1A", "A=B", "A B", "a.b", "a-b", "A\nB", "Ü"] {
            assert!(check_env_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plain_escaping_round_trips_and_stays_on_one_line() {
        for s in tricky_strings() {
            let escaped = escape_plain(&s);
            assert!(!escaped.contains(['\n', '\r']), "{escaped:?}");
            assert!(!crate::unit::file::ends_in_continuation(&escaped));
            assert_eq!(escaped.trim(), escaped);
            assert_eq!(
                unescape_plain(&escaped).as_deref(),
                Some(s.as_str()),
                "{escaped:?}"
            );
        }
        assert_eq!(unescape_plain("\\q"), None);
        assert_eq!(unescape_plain("\\x"), None);
    }
}
