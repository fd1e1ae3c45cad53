//! `UnitFile`: the in-memory model of a systemd unit file, parsed the way systemd 252's
//! `config_parse()` reads one and rendered back stably.
//!
//! The model is ordered sections of ordered `(key, value)` entries; duplicate keys are
//! kept in order because for list directives (`ExecStartPre=`, `Environment=`, …) every
//! line counts and an empty assignment resets the list. Comments are not kept.
//!
//! Safety of rendering is enforced here, at the one place text is produced: `add`/`set`
//! refuse any key or value that could change the line structure of the file (newline,
//! carriage return, NUL, other control bytes, a trailing backslash that systemd would
//! read as a line continuation, or edge whitespace that systemd would strip). So a unit
//! built from pod strings has exactly the lines the builder meant, whatever the strings
//! hold; making a string acceptable is the job of `escape.rs`.
//!
//! Layer 2: pure, no I/O.

use super::error::{Error, Result};

/// One `[Name]` section with its entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    name: String,
    entries: Vec<(String, String)>,
}

impl Section {
    /// The section name without brackets, e.g. `Service`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All `(key, value)` entries in file order, duplicates included.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A unit file: ordered sections of ordered entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    sections: Vec<Section>,
}

impl UnitFile {
    /// An empty unit file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses unit-file text with systemd's rules: lines end at `\n`, `\r\n` or `\r`;
    /// a line ending in an unescaped backslash continues on the next line (the
    /// backslash becomes a space, comment lines inside a continuation are skipped);
    /// blank lines and lines starting with `#` or `;` are ignored; whitespace around
    /// keys and values is stripped; a repeated section is merged into the first.
    ///
    /// Unlike systemd, which ignores them with a warning, lines without `=`, entries
    /// before any section and `.include` are errors: systemk would rather refuse a unit
    /// than run a different one than its author wrote.
    pub fn parse(text: &str) -> Result<Self> {
        let mut unit = Self::new();
        let mut current: Option<usize> = None;
        let mut continued: Option<(usize, String)> = None;
        for (index, raw) in split_lines(text).enumerate() {
            let number = index + 1;
            if raw.contains('\0') {
                return Err(syntax(number, raw, "NUL byte"));
            }
            if continued.is_some() && is_comment(raw.trim_start()) {
                continue;
            }
            if ends_in_continuation(raw) {
                let head = &raw[..raw.len() - 1];
                match &mut continued {
                    Some((_, joined)) => {
                        joined.push_str(head);
                        joined.push(' ');
                    }
                    None => continued = Some((number, format!("{head} "))),
                }
                continue;
            }
            let (first, line) = match continued.take() {
                Some((first, joined)) => (first, joined + raw),
                None => (number, raw.to_owned()),
            };
            unit.parse_line(first, &line, &mut current)?;
        }
        if let Some((first, joined)) = continued {
            unit.parse_line(first, &joined, &mut current)?;
        }
        Ok(unit)
    }

    fn parse_line(&mut self, number: usize, line: &str, current: &mut Option<usize>) -> Result<()> {
        let line = line.trim_matches(is_systemd_whitespace);
        if line.is_empty() || is_comment(line) {
            return Ok(());
        }
        if line.starts_with(".include") {
            return Err(syntax(number, line, ".include is not supported"));
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(syntax(number, line, "section header without closing ']'"));
            };
            if name.is_empty() || name.contains(['[', ']']) {
                return Err(syntax(number, line, "invalid section name"));
            }
            *current = Some(self.section_index(name));
            return Ok(());
        }
        let Some(section) = *current else {
            return Err(syntax(number, line, "assignment outside of any section"));
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(syntax(number, line, "missing '='"));
        };
        let key = key.trim_matches(is_systemd_whitespace);
        if key.is_empty() {
            return Err(syntax(number, line, "empty key"));
        }
        let value = value.trim_matches(is_systemd_whitespace);
        self.sections[section]
            .entries
            .push((key.to_owned(), value.to_owned()));
        Ok(())
    }

    /// The text of the unit: each section as `[Name]` followed by `Key=Value` lines,
    /// sections separated by a blank line. `parse(render(u)) == u` for every unit.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push('[');
            out.push_str(&section.name);
            out.push_str("]\n");
            for (key, value) in &section.entries {
                out.push_str(key);
                out.push('=');
                out.push_str(value);
                out.push('\n');
            }
        }
        out
    }

    /// All sections in order.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter()
    }

    /// The section called `name`, if present.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The last value of `key` in `section`: what systemd uses for a single-valued
    /// directive.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.get_all(section, key).pop()
    }

    /// Every value of `key` in `section`, in order, empty assignments included.
    pub fn get_all(&self, section: &str, key: &str) -> Vec<&str> {
        self.section(section)
            .map(|s| {
                s.entries()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The effective values of a list directive: every value after the last empty
    /// assignment, which systemd treats as "reset the list".
    pub fn get_list(&self, section: &str, key: &str) -> Vec<&str> {
        let mut all = self.get_all(section, key);
        if let Some(reset) = all.iter().rposition(|v| v.is_empty()) {
            all.drain(..=reset);
        }
        all
    }

    /// Appends `key=value` to `section` (created at the end when missing).
    pub fn add(&mut self, section: &str, key: &str, value: impl Into<String>) -> Result<()> {
        let value = value.into();
        check_entry(key, &value)?;
        let index = self.section_index_checked(section)?;
        self.sections[index].entries.push((key.to_owned(), value));
        Ok(())
    }

    /// Sets `key` in `section` to exactly one `value`: the first existing entry keeps
    /// its place and takes the value, later ones are removed; appended when absent.
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<String>) -> Result<()> {
        let value = value.into();
        check_entry(key, &value)?;
        let index = self.section_index_checked(section)?;
        let entries = &mut self.sections[index].entries;
        match entries.iter().position(|(k, _)| k == key) {
            Some(first) => {
                entries[first].1 = value;
                let mut i = 0;
                entries.retain(|(k, _)| {
                    i += 1;
                    i - 1 == first || k != key
                });
            }
            None => entries.push((key.to_owned(), value)),
        }
        Ok(())
    }

    /// Removes every `key` entry from `section`; returns how many were removed.
    pub fn remove(&mut self, section: &str, key: &str) -> usize {
        self.retain(section, |k, _| k != key)
    }

    /// Keeps only the entries of `section` for which `keep(key, value)` is true;
    /// returns how many were removed.
    pub fn retain(&mut self, section: &str, mut keep: impl FnMut(&str, &str) -> bool) -> usize {
        let Some(s) = self.sections.iter_mut().find(|s| s.name == section) else {
            return 0;
        };
        let before = s.entries.len();
        s.entries.retain(|(k, v)| keep(k, v));
        before - s.entries.len()
    }

    /// Removes a whole section; returns it when it was present.
    pub fn remove_section(&mut self, name: &str) -> Option<Section> {
        let index = self.sections.iter().position(|s| s.name == name)?;
        Some(self.sections.remove(index))
    }

    /// Adds an empty section at the end unless one of that name exists.
    pub fn ensure_section(&mut self, name: &str) -> Result<()> {
        self.section_index_checked(name).map(|_| ())
    }

    fn section_index_checked(&mut self, name: &str) -> Result<usize> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::UnrenderableEntry {
                key: format!("[{name}]"),
                value: String::new(),
                why: "section names are ASCII letters, digits and '-'",
            });
        }
        Ok(self.section_index(name))
    }

    fn section_index(&mut self, name: &str) -> usize {
        match self.sections.iter().position(|s| s.name == name) {
            Some(index) => index,
            None => {
                self.sections.push(Section {
                    name: name.to_owned(),
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        }
    }
}

/// systemd's `WHITESPACE`: space, tab, newline, carriage return.
fn is_systemd_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_comment(line: &str) -> bool {
    line.starts_with(['#', ';'])
}

/// Whether systemd would join this line with the next: it ends in a backslash that is
/// not itself escaped by the backslash before it (the same scan as `config_parse()`).
pub(crate) fn ends_in_continuation(line: &str) -> bool {
    let mut escaped = false;
    for b in line.bytes() {
        escaped = !escaped && b == b'\\';
    }
    escaped
}

/// Splits at `\n`, `\r\n` and a lone `\r`, like systemd's `read_line()`.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\n', '\r']) {
            Some(end) => {
                let skip = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]).filter(|r| !r.is_empty());
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn syntax(line: usize, content: &str, why: &'static str) -> Error {
    Error::Syntax {
        line,
        content: content.to_owned(),
        why,
    }
}

fn check_entry(key: &str, value: &str) -> Result<()> {
    let fail = |why| {
        Err(Error::UnrenderableEntry {
            key: key.to_owned(),
            value: value.to_owned(),
            why,
        })
    };
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return fail("keys are ASCII letters, digits, '-' and '_'");
    }
    if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return fail("control characters would break the line");
    }
    if value.starts_with(is_systemd_whitespace) || value.ends_with(is_systemd_whitespace) {
        return fail("systemd strips leading and trailing whitespace");
    }
    if ends_in_continuation(value) {
        return fail("a trailing backslash would continue the line");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VENDOR: &str = "\
# uptimed vendor unit
[Unit]
Description=uptime record daemon
Documentation=man:uptimed(8)

[Service]
  ExecStart = /usr/sbin/uptimed -f
; a comment
ExecStartPre=/bin/true \\
  --one \\
# comment inside a continuation is skipped
  --two
User=daemon
Environment=A=1
Environment=
Environment=B=2

[Install]
WantedBy=multi-user.target
";

    #[test]
    fn parses_sections_entries_and_continuations() {
        let unit = UnitFile::parse(VENDOR).unwrap();
        let names: Vec<_> = unit.sections().map(Section::name).collect();
        assert_eq!(names, ["Unit", "Service", "Install"]);
        assert_eq!(
            unit.get("Service", "ExecStart"),
            Some("/usr/sbin/uptimed -f")
        );
        assert_eq!(
            unit.get("Service", "ExecStartPre"),
            Some("/bin/true    --one    --two")
        );
        assert_eq!(unit.get_all("Service", "Environment"), ["A=1", "", "B=2"]);
        assert_eq!(unit.get_list("Service", "Environment"), ["B=2"]);
        assert_eq!(unit.get("Service", "Missing"), None);
    }

    #[test]
    fn render_round_trips() {
        let unit = UnitFile::parse(VENDOR).unwrap();
        let text = unit.render();
        assert_eq!(UnitFile::parse(&text).unwrap(), unit);
        assert_eq!(UnitFile::parse(&text).unwrap().render(), text);
        assert!(text.starts_with("[Unit]\nDescription=uptime record daemon\n"));
        assert!(text.contains("\n\n[Service]\nExecStart=/usr/sbin/uptimed -f\n"));
    }

    #[test]
    fn escaped_backslash_at_end_is_not_a_continuation() {
        let unit = UnitFile::parse("[S]\nA=x\\\\\nB=y\n").unwrap();
        assert_eq!(unit.get("S", "A"), Some("x\\\\"));
        assert_eq!(unit.get("S", "B"), Some("y"));
        let unit = UnitFile::parse("[S]\nA=x\\\\\\\nB=y\n").unwrap();
        assert_eq!(unit.get("S", "A"), Some("x\\\\ B=y"));
    }

    #[test]
    fn carriage_returns_end_lines_like_systemd() {
        let unit = UnitFile::parse("[S]\r\nA=1\rB=2\r\n").unwrap();
        assert_eq!(unit.get("S", "A"), Some("1"));
        assert_eq!(unit.get("S", "B"), Some("2"));
    }

    #[test]
    fn repeated_sections_merge() {
        let unit = UnitFile::parse("[S]\nA=1\n[T]\nB=2\n[S]\nA=3\n").unwrap();
        assert_eq!(unit.get_all("S", "A"), ["1", "3"]);
        assert_eq!(unit.sections().count(), 2);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for text in [
            "A=1\n",
            "[S]\nnovalue\n",
            "[S\nA=1\n",
            "[S]\n=1\n",
            "[S]\n.include x\n",
        ] {
            assert!(UnitFile::parse(text).is_err(), "{text:?}");
        }
        let err = UnitFile::parse("[S]\nA=1\nbroken\n").unwrap_err();
        assert!(matches!(err, Error::Syntax { line: 3, .. }), "{err}");
    }

    #[test]
    fn set_replaces_in_place_and_drops_duplicates() {
        let mut unit = UnitFile::parse("[S]\nA=1\nB=2\nA=3\n").unwrap();
        unit.set("S", "A", "9").unwrap();
        assert_eq!(unit.render(), "[S]\nA=9\nB=2\n");
        unit.set("S", "C", "4").unwrap();
        unit.add("S", "C", "5").unwrap();
        assert_eq!(unit.get_all("S", "C"), ["4", "5"]);
        assert_eq!(unit.remove("S", "C"), 2);
        unit.add("New", "K", "v").unwrap();
        assert_eq!(unit.render(), "[S]\nA=9\nB=2\n\n[New]\nK=v\n");
        assert!(unit.remove_section("New").is_some());
        assert!(unit.section("New").is_none());
    }

    #[test]
    fn values_that_would_change_lines_are_refused() {
        let mut unit = UnitFile::new();
        for value in [
            "a\nExecStart=/bin/evil",
            "a\rB=1",
            "a\0",
            "a\\",
            " lead",
            "trail ",
            "\x1b",
        ] {
            assert!(
                unit.add("Service", "Environment", value).is_err(),
                "{value:?}"
            );
        }
        for key in ["", "A=B", "A\nB", "[X]", "A B"] {
            assert!(unit.add("Service", key, "v").is_err(), "{key:?}");
        }
        assert!(unit.add("Bad]\n[Service", "A", "v").is_err());
        unit.add("Service", "Environment", "a\\\\").unwrap();
        assert_eq!(unit.render(), "[Service]\nEnvironment=a\\\\\n");
    }

    #[test]
    fn comment_ending_in_backslash_swallows_next_line_like_systemd() {
        let unit = UnitFile::parse("[S]\n# note \\\nA=1\nB=2\n").unwrap();
        assert_eq!(unit.get("S", "A"), None);
        assert_eq!(unit.get("S", "B"), Some("2"));
    }
}
