//! Tests of the `Exec*=` splitter against cases run in the booted systemd 252 and
//! against the independent reference parser.

use super::super::super::escape::reference::parse_exec_line;
use super::*;

/// The commands as (prefix, unquoted words), to compare with the reference parser.
fn read(line: &str) -> Vec<(String, Vec<String>)> {
    split_commands(line)
        .unwrap()
        .into_iter()
        .map(|c| {
            // systemd reads a raw `\;` after the first word as a literal `;`.
            let words = c.words.iter().enumerate();
            let word = |(i, w): (usize, &&str)| match *w {
                r"\;" if i > 0 => ";".to_owned(),
                w => text(&unquote(w)),
            };
            (c.prefix, words.map(word).collect())
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn reference(line: &str) -> Vec<(String, Vec<String>)> {
    parse_exec_line(line)
        .unwrap()
        .into_iter()
        .map(|c| {
            let mut words = c.argv;
            words[0] = format!("{}{}", c.prefix, words[0]);
            (c.prefix, words)
        })
        .collect()
}

/// A command as (prefix, unquoted words).
type Expected = (&'static str, &'static [&'static str]);

#[test]
fn separators_and_prefixes_follow_systemd() {
    // Each case was run in the booted systemd 252 (see the module doc).
    let cases: &[(&str, &[Expected])] = &[
        (
            "/bin/a x ; /bin/b y",
            &[("", &["/bin/a", "x"]), ("", &["/bin/b", "y"])],
        ),
        (r#"";" "+/bin/sh" -c"#, &[("+", &["+/bin/sh", "-c"])]),
        (r"\x3b +/bin/sh", &[("+", &["+/bin/sh"])]),
        ("; ; /bin/a", &[("", &["/bin/a"])]),
        (
            r#"/bin/a ";" "+/bin/sh""#,
            &[("", &["/bin/a", ";", "+/bin/sh"])],
        ),
        (r"/bin/a \; b", &[("", &["/bin/a", ";", "b"])]),
        ("/bin/a ;/bin/b", &[("", &["/bin/a", ";/bin/b"])]),
        ("/bin/a x ;", &[("", &["/bin/a", "x"])]),
        (
            r#"/bin/a ; ";" "!/bin/b""#,
            &[("", &["/bin/a"]), ("!", &["!/bin/b"])],
        ),
        ("-/bin/a", &[("-", &["-/bin/a"])]),
        ("--/bin/a", &[("-", &["--/bin/a"])]),
        ("!!/bin/a", &[("!!", &["!!/bin/a"])]),
        ("!-!:@/bin/a", &[("!-!:@", &["!-!:@/bin/a"])]),
        ("!!!/bin/a", &[("!!", &["!!!/bin/a"])]),
        ("!+/bin/a", &[("!", &["!+/bin/a"])]),
        ("+!/bin/a", &[("+", &["+!/bin/a"])]),
        ("'+/bin/sh' -c", &[("+", &["+/bin/sh", "-c"])]),
        (r"\053/bin/sh", &[("+", &["+/bin/sh"])]),
    ];
    for (line, expected) in cases {
        let expected: Vec<(String, Vec<String>)> = expected
            .iter()
            .map(|(p, w)| ((*p).to_owned(), w.iter().map(|w| (*w).to_owned()).collect()))
            .collect();
        assert_eq!(read(line), expected, "{line}");
        assert_eq!(reference(line), expected, "reference: {line}");
    }
}

#[test]
fn unknown_escapes_stay_as_written() {
    // systemd: "Ignoring unknown escape sequences", then `\;` is the executable name.
    assert_eq!(
        read(r"\; /bin/a"),
        [(String::new(), strings(&[r"\;", "/bin/a"]))]
    );
    assert_eq!(unquote(r"\+x\x2"), br"\+x\x2");
    assert_eq!(unquote(r"\xff\u00e9"), b"\xff\xc3\xa9");
    assert_eq!(split_commands("\"/bin/a"), None);
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn vendor(service: &str) -> UnitFile {
    UnitFile::parse(&format!(
        "[Service]\nUser=daemon\nExecStart=/usr/bin/d\n{service}\n"
    ))
    .unwrap()
}

#[test]
fn every_vendor_exec_line_is_checked() {
    for key in EXEC_KEYS {
        for bad in [
            "+/bin/true",
            "!/bin/true",
            "!!/bin/true",
            "@/bin/true true",
            "-+/bin/true",
            "\"+/bin/true\"",
            "/bin/true ; +/bin/true",
            "/bin/true ; \";\" \"!/bin/true\"",
        ] {
            let line = format!("{key}={bad}");
            let err = check_vendor_exec_lines(&vendor(&line)).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidVendorUnit { line: l, .. } if *l == line),
                "{line}: {err:?}"
            );
        }
        for good in [
            "-/bin/true",
            ":/bin/echo $X",
            "/bin/a ; -/bin/b",
            "/bin/echo \\; \";\"",
        ] {
            let unit = vendor(&format!("{key}={good}"));
            assert_eq!(check_vendor_exec_lines(&unit), Ok(()), "{key}={good}");
        }
    }
    let unterminated = vendor("ExecStop=/bin/kill \"x");
    assert!(check_vendor_exec_lines(&unterminated).is_err());
}
