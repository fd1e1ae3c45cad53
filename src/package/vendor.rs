//! Vendor units and state directories, read from a package's own file list (never guessed
//! from its name) and its tmpfiles.d configuration, and the choice of the one vendor unit
//! a container runs. Pure functions over paths and text; reading files and checking that
//! directories exist is left to the caller. Layer 1.

use std::path::{Component, Path, PathBuf};

use super::error::{Error, Result};
use super::manager::Installed;

/// Pod annotation naming the vendor unit of one container when its package ships several:
/// key `systemk.io/vendor-unit.<container-name>`, value a unit file name, e.g. `ssh.service`.
pub const VENDOR_UNIT_ANNOTATION_PREFIX: &str = "systemk.io/vendor-unit.";

/// Both directories because packages built before and after usrmerge use either.
const UNIT_DIRS: [&str; 2] = ["/lib/systemd/system", "/usr/lib/systemd/system"];

/// Parents whose direct children are a package's state directories.
const STATE_PARENTS: [&str; 5] = ["/var/lib", "/var/spool", "/var/cache", "/var/log", "/run"];

/// Where packages ship tmpfiles.d configuration (before and after usrmerge).
const TMPFILES_DIRS: [&str; 2] = ["/lib/tmpfiles.d", "/usr/lib/tmpfiles.d"];

/// The package's non-template `*.service` files directly in a systemd unit directory, one
/// per file name (the same unit under `/lib` and `/usr/lib` counts once), sorted by name.
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
            && !name.contains('@')
            && !units.iter().any(|u| u.file_name() == file.file_name())
        {
            units.push(file.clone());
        }
    }
    units.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
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

/// The vendor unit a container runs. `wanted` (from the annotation
/// [`VENDOR_UNIT_ANNOTATION_PREFIX`]`<container>`) must be one of the package's units;
/// without it `<package>.service` is preferred, then the package's only unit. Several
/// units and no choice is an error naming the annotation; no units at all is `Ok(None)`.
pub fn select_vendor_unit(installed: &Installed, wanted: Option<&str>) -> Result<Option<PathBuf>> {
    let package = installed.package.as_deref().unwrap_or_default();
    let units = &installed.service_units;
    let named = |name: &str| {
        units
            .iter()
            .find(|u| u.file_name().is_some_and(|n| n == name))
            .cloned()
    };
    let candidates = || {
        units
            .iter()
            .filter_map(|u| u.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    };
    if let Some(wanted) = wanted {
        return named(wanted)
            .map(Some)
            .ok_or_else(|| Error::NoSuchVendorUnit {
                package: package.to_owned(),
                wanted: wanted.to_owned(),
                candidates: candidates(),
            });
    }
    if let Some(unit) = named(&format!("{package}.service")) {
        return Ok(Some(unit));
    }
    match units.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(only.clone())),
        _ => Err(Error::AmbiguousVendorUnit {
            package: package.to_owned(),
            candidates: candidates(),
            annotation: VENDOR_UNIT_ANNOTATION_PREFIX,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    fn installed(package: &str, units: &[&str]) -> Installed {
        Installed {
            package: Some(package.into()),
            version: Some("1".into()),
            image_id: format!("{package}=1"),
            newly_installed: false,
            service_units: paths(units),
            writable_dirs: vec![],
        }
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
    fn units_in_both_dirs_counted_once_templates_skipped() {
        let files = paths(&[
            "/lib/systemd/system/ssh.service",
            "/usr/lib/systemd/system/ssh.service",
            "/lib/systemd/system/ssh@.service",
            "/lib/systemd/system/ssh.socket",
            "/usr/lib/systemd/system/rescue-ssh.target",
            "/etc/systemd/system/foo.service",
            "/lib/systemd/system/sub/bar.service",
            "/lib/systemd/system/.service",
        ]);
        assert_eq!(
            service_units(&files),
            paths(&["/lib/systemd/system/ssh.service"])
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

    #[test]
    fn package_named_unit_preferred() {
        let i = installed(
            "foo",
            &[
                "/lib/systemd/system/bar.service",
                "/lib/systemd/system/foo.service",
            ],
        );
        assert_eq!(
            select_vendor_unit(&i, None).unwrap(),
            Some("/lib/systemd/system/foo.service".into())
        );
    }

    #[test]
    fn only_unit_chosen_whatever_its_name() {
        let i = installed("openssh-server", &["/lib/systemd/system/ssh.service"]);
        assert_eq!(
            select_vendor_unit(&i, None).unwrap(),
            Some("/lib/systemd/system/ssh.service".into())
        );
    }

    #[test]
    fn no_units_is_none() {
        assert_eq!(
            select_vendor_unit(&installed("sl", &[]), None).unwrap(),
            None
        );
    }

    #[test]
    fn several_units_without_choice_is_ambiguous() {
        let i = installed(
            "pkg",
            &[
                "/lib/systemd/system/a.service",
                "/lib/systemd/system/b.service",
            ],
        );
        let err = select_vendor_unit(&i, None).unwrap_err();
        assert!(
            matches!(&err, Error::AmbiguousVendorUnit { candidates, .. } if candidates == &["a.service", "b.service"]),
            "{err}"
        );
    }

    #[test]
    fn wanted_unit_chosen() {
        let i = installed(
            "pkg",
            &[
                "/lib/systemd/system/a.service",
                "/lib/systemd/system/pkg.service",
            ],
        );
        assert_eq!(
            select_vendor_unit(&i, Some("a.service")).unwrap(),
            Some("/lib/systemd/system/a.service".into())
        );
    }

    #[test]
    fn wanted_unit_missing_is_an_error() {
        let i = installed("pkg", &["/lib/systemd/system/a.service"]);
        let err = select_vendor_unit(&i, Some("b.service")).unwrap_err();
        assert!(matches!(err, Error::NoSuchVendorUnit { .. }), "{err}");
    }
}
