//! Paths that go into path directives (`BindPaths=`, `BindReadOnlyPaths=`,
//! `ReadWritePaths=`, `WorkingDirectory=`): validated, normalised and escaped.
//!
//! Decision: reject rather than quote. These directives differ in how they split and
//! unquote (`BindPaths=` splits pairs at `:` and entries at whitespace), so a path is
//! accepted only when it needs no quoting at all: absolute, at most 4096 bytes with
//! components of at most 255, no `..` component, and none of whitespace, `:`, `"`, `'`,
//! `\` or control characters. Non-ASCII UTF-8 is fine. `.` components, repeated and
//! trailing slashes are normalised away. The one character that is escaped is `%`
//! (written `%%`), because systemd expands specifiers in all of these directives.
//!
//! A symlink inside a path cannot be seen here (no I/O): sources come from the pod
//! directory systemk creates or from the admin-chosen `hostPath`, and targets are
//! resolved by systemd inside the unit's own mount namespace.
//!
//! Layer 2: pure.

use super::error::{Error, Result};

/// Linux `PATH_MAX` and `NAME_MAX`.
const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

/// `path` validated and normalised: absolute, no `..`, nothing that needs quoting.
/// `what` names the path in errors, e.g. "mountPath of volume data".
pub fn absolute(what: &str, path: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(invalid(what, path, "it must be an absolute path"));
    }
    let components = components(what, path)?;
    Ok(format!("/{}", components.join("/")))
}

/// `path` validated and normalised as a relative path below some directory (a
/// `subPath`): not absolute, no `..`, not empty.
pub fn relative(what: &str, path: &str) -> Result<String> {
    if path.starts_with('/') {
        return Err(invalid(what, path, "it must be a relative path"));
    }
    let components = components(what, path)?;
    if components.is_empty() {
        return Err(invalid(what, path, "it names no file below the volume"));
    }
    Ok(components.join("/"))
}

/// A validated path as written into a directive: `%` doubled.
pub fn directive(path: &str) -> String {
    path.replace('%', "%%")
}

fn components<'a>(what: &str, path: &'a str) -> Result<Vec<&'a str>> {
    if path.len() > PATH_MAX {
        return Err(invalid(what, path, "it is longer than 4096 bytes"));
    }
    if let Some(c) = path
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '"' | '\'' | '\\'))
    {
        let why = match c {
            ':' => "':' separates source and target in bind mounts",
            '"' | '\'' | '\\' => "quotes and backslashes are not allowed in paths",
            _ => "whitespace and control characters are not allowed in paths",
        };
        return Err(invalid(what, path, why));
    }
    let mut out = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(invalid(what, path, "'..' components are not allowed")),
            name if name.len() > NAME_MAX => {
                return Err(invalid(what, path, "a component is longer than 255 bytes"));
            }
            name => out.push(name),
        }
    }
    Ok(out)
}

fn invalid(what: &str, path: &str, why: &'static str) -> Error {
    Error::InvalidPath {
        what: what.to_owned(),
        path: path.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_normalised() {
        assert_eq!(absolute("p", "/var//lib/./x/").unwrap(), "/var/lib/x");
        assert_eq!(absolute("p", "/").unwrap(), "/");
        assert_eq!(absolute("p", "/daten/grüße").unwrap(), "/daten/grüße");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "relative",
            "",
            "/a/../etc",
            "/..",
            "/a b",
            "/a:b",
            "/a\nExecStart=/bin/evil",
            "/a\\",
            "/\"a\"",
            "/'a'",
            "/a\tb",
            "/a\0",
        ] {
            assert!(absolute("p", bad).is_err(), "{bad:?}");
        }
        assert!(absolute("p", &format!("/{}", "a".repeat(256))).is_err());
        assert!(absolute("p", &"/a".repeat(2049)).is_err());
    }

    #[test]
    fn sub_paths_stay_below() {
        assert_eq!(relative("s", "a/./b/").unwrap(), "a/b");
        for bad in ["/abs", "..", "a/../../b", "", ".", "a:b"] {
            assert!(relative("s", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percent_is_escaped_for_directives() {
        assert_eq!(
            directive(&absolute("p", "/data/100%n").unwrap()),
            "/data/100%%n"
        );
    }
}
