//! Test-only reference implementation of how systemd 252 reads the values `escape.rs`
//! writes: specifier expansion (`%%`), word splitting with quotes and C escapes
//! (`extract_first_word` with `EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE`) and, for
//! `Exec*=`, `config_parse_exec`'s commands: a first word that unquotes to `;` or a later
//! raw `;` word separates commands (`\;` and a quoted `";"` there are literal), the
//! first word's prefixes (`-` `@` `:` `+` `!` `!!`), and `$$` at exec time. Strict on
//! purpose: a lone `%` or `$` is an error, so an escaper that forgets one fails the
//! tests instead of passing by luck. Written apart from `exec/vendor_lines.rs`, so the
//! tests compare two readings of systemd's rules.

/// One command of an `Exec*=` value as systemd 252 runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecCommand {
    /// The prefix characters taken from the first word, in order.
    pub prefix: String,
    /// What the process receives as argv (`$$` expanded unless the prefix has `:`).
    pub argv: Vec<String>,
}

/// What the process receives as argv for an `Exec*=` value that must be exactly one
/// command without any prefix, as every line systemk composes from pod words is.
pub(crate) fn unescape_exec_line(line: &str) -> Result<Vec<String>, String> {
    match parse_exec_line(line)?.as_slice() {
        [ExecCommand { prefix, argv }] if prefix.is_empty() => Ok(argv.clone()),
        other => Err(format!(
            "expected one command without prefix, got {other:?}"
        )),
    }
}

/// The commands of an `Exec*=` value.
pub(crate) fn parse_exec_line(line: &str) -> Result<Vec<ExecCommand>, String> {
    let text = expand_specifiers(line)?;
    let mut rest = text.as_str();
    let mut commands = Vec::new();
    loop {
        rest = rest.trim_start_matches(WHITESPACE);
        if rest.is_empty() {
            return Ok(commands);
        }
        let first = next_word(&mut rest)?;
        if first == ";" {
            continue;
        }
        let prefix = prefix_of(&first);
        let path = &first[prefix.len()..];
        if path.is_empty() {
            return Err(format!("empty path in {line:?}"));
        }
        let mut argv = vec![path.to_owned()];
        loop {
            rest = rest.trim_start_matches(WHITESPACE);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = raw_word(rest, ";") {
                rest = after;
                break;
            }
            if let Some(after) = raw_word(rest, "\\;") {
                rest = after;
                argv.push(";".to_owned());
                continue;
            }
            argv.push(next_word(&mut rest)?);
        }
        if !prefix.contains(':') {
            argv = argv
                .iter()
                .map(|w| expand_dollars(w))
                .collect::<Result<_, _>>()?;
        }
        commands.push(ExecCommand { prefix, argv });
    }
}

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

/// `rest` after `word` when `rest` starts with exactly that raw word.
fn raw_word<'a>(rest: &'a str, word: &str) -> Option<&'a str> {
    let after = rest.strip_prefix(word)?;
    (after.is_empty() || after.starts_with(WHITESPACE)).then_some(after)
}

/// `-`, `@`, `:` at most once each; `+` only before any `!`; `!` at most twice.
fn prefix_of(first: &str) -> String {
    let mut prefix = String::new();
    for c in first.chars() {
        let count = |x| prefix.chars().filter(|&p| p == x).count();
        let ok = match c {
            '-' | '@' | ':' => count(c) == 0,
            '+' => count('+') + count('!') == 0,
            '!' => count('+') == 0 && count('!') < 2,
            _ => false,
        };
        if !ok {
            break;
        }
        prefix.push(c);
    }
    prefix
}

/// The `(name, value)` an `Environment=` word sets.
pub(crate) fn unescape_environment(word: &str) -> Result<(String, String), String> {
    let words = split_words(&expand_specifiers(word)?)?;
    let [assignment] = words.as_slice() else {
        return Err(format!("expected one word, got {words:?}"));
    };
    let (name, value) = assignment.split_once('=').ok_or("no '='")?;
    Ok((name.to_owned(), value.to_owned()))
}

fn expand_specifiers(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('%') => out.push('%'),
                other => return Err(format!("specifier %{other:?} would be expanded")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn expand_dollars(word: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c == '$' {
            match chars.next() {
                Some('$') => out.push('$'),
                other => return Err(format!("variable ${other:?} would be expanded")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(WHITESPACE);
        if rest.is_empty() {
            return Ok(words);
        }
        words.push(next_word(&mut rest)?);
    }
}

/// The next word of `rest` (which starts with a non-blank), unquoted and unescaped.
fn next_word(rest: &mut &str) -> Result<String, String> {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    loop {
        let before = chars.as_str();
        let Some(c) = chars.next() else { break };
        match (quote, c) {
            (_, '\\') => word.push(unescape_one(&mut chars)?),
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ' | '\t' | '\n' | '\r') => {
                chars = before.chars();
                break;
            }
            (_, c) => word.push(c),
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_owned());
    }
    *rest = chars.as_str();
    Ok(word)
}

fn unescape_one(chars: &mut impl Iterator<Item = char>) -> Result<char, String> {
    let escape = chars.next().ok_or("backslash at end")?;
    let mut hex = |n: usize| -> Result<u32, String> {
        let digits: String = chars.take(n).collect();
        u32::from_str_radix(&digits, 16).map_err(|_| format!("bad hex escape {digits:?}"))
    };
    let c = match escape {
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        's' => ' ',
        c @ ('\\' | '"' | '\'') => c,
        'x' => char::from_u32(hex(2)?)
            .filter(|&c| c != '\0')
            .ok_or("\\x00")?,
        'u' => char::from_u32(hex(4)?).ok_or("bad \\u")?,
        d @ '0'..='7' => {
            let rest: String = chars.take(2).collect();
            u8::from_str_radix(&format!("{d}{rest}"), 8)
                .ok()
                .filter(|&b| b != 0 && b.is_ascii())
                .map(char::from)
                .ok_or_else(|| format!("bad octal escape \\{d}{rest}"))?
        }
        'U' => char::from_u32(hex(8)?).ok_or("bad \\U")?,
        other => return Err(format!("unknown escape \\{other}")),
    };
    Ok(c)
}

/// Strings chosen to break naive quoting: shell and systemd metacharacters, specifiers,
/// variable references, every escape form, line structure, non-ASCII.
pub(crate) fn tricky_strings() -> Vec<String> {
    let mut strings: Vec<String> = [
        "",
        " ",
        "plain",
        "two words",
        "x\nExecStartPre=/bin/evil",
        "x\r\nExecStartPre=/bin/evil",
        "x\rUser=root",
        "\\",
        "\\\\",
        "trailing\\",
        "\\\n",
        "\"",
        "'",
        "\"quoted\" and 'single'",
        "%n",
        "%%",
        "%",
        "$HOME",
        "${HOME}",
        "$$",
        "$",
        "$(rm -rf /)",
        "`id`",
        ";",
        "-",
        "@",
        "+!",
        "\\x41",
        "\\n",
        "\\u00e9",
        "tab\there",
        "bell\x07esc\x1bdel\x7f",
        "grüße ✓ 日本",
        "[Service]",
        "#comment",
        "line1\nline2\n",
        "#!/bin/sh\nset -eu\necho \"$1\" > /tmp/x\nExecStart=/bin/evil\n",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    strings.push((1u8..0x20).map(char::from).collect());
    strings
}
