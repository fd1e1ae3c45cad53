//! How systemd 252 reads an `Exec*=` value as a list of commands (`config_parse_exec`
//! in `src/core/load-fragment.c`), and the check that no command of a vendor `Exec*=`
//! line systemk carries into a pod's unit escapes the pod's user or sandbox.
//!
//! systemd's rules, checked in the booted systemd (KNOWLEDGE §5):
//!
//! - Words are split at unquoted whitespace; quotes and C escapes are removed
//!   (`EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE`, an unknown escape is kept as written).
//! - At the start of a command, a word that *unquotes* to `;` is a separator, so `";"`
//!   and `\x3b` separate there too. After the first word only a raw, unquoted `;` word
//!   separates; `\;` and `";"` are a literal `;` argument.
//! - The first word of each command (after unquoting) starts with prefixes: `-`, `@`,
//!   `:`, `+`, `!`, `!!`, each at most once, in any order (`+` excludes `!`).
//!
//! The vendor check: `+` (no sandbox, no `User=`), `!` and `!!` (no `User=`/`Group=`)
//! would run the package's command as root although the pod asked for another user, and
//! `@` (separate argv0) shifts which word is the binary when systemk replaces it; all
//! four are refused on every command of every `Exec*=` line. `-` (failure ignored) and
//! `:` (no `$` expansion) only change how the package's own command is read.
//!
//! Layer 2: pure, no I/O.

use super::super::error::{Error, Result};
use super::super::file::UnitFile;

/// The `[Service]` directives systemd 252 reads as command lines; the vendor's are kept
/// in the pod's unit (`ExecStart=` composed from them).
const EXEC_KEYS: &[&str] = &[
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
];

/// One command of an `Exec*=` value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Command<'a> {
    /// The prefix characters systemd takes from the first word, in order (`"-"`, `"!!"`).
    pub prefix: String,
    /// The raw words as written, the first one with its prefixes.
    pub words: Vec<&'a str>,
}

/// The commands of an `Exec*=` value, split as systemd 252 splits them; `None` for an
/// unterminated quote or a trailing backslash.
pub(crate) fn split_commands(line: &str) -> Option<Vec<Command<'_>>> {
    let mut commands = Vec::new();
    let mut current: Option<Command<'_>> = None;
    for word in split_raw_words(line)? {
        match current.as_mut() {
            None => {
                let first = unquote(word);
                if first == b";" {
                    continue;
                }
                current = Some(Command {
                    prefix: read_prefix(&first),
                    words: vec![word],
                });
            }
            Some(_) if word == ";" => commands.extend(current.take()),
            Some(command) => command.words.push(word),
        }
    }
    commands.extend(current);
    Some(commands)
}

/// Checks every command of every vendor `Exec*=` line: `+`, `!`, `!!` and `@` are
/// refused (see the module doc), as is a line systemd could not split.
pub fn check_vendor_exec_lines(unit: &UnitFile) -> Result<()> {
    for key in EXEC_KEYS {
        for value in unit.get_all("Service", key) {
            vendor_commands(key, value)?;
        }
    }
    Ok(())
}

/// The commands of the vendor's `key=value`, each with an allowed prefix.
pub(crate) fn vendor_commands<'a>(key: &str, value: &'a str) -> Result<Vec<Command<'a>>> {
    let error = |why| Error::InvalidVendorUnit {
        line: format!("{key}={value}"),
        why,
    };
    let commands = split_commands(value).ok_or_else(|| error("unterminated quote or escape"))?;
    for command in &commands {
        if command.prefix.contains(['+', '!']) {
            return Err(error(
                "prefixes '+', '!' and '!!' run the command without the User=/Group= (and \
                 for '+' without the sandbox) systemk applies, so they are not supported",
            ));
        }
        if command.prefix.contains('@') {
            return Err(error("the '@' prefix (separate argv0) is not supported"));
        }
    }
    Ok(commands)
}

/// The prefix characters systemd 252 consumes from an unquoted first word: each flag
/// once, `+` not after `!`, a third `!` or a repeated flag ends the prefix.
fn read_prefix(first: &[u8]) -> String {
    let mut prefix = String::new();
    for &byte in first {
        let taken = |c: char| prefix.contains(c);
        let privileged = taken('+') || taken('!');
        let ok = match byte {
            b'-' => !taken('-'),
            b'@' => !taken('@'),
            b':' => !taken(':'),
            b'+' => !privileged,
            b'!' => !taken('+') && prefix.matches('!').count() < 2,
            _ => false,
        };
        if !ok {
            break;
        }
        prefix.push(char::from(byte));
    }
    prefix
}

/// Splits at unquoted whitespace, keeping each word's raw text (quotes and escapes
/// included), as systemd's `extract_first_word()` finds word boundaries.
fn split_raw_words(line: &str) -> Option<Vec<&str>> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => escaped = true,
            (None, ' ' | '\t' | '\n' | '\r') => {
                if let Some(s) = start.take() {
                    words.push(&line[s..i]);
                }
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        start.get_or_insert(i);
    }
    if quote.is_some() || escaped {
        return None;
    }
    if let Some(s) = start {
        words.push(&line[s..]);
    }
    Some(words)
}

/// A raw word (from [`split_raw_words`]) with quotes removed and C escapes resolved as
/// systemd's `cunescape_one()` does; an escape it does not know stays as written, as
/// `extract_first_word_and_warn()` keeps it. Bytes, since `\xff` is a byte of its own.
fn unquote(word: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len());
    let mut quote = None;
    let mut rest = word;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match (quote, c) {
            (_, '\\') => match unescape_one(rest) {
                Some((bytes, used)) => {
                    out.extend_from_slice(&bytes);
                    rest = &rest[used..];
                }
                None => out.push(b'\\'),
            },
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// One C escape after its backslash: the bytes it stands for and how many bytes of
/// `rest` it used; `None` when systemd would not accept it (NUL included).
fn unescape_one(rest: &str) -> Option<(Vec<u8>, usize)> {
    // Exactly `digits` digits: `from_str_radix` alone would also take a sign.
    let number = |range: std::ops::Range<usize>, radix: u32| {
        let text = rest
            .get(range)
            .filter(|t| t.chars().all(|c| c.is_digit(radix)))?;
        u32::from_str_radix(text, radix).ok().filter(|&n| n != 0)
    };
    let simple = |byte: u8| Some((vec![byte], 1));
    match rest.bytes().next()? {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0b),
        b's' => simple(b' '),
        byte @ (b'\\' | b'"' | b'\'') => simple(byte),
        b'x' => Some((vec![u8::try_from(number(1..3, 16)?).ok()?], 3)),
        b'0'..=b'7' => Some((vec![u8::try_from(number(0..3, 8)?).ok()?], 3)),
        b'u' => Some((
            char::from_u32(number(1..5, 16)?)?.to_string().into_bytes(),
            5,
        )),
        b'U' => Some((
            char::from_u32(number(1..9, 16)?)?.to_string().into_bytes(),
            9,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
