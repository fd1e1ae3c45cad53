//! Vendor units and state directories, read from a package's own file list (never guessed
//! from its name) and its tmpfiles.d configuration. Pure functions over paths and text;
//! reading files and checking that directories exist is left to the caller; the choice
//! among the units is `unit_choice.rs`'s. Layer 1.

use std::path::{Component, Path, PathBuf};

/// Both directories because packages built before and after usrmerge use either.
const UNIT_DIRS: [&str; 2] = ["/lib/systemd/system", "/usr/lib/systemd/system"];

/// Parents whose direct children are a package's state directories.
const STATE_PARENTS: [&str; 5] = ["/var/lib", "/var/spool", "/var/cache", "/var/log", "/run"];

/// Where packages ship tmpfiles.d configuration (before and after usrmerge).
const TMPFILES_DIRS: [&str; 2] = ["/lib/tmpfiles.d", "/usr/lib/tmpfiles.d"];

/// The package's `*.service` files directly in a systemd unit directory, one per file name
/// (the same unit under `/lib` and `/usr/lib` counts once), sorted by name. Templates
/// (`name@.service`) are kept; files of single instances (`name@inst.service`) are not.
pub(crate) fn service_units(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = Vec::new();
    for file in files {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str()))
        else {
            continue;
        };
        let is_unit_dir = UNIT_DIRS.iter().any(|d| dir == Path::new(d));
        let is_service = name.ends_with(".service") && name.len() > ".service".len();
        if is_unit_dir
            && is_service
            && (!name.contains('@') || name.ends_with("@.service"))
            && !units.iter().any(|u| u.file_name() == file.file_name())
        {
            units.push(file.clone());
        }
    }
    units.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    units
}

/// Unit types whose enablement starts something at boot: what a package's postinst
/// enables through deb-systemd-helper.
const STARTING_UNIT_SUFFIXES: [&str; 4] = [".service", ".socket", ".timer", ".path"];

/// The package's units that start something when enabled — services, sockets, timers and
/// path units directly in a systemd unit directory, one per name, sorted — without
/// templates and instances: a template is no unit to stop, and its instances enabled at
/// install time are named by the template's own `[Install]`, which systemd disables with it
/// only when asked for the template.
pub(crate) fn starting_units(files: &[PathBuf]) -> Vec<String> {
    let mut units: Vec<String> = files
        .iter()
        .filter(|file| {
            file.parent()
                .is_some_and(|dir| UNIT_DIRS.iter().any(|d| dir == Path::new(d)))
        })
        .filter_map(|file| file.file_name()?.to_str())
        .filter(|name| {
            !name.contains('@')
                && STARTING_UNIT_SUFFIXES
                    .iter()
                    .any(|suffix| name.ends_with(suffix) && name.len() > suffix.len())
        })
        .map(str::to_owned)
        .collect();
    units.sort();
    units.dedup();
    units
}

/// Entries of the file list that are state directories by their place:
/// `/var/{lib,spool,cache,log}/<x>` and `/run/<x>`. Whether they are directories is for the
/// caller to check on disk.
pub(crate) fn state_dir_candidates(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = files.iter().filter(|f| is_state_dir(f)).cloned().collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The package's tmpfiles.d files (`*.conf` directly in a tmpfiles.d directory).
pub(crate) fn tmpfiles_configs(files: &[PathBuf]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| {
            f.parent()
                .is_some_and(|p| TMPFILES_DIRS.iter().any(|d| p == Path::new(d)))
                && f.extension().is_some_and(|e| e == "conf")
        })
        .cloned()
        .collect()
}

/// State directories a tmpfiles.d configuration creates (`d` and `D` lines). Packages
/// create their `/run/<x>` this way at boot instead of shipping it (uptimed's pid file
/// lives in `/run/uptimed`), so the file list alone misses it. `/var/run` is `/run`;
/// paths with specifiers (`%`) are skipped: only systemd-tmpfiles knows their values.
pub(crate) fn tmpfiles_state_dirs(config: &str) -> Vec<PathBuf> {
    config
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let kind = fields.next()?;
            let path = fields.next()?;
            if !kind.starts_with(['d', 'D']) || path.contains('%') {
                return None;
            }
            let path = match path.strip_prefix("/var/run/") {
                Some(rest) => PathBuf::from("/run").join(rest),
                None => PathBuf::from(path),
            };
            is_state_dir(&path).then_some(path)
        })
        .collect()
}

/// A plain path exactly one below one of [`STATE_PARENTS`].
fn is_state_dir(path: &Path) -> bool {
    let plain = path
        .components()
        .skip(1)
        .all(|c| matches!(c, Component::Normal(_)));
    plain
        && path.has_root()
        && path
            .parent()
            .is_some_and(|p| STATE_PARENTS.iter().any(|s| p == Path::new(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    fn fixture(name: &str) -> Vec<PathBuf> {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap();
        text.lines()
            .filter(|l| l.starts_with('/') && *l != "/.")
            .map(PathBuf::from)
            .collect()
    }

    #[test]
    fn starting_units_are_services_sockets_timers_and_paths_of_the_unit_dirs() {
        let files = paths(&[
            "/lib/systemd/system/ssh.service",
            "/lib/systemd/system/ssh.socket",
            "/usr/lib/systemd/system/ssh.socket",
            "/lib/systemd/system/ssh@.service",
            "/lib/systemd/system/rescue-ssh.target",
            "/lib/systemd/system/logrotate.timer",
            "/lib/systemd/system/watch.path",
            "/lib/systemd/system/.service",
            "/etc/systemd/system/sshd.service",
            "/lib/systemd/system/ssh.service.d/x.conf",
        ]);
        assert_eq!(
            starting_units(&files),
            ["logrotate.timer", "ssh.service", "ssh.socket", "watch.path"]
        );
    }

    #[test]
    fn uptimed_fixture_has_one_unit() {
        assert_eq!(
            service_units(&fixture("dpkg-query-L-uptimed.txt")),
            paths(&["/lib/systemd/system/uptimed.service"])
        );
    }

    #[test]
    fn uptimed_fixture_state_dirs() {
        assert_eq!(
            state_dir_candidates(&fixture("dpkg-query-L-uptimed.txt")),
            paths(&["/var/spool/uptimed"])
        );
    }

    #[test]
    fn units_in_both_dirs_counted_once_instances_skipped() {
        let files = paths(&[
            "/lib/systemd/system/ssh.service",
            "/usr/lib/systemd/system/ssh.service",
            "/lib/systemd/system/ssh@.service",
            "/lib/systemd/system/getty@tty9.service",
            "/lib/systemd/system/ssh.socket",
            "/usr/lib/systemd/system/rescue-ssh.target",
            "/etc/systemd/system/foo.service",
            "/lib/systemd/system/sub/bar.service",
            "/lib/systemd/system/.service",
        ]);
        assert_eq!(
            service_units(&files),
            paths(&[
                "/lib/systemd/system/ssh.service",
                "/lib/systemd/system/ssh@.service"
            ])
        );
    }

    #[test]
    fn state_dirs_exactly_one_below_their_parent() {
        let files = paths(&[
            "/var/lib",
            "/var/lib/foo",
            "/var/lib/foo/db",
            "/run/foo",
            "/var/log/foo.log",
            "/var/tmp/x",
        ]);
        assert_eq!(
            state_dir_candidates(&files),
            paths(&["/run/foo", "/var/lib/foo", "/var/log/foo.log"])
        );
    }

    #[test]
    fn tmpfiles_configs_of_the_package() {
        let files = paths(&[
            "/usr/lib/tmpfiles.d/uptimed.conf",
            "/lib/tmpfiles.d/old.conf",
            "/usr/lib/tmpfiles.d/README",
            "/etc/tmpfiles.d/admin.conf",
            "/usr/lib/tmpfiles.d/sub/x.conf",
        ]);
        assert_eq!(
            tmpfiles_configs(&files),
            paths(&[
                "/usr/lib/tmpfiles.d/uptimed.conf",
                "/lib/tmpfiles.d/old.conf"
            ])
        );
    }

    #[test]
    fn tmpfiles_directories_that_are_state_dirs() {
        let config = "# comment\n\
            d /run/uptimed 0755 daemon daemon\n\
            D! /var/run/foo 0700 foo foo -\n\
            d /var/lib/bar\n\
            f /run/file.pid 0644\n\
            d /run/a/b 0755\n\
            d /run/%i 0755\n\
            d /run/.. 0755\n\
            d /etc/x 0755\n\
            L /run/link - - - - /x\n\
            d\n";
        assert_eq!(
            tmpfiles_state_dirs(config),
            paths(&["/run/uptimed", "/run/foo", "/var/lib/bar"])
        );
    }
}
