//! `ExecStart=` composition from a container's `command`/`args` and the vendor unit's
//! `ExecStart=` (KNOWLEDGE §1):
//!
//! | pod gives        | vendor unit                         | no vendor unit                      |
//! |------------------|-------------------------------------|-------------------------------------|
//! | command only     | command replaces the binary, vendor options kept | command                  |
//! | args only        | vendor binary kept, args replace the options | args, if `args[0]` is absolute |
//! | command + args   | command + args                      | command + args                      |
//! | neither          | vendor `ExecStart=` unchanged       | error: nothing to run               |
//!
//! Pod words are always quoted by `escape::exec_arg`. Vendor words are kept *raw*, as
//! the package wrote them, so their specifiers (`%t`), variables (`$SSHD_OPTS` from an
//! `EnvironmentFile=`) and escapes keep their meaning; they are only split into words
//! with systemd's rules (whitespace outside quotes, `\` escapes) to find the binary.
//!
//! Vendor prefixes on the binary: `-` (a failing exit counts as success) and `:` (no
//! `$` expansion; pod words are then written with a literal `$`) are kept, because they
//! only change how the vendor's own command line is read. `+`, `!` and `!!` are refused:
//! they run the command without the `User=`/`Group=` (and for `+` without the
//! sandboxing) systemk applies, so a pod's `runAsUser` would silently not hold. `@`
//! (separate argv0) is refused because replacing the binary or the options would
//! silently shift which word is argv0. Several effective vendor `ExecStart=` lines
//! (`Type=oneshot`) are refused: a container is one process.
//!
//! A pod's `command[0]` is either an absolute path or a bare name (`sh`), which systemd
//! 252 resolves in its fixed search path (`/usr/local/sbin:/usr/local/bin:/usr/sbin:
//! /usr/bin:/sbin:/bin`), as Kubernetes' `command: [sh, -c, …]` expects. Relative paths
//! with a `/` are refused (systemd has no working directory to resolve them against at
//! parse time), and so is a first character systemd would read as a prefix: quoting
//! does not stop that, since prefixes are read after unquoting.
//!
//! Layer 2: pure, no I/O.

use super::error::{Error, Result};
use super::escape::{Dollar, exec_arg_with};
use super::file::UnitFile;

/// The prefix characters systemd 252 accepts before an `ExecStart=` binary.
const PREFIX_CHARS: &[char] = &['-', '@', ':', '+', '!'];

/// The `ExecStart=` value for a container. `vendor` is the vendor unit, if any.
pub fn compose_exec_start(
    container: &str,
    command: &[String],
    args: &[String],
    vendor: Option<&UnitFile>,
) -> Result<String> {
    if !command.is_empty() && !args.is_empty() {
        check_binary(container, "command", &command[0])?;
        return quote_all(container, command.iter().chain(args), Dollar::Double);
    }
    let vendor_line = match vendor {
        Some(unit) => vendor_exec_start(unit)?,
        None => None,
    };
    match (vendor_line, command.is_empty(), args.is_empty()) {
        (None, false, _) => {
            check_binary(container, "command", &command[0])?;
            quote_all(container, command.iter(), Dollar::Double)
        }
        (None, true, false) => {
            if !args[0].starts_with('/') {
                return Err(Error::NoCommand {
                    container: container.to_owned(),
                    why: "args given without a command, and args[0] is not an absolute path \
                          to run (there is no vendor ExecStart= to take the binary from)",
                });
            }
            check_binary(container, "args", &args[0])?;
            quote_all(container, args.iter(), Dollar::Double)
        }
        (None, true, true) => Err(Error::NoCommand {
            container: container.to_owned(),
            why: "the image has no service unit to take ExecStart= from, so the container \
                  needs a command (or args starting with an absolute path)",
        }),
        (Some(line), true, true) => Ok(line.raw.to_owned()),
        (Some(line), false, _) => {
            check_binary(container, "command", &command[0])?;
            let pod = quote_all(container, command.iter(), line.dollar)?;
            Ok(join([line.prefix.as_str(), &pod].concat(), &line.options))
        }
        (Some(line), true, false) => {
            let pod = quote_all(container, args.iter(), line.dollar)?;
            Ok(join(line.binary.to_owned(), &[pod]))
        }
    }
}

/// A vendor `ExecStart=` line split into its raw words.
struct VendorLine<'a> {
    raw: &'a str,
    /// The prefixes kept (`-`, `:`), to put before a replacing binary.
    prefix: String,
    /// The raw first word, prefixes included.
    binary: &'a str,
    /// The raw option words.
    options: Vec<String>,
    dollar: Dollar,
}

fn vendor_exec_start(unit: &UnitFile) -> Result<Option<VendorLine<'_>>> {
    let lines = unit.get_list("Service", "ExecStart");
    let raw = match lines.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(vendor_error(
                &lines.join("\nExecStart="),
                "the vendor unit has several ExecStart= lines (Type=oneshot); a container runs \
                 exactly one command",
            ));
        }
    };
    let words = split_raw_words(raw).ok_or_else(|| vendor_error(raw, "unterminated quote"))?;
    let Some((binary, options)) = words.split_first() else {
        return Ok(None);
    };
    if words.contains(&";") {
        return Err(vendor_error(
            raw,
            "';'-separated commands are not supported",
        ));
    }
    let first = unquote(binary).ok_or_else(|| vendor_error(raw, "invalid escape"))?;
    let prefix: String = first
        .chars()
        .take_while(|c| PREFIX_CHARS.contains(c))
        .collect();
    if prefix.contains(['+', '!']) {
        return Err(vendor_error(
            raw,
            "prefixes '+', '!' and '!!' run the command without the User=/Group= systemk \
             applies, so they are not supported",
        ));
    }
    if prefix.contains('@') {
        return Err(vendor_error(
            raw,
            "the '@' prefix (separate argv0) is not supported",
        ));
    }
    let dollar = if prefix.contains(':') {
        Dollar::Literal
    } else {
        Dollar::Double
    };
    Ok(Some(VendorLine {
        raw,
        prefix,
        binary,
        options: options.iter().map(|w| (*w).to_owned()).collect(),
        dollar,
    }))
}

fn check_binary(container: &str, field: &'static str, binary: &str) -> Result<()> {
    let why = if binary.is_empty() {
        Some("it is empty")
    } else if binary.starts_with(PREFIX_CHARS) {
        Some("systemd would read its first character as an ExecStart= prefix")
    } else if !binary.starts_with('/') && binary.contains('/') {
        Some("it must be an absolute path or a bare name looked up in systemd's PATH")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidCommand {
            container: container.to_owned(),
            field,
            binary: binary.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

fn quote_all<'a>(
    container: &str,
    words: impl Iterator<Item = &'a String>,
    dollar: Dollar,
) -> Result<String> {
    let quoted = words
        .enumerate()
        .map(|(i, w)| exec_arg_with(&format!("word {i} of container {container}"), w, dollar))
        .collect::<Result<Vec<_>>>()?;
    Ok(quoted.join(" "))
}

fn join(first: String, rest: &[String]) -> String {
    std::iter::once(first)
        .chain(rest.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn vendor_error(line: &str, why: &'static str) -> Error {
    Error::InvalidVendorUnit {
        line: line.to_owned(),
        why,
    }
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

/// A raw word with quotes removed and simple escapes resolved; enough to read its
/// prefixes (which systemd reads after unquoting).
fn unquote(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut quote = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => out.push(chars.next()?),
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, c) => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::escape::reference::{tricky_strings, unescape_exec_line};
    use super::*;

    fn vendor(exec: &str) -> UnitFile {
        UnitFile::parse(&format!("[Service]\nUser=daemon\n{exec}\n")).unwrap()
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn compose(command: &[&str], args: &[&str], vendor: Option<&UnitFile>) -> Result<String> {
        compose_exec_start("c", &strings(command), &strings(args), vendor)
    }

    #[test]
    fn the_four_vendor_rules() {
        let unit = vendor("ExecStart=/usr/sbin/uptimed -f --pid %t/u.pid $OPTS");
        assert_eq!(
            compose(&["/opt/up"], &[], Some(&unit)).unwrap(),
            "\"/opt/up\" -f --pid %t/u.pid $OPTS"
        );
        assert_eq!(
            compose(&[], &["-x", "$y"], Some(&unit)).unwrap(),
            "/usr/sbin/uptimed \"-x\" \"$$y\""
        );
        assert_eq!(
            compose(&["/bin/a"], &["b"], Some(&unit)).unwrap(),
            "\"/bin/a\" \"b\""
        );
        assert_eq!(
            compose(&[], &[], Some(&unit)).unwrap(),
            "/usr/sbin/uptimed -f --pid %t/u.pid $OPTS"
        );
    }

    #[test]
    fn synthesised_rules() {
        assert_eq!(
            compose(&["sh", "-c"], &["echo hi"], None).unwrap(),
            "\"sh\" \"-c\" \"echo hi\""
        );
        assert_eq!(
            compose(&["/bin/sleep"], &[], None).unwrap(),
            "\"/bin/sleep\""
        );
        assert_eq!(
            compose(&[], &["/bin/sleep", "1"], None).unwrap(),
            "\"/bin/sleep\" \"1\""
        );
        for err in [compose(&[], &["sleep", "1"], None), compose(&[], &[], None)] {
            assert!(matches!(err, Err(Error::NoCommand { .. })), "{err:?}");
        }
    }

    #[test]
    fn binaries_that_systemd_would_misread_are_refused() {
        for bad in [
            "", "-/bin/sh", "+/bin/sh", "!sh", "@/bin/sh", ":x", "bin/sh", "./sh",
        ] {
            let err = compose(&[bad], &["x"], None);
            assert!(
                matches!(err, Err(Error::InvalidCommand { .. })),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn vendor_prefixes() {
        let keep = vendor("ExecStart=-/usr/bin/d --opt");
        assert_eq!(
            compose(&["/bin/x"], &[], Some(&keep)).unwrap(),
            "-\"/bin/x\" --opt"
        );
        assert_eq!(
            compose(&[], &["y"], Some(&keep)).unwrap(),
            "-/usr/bin/d \"y\""
        );
        let literal = vendor("ExecStart=:/usr/bin/d $LITERAL");
        assert_eq!(
            compose(&[], &["$y"], Some(&literal)).unwrap(),
            ":/usr/bin/d \"$y\""
        );
        for bad in [
            "+/bin/d",
            "!/bin/d",
            "!!/bin/d",
            "@/bin/d d",
            "\"+/bin/d\"",
            "-+/bin/d",
        ] {
            let unit = vendor(&format!("ExecStart={bad}"));
            let err = compose(&[], &["y"], Some(&unit));
            assert!(
                matches!(err, Err(Error::InvalidVendorUnit { .. })),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn several_vendor_lines_are_refused_unless_reset() {
        let two = vendor("ExecStart=/bin/a\nExecStart=/bin/b");
        assert!(matches!(
            compose(&[], &[], Some(&two)),
            Err(Error::InvalidVendorUnit { .. })
        ));
        let reset = vendor("ExecStart=/bin/a\nExecStart=\nExecStart=/bin/b");
        assert_eq!(compose(&[], &[], Some(&reset)).unwrap(), "/bin/b");
        assert_eq!(
            compose(&["/bin/c"], &["d"], Some(&two)).unwrap(),
            "\"/bin/c\" \"d\""
        );
    }

    #[test]
    fn vendor_words_split_like_systemd() {
        let unit = vendor(r#"ExecStart="/usr/bin/my daemon" 'a b' c\ d "e\"f""#);
        assert_eq!(
            compose(&[], &["z"], Some(&unit)).unwrap(),
            r#""/usr/bin/my daemon" "z""#
        );
        assert_eq!(
            compose(&["/x"], &[], Some(&unit)).unwrap(),
            r#""/x" 'a b' c\ d "e\"f""#
        );
        assert!(compose(&[], &["z"], Some(&vendor("ExecStart=\"/bin/a"))).is_err());
    }

    #[test]
    fn vendor_without_exec_start_needs_a_command() {
        let none = vendor("Type=simple");
        assert!(matches!(
            compose(&[], &[], Some(&none)),
            Err(Error::NoCommand { .. })
        ));
        assert_eq!(
            compose(&["/bin/a"], &[], Some(&none)).unwrap(),
            "\"/bin/a\""
        );
    }

    #[test]
    fn pod_words_reach_the_process_unchanged() {
        let args = tricky_strings();
        let line = compose_exec_start("c", &strings(&["/bin/sh"]), &args, None).unwrap();
        let mut expected = strings(&["/bin/sh"]);
        expected.extend(args);
        assert_eq!(unescape_exec_line(&line).unwrap(), expected);
    }
}
