//! The unit-name specifiers of a vendor unit, expanded before systemk takes the unit over.
//!
//! systemk runs a vendor unit's directives under its own name,
//! `systemk.<ns>.<pod>.<container>.service`, which is no template instance. Left alone,
//! systemd would expand `%i` to the empty string and `%n`, `%N`, `%p` to systemk's name:
//! `postgresql@.service`'s `ExecStart=… pg_ctlcluster … %i start` would lose its cluster
//! and `PIDFile=/run/postgresql/%i.pid` would point elsewhere. So the specifiers that
//! depend on the unit's name are replaced here, with the values systemd gives them for
//! the vendor unit's own name (an instance such as `postgresql@15-main.service` when the
//! pod named one): `%n %N %p %P %i %I %j %J %f` (systemd.unit(5), "Specifiers").
//! Every other specifier (`%t`, `%S`, `%h`, …) does not depend on the name and stays for
//! systemd; `%%` stays `%%`.
//!
//! A value is written back into unit text that systemd reads again, so values are
//! limited to `[A-Za-z0-9:_.-@/]` and must start with a letter, a digit or `/`: no
//! quoting, no whitespace, no `%`, `$` or `\`, and no `ExecStart=` prefix character
//! (`-`, `@`, `:`, `+`, `!`) at the start of a word. Pure. Layer 2.

use super::error::{Error, Result};

const SERVICE_SUFFIX: &str = ".service";

/// `text` (a vendor unit) with the name specifiers expanded for `unit_name`.
pub fn expand_name_specifiers(text: &str, unit_name: &str) -> Result<String> {
    let values = NameValues::of(unit_name)?;
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        match values.get(spec) {
            Some(value) => out.push_str(&value),
            None => {
                out.push('%');
                out.push(spec);
            }
        }
    }
    Ok(out)
}

/// The parts of a unit name the specifiers show.
struct NameValues<'a> {
    name: &'a str,
    prefix: &'a str,
    instance: Option<&'a str>,
}

impl<'a> NameValues<'a> {
    fn of(name: &'a str) -> Result<Self> {
        let invalid = |why| Error::InvalidVendorUnit {
            line: format!("unit name {name}"),
            why,
        };
        let stem = name
            .strip_suffix(SERVICE_SUFFIX)
            .ok_or_else(|| invalid("a vendor unit name must end in .service"))?;
        let (prefix, instance) = match stem.split_once('@') {
            Some((prefix, instance)) => (prefix, Some(instance)),
            None => (stem, None),
        };
        let values = Self {
            name,
            prefix,
            instance,
        };
        for spec in ['n', 'N', 'p', 'P', 'i', 'I', 'j', 'J', 'f'] {
            let value = values.get(spec).unwrap_or_default();
            let safe = value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":_.-@/".contains(&b))
                && value
                    .bytes()
                    .next()
                    .is_none_or(|b| b.is_ascii_alphanumeric() || b == b'/');
            if !safe {
                return Err(invalid(
                    "its name gives a specifier value outside [A-Za-z0-9:_.-@/] \
                     or not starting with a letter, digit or '/'",
                ));
            }
        }
        Ok(values)
    }

    /// The value of `%<spec>`, `None` for specifiers that do not depend on the name.
    fn get(&self, spec: char) -> Option<String> {
        let last = |s: &'a str| s.rsplit_once('-').map_or(s, |(_, last)| last);
        Some(match spec {
            'n' => self.name.to_owned(),
            'N' => self.name.trim_end_matches(SERVICE_SUFFIX).to_owned(),
            'p' => self.prefix.to_owned(),
            'P' => unescape(self.prefix),
            'i' => self.instance.unwrap_or_default().to_owned(),
            'I' => unescape(self.instance.unwrap_or_default()),
            'j' => last(self.prefix).to_owned(),
            'J' => unescape(last(self.prefix)),
            'f' => format!(
                "/{}",
                unescape(self.instance.unwrap_or(self.prefix)).trim_start_matches('/')
            ),
            _ => return None,
        })
    }
}

/// systemd's `unit_name_unescape`: `-` is `/`, `\xNN` is that byte. A malformed or
/// non-UTF-8 escape is kept as written (and then refused by the value check).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'-' => out.push(b'/'),
            b'\\' if bytes.get(at + 1) == Some(&b'x') => {
                match text
                    .get(at + 2..at + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        at += 3;
                    }
                    None => out.push(b'\\'),
                }
            }
            b => out.push(b),
        }
        at += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "[Unit]\nDescription=PostgreSQL Cluster %i\n\
        AssertPathExists=/etc/postgresql/%I/postgresql.conf\n[Service]\n\
        ExecStart=-/usr/bin/pg_ctlcluster --skip-systemctl-redirect %i start\n\
        PIDFile=/run/postgresql/%i.pid\nSyslogIdentifier=postgresql@%i\n\
        Environment=A=%n B=%N C=%p D=%P E=%j F=%J G=%f H=%t/x I=100%% J=%\n";

    #[test]
    fn an_instance_gets_the_values_systemd_gives_it() {
        let out = expand_name_specifiers(TEMPLATE, "postgresql@15-main.service").unwrap();
        assert_eq!(
            out,
            "[Unit]\nDescription=PostgreSQL Cluster 15-main\n\
             AssertPathExists=/etc/postgresql/15/main/postgresql.conf\n[Service]\n\
             ExecStart=-/usr/bin/pg_ctlcluster --skip-systemctl-redirect 15-main start\n\
             PIDFile=/run/postgresql/15-main.pid\nSyslogIdentifier=postgresql@15-main\n\
             Environment=A=postgresql@15-main.service B=postgresql@15-main C=postgresql \
             D=postgresql E=postgresql F=postgresql G=/15/main H=%t/x I=100%% J=%\n"
        );
    }

    #[test]
    fn a_plain_unit_keeps_its_own_name() {
        let out = expand_name_specifiers(
            "ExecStart=/usr/sbin/d --name %n --pid /run/%p.pid -i '%i' %f %j %J %P",
            "systemd-foo.service",
        )
        .unwrap();
        assert_eq!(
            out,
            "ExecStart=/usr/sbin/d --name systemd-foo.service --pid /run/systemd-foo.pid \
             -i '' /systemd/foo foo foo systemd/foo"
        );
    }

    #[test]
    fn escaped_percent_is_never_read_as_a_specifier() {
        assert_eq!(
            expand_name_specifiers("a=%%i %%%i", "x@y.service").unwrap(),
            "a=%%i %%y"
        );
    }

    /// Attack: names whose values would inject text or prefixes into the unit.
    #[test]
    fn attack_names_giving_unsafe_values_are_refused() {
        for name in [
            "x@a b.service",
            "x@a\nExecStart=/bin/sh.service",
            "x@%n.service",
            "x@$HOME.service",
            "x@\\x25i.service",
            "x@\\x20.service",
            "x@-a.service",
            "x@:a.service",
            "x@@a.service",
            ":x.service",
            "x.socket",
        ] {
            assert!(
                matches!(
                    expand_name_specifiers("ExecStart=/bin/d %i", name),
                    Err(Error::InvalidVendorUnit { .. })
                ),
                "{name:?}"
            );
        }
    }
}
