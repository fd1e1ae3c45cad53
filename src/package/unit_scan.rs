//! What systemk reads from a vendor unit's text before choosing it: whether it only runs
//! `true` (an umbrella `Type=oneshot` unit such as `postgresql.service`, which stands for
//! the real daemons and runs none), and, for a template, the paths its conditions name
//! per instance (`AssertPathExists=/etc/postgresql/%I/postgresql.conf`), which document
//! the instances that exist. The real parsing of the unit is layer 2's; this is a line
//! scan of `[Service]` and `[Unit]` keys, enough for these two questions. Pure. Layer 1.

/// Commands that do nothing; a unit whose every `ExecStart=` runs one of them is no daemon.
const TRUE_COMMANDS: [&str; 3] = ["/bin/true", "/usr/bin/true", "true"];

/// `[Unit]` keys whose path names an instance's own file or directory.
const PATH_CONDITIONS: [&str; 6] = [
    "ConditionPathExists",
    "AssertPathExists",
    "ConditionPathIsDirectory",
    "AssertPathIsDirectory",
    "ConditionFileNotEmpty",
    "ConditionDirectoryNotEmpty",
];

/// The `key=value` lines of `section`, in order (comments, blank lines and continuation
/// lines skipped: vendor units of interest here use none in these keys).
fn entries<'a>(text: &'a str, section: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
    let mut current = "";
    text.lines().filter_map(move |line| {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            current = &line[1..line.len() - 1];
            return None;
        }
        if current != section || line.starts_with(['#', ';']) {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        Some((key.trim(), value.trim()))
    })
}

/// Whether every `ExecStart=` of the unit runs `true` (and there is at least one).
pub(crate) fn only_runs_true(text: &str) -> bool {
    let mut any = false;
    for (key, value) in entries(text, "Service") {
        if key != "ExecStart" || value.is_empty() {
            continue;
        }
        let command = value
            .trim_start_matches(['-', '@', ':', '+', '!'])
            .split_whitespace()
            .next()
            .unwrap_or_default();
        if !TRUE_COMMANDS.contains(&command) {
            return false;
        }
        any = true;
    }
    any
}

/// The condition paths of a template that contain `%I` or `%i`, for listing the instances
/// that exist (see `instances.rs`).
pub(crate) fn instance_paths(text: &str) -> Vec<String> {
    entries(text, "Unit")
        .filter(|(key, _)| PATH_CONDITIONS.contains(key))
        .map(|(_, value)| value.trim_start_matches('|'))
        // A negated condition names what must not exist: no instance lives there.
        .filter(|value| !value.starts_with('!'))
        .filter(|value| value.contains("%I") || value.contains("%i"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 12's postgresql-common 248.
    const POSTGRESQL: &str = "[Unit]\nDescription=PostgreSQL RDBMS\n\n[Service]\n\
        Type=oneshot\nExecStart=/bin/true\nExecReload=/bin/true\nRemainAfterExit=on\n\n\
        [Install]\nWantedBy=multi-user.target\n";
    const POSTGRESQL_AT: &str = "[Unit]\nDescription=PostgreSQL Cluster %i\n\
        AssertPathExists=/etc/postgresql/%I/postgresql.conf\n\
        RequiresMountsFor=/etc/postgresql/%I /var/lib/postgresql/%I\n\
        PartOf=postgresql.service\n\n[Service]\nType=forking\n\
        ExecStart=-/usr/bin/pg_ctlcluster --skip-systemctl-redirect %i start\n\
        PIDFile=/run/postgresql/%i.pid\n";

    #[test]
    fn umbrella_units_only_run_true() {
        assert!(only_runs_true(POSTGRESQL));
        assert!(only_runs_true(
            "[Service]\nExecStart=/usr/bin/true\nExecStart=-true x\n"
        ));
        assert!(!only_runs_true(POSTGRESQL_AT));
        assert!(!only_runs_true(
            "[Service]\nExecStart=/bin/true\nExecStart=/usr/sbin/d\n"
        ));
        assert!(!only_runs_true("[Service]\nType=oneshot\n"), "no ExecStart");
        assert!(
            !only_runs_true("[Unit]\nExecStart=/bin/true\n[Service]\nExecStart=/bin/d\n"),
            "only [Service] counts"
        );
        assert!(!only_runs_true("[Service]\nExecStart=/bin/truefalse\n"));
    }

    #[test]
    fn template_condition_paths() {
        assert_eq!(
            instance_paths(POSTGRESQL_AT),
            ["/etc/postgresql/%I/postgresql.conf"]
        );
        assert!(instance_paths(POSTGRESQL).is_empty());
        assert_eq!(
            instance_paths(
                "[Unit]\nConditionPathExists=!/etc/%i.off\n# AssertPathExists=/x/%i\n\
                 ConditionPathExists=|/srv/%i\n"
            ),
            ["/srv/%i"]
        );
    }
}
