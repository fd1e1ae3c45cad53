//! Tests of `ExecStart=` composition, read back with the reference parser
//! (`escape/reference.rs`) as systemd 252 would read the line.

use super::super::escape::reference::{
    ExecCommand, parse_exec_line, tricky_strings, unescape_exec_line,
};
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
        "\";\" \"+/bin/d\"",
        "/bin/d ; /bin/e",
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

#[test]
fn a_first_word_semicolon_is_refused() {
    let unit = vendor("ExecStart=/usr/bin/d --opt");
    for vendor in [None, Some(&unit)] {
        for (command, args) in [
            (&[";", "+/bin/sh", "-c", "id"][..], &[][..]),
            (&[";"], &["+/bin/sh"]),
            (&[], &[";", "+/bin/sh"]),
        ] {
            let err = compose(command, args, vendor);
            if vendor.is_some() && command.is_empty() {
                // args follow the vendor binary: a quoted `;` there is an argument.
                let line = err.unwrap();
                assert_eq!(
                    unescape_exec_line(&line).unwrap(),
                    ["/usr/bin/d", ";", "+/bin/sh"]
                );
                continue;
            }
            assert!(
                matches!(
                    err,
                    Err(Error::InvalidCommand { .. } | Error::NoCommand { .. })
                ),
                "{command:?} {args:?}: {err:?}"
            );
        }
    }
    let err = compose(&[";"], &["x"], None).unwrap_err();
    assert_eq!(err.reason(), "CreateContainerConfigError");
    assert!(err.to_string().contains("command separator"), "{err}");
}

#[test]
fn semicolons_in_ordinary_commands_stay_arguments() {
    for (command, args) in [
        (&["sh", "-c"][..], &["a; b"][..]),
        (&["find", ".", "-exec", "x", "{}", ";"], &[]),
        (&["/bin/echo"], &[";", "\\;", "+x", ";"]),
    ] {
        let line = compose(command, args, None).unwrap();
        let expected: Vec<&str> = command.iter().chain(args).copied().collect();
        assert_eq!(unescape_exec_line(&line).unwrap(), expected, "{line}");
    }
}

/// Every composition, with any string in any position, is refused or parses into
/// exactly one command carrying only the vendor's kept prefix.
#[test]
fn composed_lines_are_one_command_without_forbidden_prefixes() {
    let plain = vendor("ExecStart=/usr/bin/d --opt");
    let keep = vendor("ExecStart=-/usr/bin/d --opt");
    let vendors = [(None, ""), (Some(&plain), ""), (Some(&keep), "-")];
    let tricky = tricky_strings();
    for (unit, prefix) in vendors {
        for s in &tricky {
            let word = [s.clone()];
            let both = [s.clone(), "x".to_owned()];
            // command + args ignore the vendor line and its prefix.
            for (command, args, prefix) in [
                (&word[..], &[][..], prefix),
                (&[], &both[..], prefix),
                (&both, &word, ""),
                (&["/bin/sh".to_owned()][..], &word, ""),
            ] {
                let Ok(line) = compose_exec_start("c", command, args, unit) else {
                    continue;
                };
                let commands = parse_exec_line(&line).unwrap();
                let [ExecCommand { prefix: got, .. }] = commands.as_slice() else {
                    panic!("{line:?} is {commands:?}");
                };
                assert_eq!(got, prefix, "{line:?}");
            }
        }
    }
}
