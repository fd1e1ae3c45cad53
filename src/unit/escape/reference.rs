//! Test-only reference implementation of how systemd 252 reads the values `escape.rs`
//! writes: specifier expansion (`%%`), word splitting with quotes and C escapes
//! (`extract_first_word` with `EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE`) and, for
//! `ExecStart=`, `$$` at exec time. Strict on purpose: a lone `%` or `$` is an error, so
//! an escaper that forgets one fails the tests instead of passing by luck.

/// What the process receives as argv for an `ExecStart=` value (no prefixes).
pub(crate) fn unescape_exec_line(line: &str) -> Result<Vec<String>, String> {
    let expanded = expand_specifiers(line)?;
    split_words(&expanded)?
        .iter()
        .map(|w| expand_dollars(w))
        .collect()
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
    let mut chars = text.chars().peekable();
    loop {
        while chars
            .next_if(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
            .is_some()
        {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (_, '\\') => word.push(unescape_one(&mut chars)?),
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ' ' | '\t' | '\n' | '\r') => break,
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".to_owned());
        }
        words.push(word);
    }
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
