//! What a vendor `PIDFile=` may write under `ProtectSystem=strict`. A forking daemon
//! writes its PID file itself, so that place must be writable in its unit; but a whole
//! shared directory must never be: with `PIDFile=/run/nginx.pid` a writable `/run` would
//! let the pod drop units into `/run/systemd/system` or rules into `/run/udev`. So:
//!
//! - a PID file below `/run` (also spelt `/var/run`, `%t` or relative): nothing here;
//!   `/run` is the container's own and `run_dir.rs` points `PIDFile=` at it;
//! - a PID file in a directory of its own elsewhere (`/var/lib/foo/foo.pid`, at least
//!   two levels deep): that directory becomes `ReadWritePaths=-`;
//! - a PID file directly in `/` or another top-level directory: only the file is
//!   writable. It must exist for systemd
//!   to bind it, and systemd deletes it when the service stops, so an
//!   `ExecStartPre=+/usr/bin/touch` (systemk's own line, run by systemd as root outside
//!   the sandbox) creates it before every start. The daemon can write it but not
//!   replace or delete it, which no daemon needs for its PID file to work.
//!
//! Layer 2: pure.

use super::error::{Error, Result};
use super::file::UnitFile;

const SERVICE: &str = "Service";

/// Where the `touch` of the file-only case lives on Debian 12.
const TOUCH: &str = "/usr/bin/touch";

/// Makes the vendor's `PIDFile=`, if any, writable as described above.
pub fn allow_pid_file(unit: &mut UnitFile) -> Result<()> {
    let Some(pid_file) = unit.get(SERVICE, "PIDFile") else {
        return Ok(());
    };
    match pid_file_access(pid_file)? {
        PidFileAccess::Run(_) => Ok(()),
        PidFileAccess::Directory(dir) => unit.add(SERVICE, "ReadWritePaths", format!("-{dir}")),
        PidFileAccess::FileOnly(file) => {
            // First of all ExecStartPre= lines: a configuration test (`nginx -t`) opens
            // the PID file too, and each command's sandbox binds the file only if it exists by then.
            // A vendor reset line (`ExecStartPre=`) would drop the touch: what it resets
            // is dropped here instead, as systemd would.
            let vendor: Vec<String> = unit
                .get_all(SERVICE, "ExecStartPre")
                .into_iter()
                .map(str::to_owned)
                .collect();
            let kept = match vendor.iter().rposition(String::is_empty) {
                Some(reset) => &vendor[reset + 1..],
                None => &vendor[..],
            };
            unit.remove(SERVICE, "ExecStartPre");
            unit.add(SERVICE, "ExecStartPre", format!("+{TOUCH} {file}"))?;
            for line in kept {
                unit.add(SERVICE, "ExecStartPre", line.clone())?;
            }
            unit.add(SERVICE, "ReadWritePaths", format!("-{file}"))
        }
    }
}

/// What of a PID file's place becomes writable, as raw unit text (specifiers such as
/// `%t` stay for systemd to expand).
#[derive(Debug, PartialEq, Eq)]
enum PidFileAccess {
    /// The daemon's own directory.
    Directory(String),
    /// Only the file, in a shared directory.
    FileOnly(String),
    /// Below `/run`: the path below it (`foo/foo.pid`), validated.
    Run(String),
}

/// The part of the vendor's `PIDFile=` below `/run` (`foo/foo.pid` for
/// `/var/run/foo/foo.pid`), or `None` when it lies elsewhere. Refuses what
/// [`allow_pid_file`] refuses.
pub fn run_relative_pid_file(pid_file: &str) -> Result<Option<String>> {
    match pid_file_access(pid_file)? {
        PidFileAccess::Run(rest) => Ok(Some(rest)),
        _ => Ok(None),
    }
}

fn pid_file_access(pid_file: &str) -> Result<PidFileAccess> {
    let refuse = |why| {
        Err(Error::InvalidVendorUnit {
            line: format!("PIDFile={pid_file}"),
            why,
        })
    };
    // `$` too: systemd reads PIDFile= literally but expands `$VAR` in the `+` command
    // below, and the pod's environment file could then choose what root touches.
    if pid_file.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '$')) {
        return refuse("PIDFile= with whitespace, quotes, backslashes or $");
    }
    // A relative PIDFile= is relative to /run, as systemd reads it; /var/run is a symlink
    // to /run and %t is /run for the system manager.
    let absolute = if let Some(rest) = pid_file.strip_prefix("%t/") {
        format!("/run/{rest}")
    } else if let Some(rest) = pid_file.strip_prefix("/var/run/") {
        format!("/run/{rest}")
    } else if pid_file.starts_with('/') {
        pid_file.to_owned()
    } else if pid_file.starts_with('%') {
        return refuse("PIDFile= starting with a specifier other than %t");
    } else {
        format!("/run/{pid_file}")
    };
    let parts: Vec<&str> = absolute.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") || parts.is_empty() {
        return refuse("PIDFile= that is not a plain absolute path");
    }
    if parts.iter().any(|p| p.contains('%')) {
        return refuse("PIDFile= with a specifier other than a leading %t");
    }
    if parts[0] == "run" && parts.len() > 1 {
        return Ok(PidFileAccess::Run(parts[1..].join("/")));
    }
    let dir_depth = parts.len() - 1;
    if dir_depth >= 2 {
        Ok(PidFileAccess::Directory(format!(
            "/{}",
            parts[..dir_depth].join("/")
        )))
    } else {
        Ok(PidFileAccess::FileOnly(format!("/{}", parts.join("/"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(pid_file: &str) -> PidFileAccess {
        pid_file_access(pid_file).unwrap()
    }

    #[test]
    fn own_directories_are_writable_shared_ones_only_for_the_file() {
        use PidFileAccess::{Directory, FileOnly, Run};
        assert_eq!(access("/run/foo/foo.pid"), Run("foo/foo.pid".into()));
        assert_eq!(access("%t/foo/foo.pid"), Run("foo/foo.pid".into()));
        assert_eq!(access("/var/run/foo/a.pid"), Run("foo/a.pid".into()));
        assert_eq!(access("/run/nginx.pid"), Run("nginx.pid".into()));
        assert_eq!(access("/var/run/sshd.pid"), Run("sshd.pid".into()));
        assert_eq!(access("%t/x.pid"), Run("x.pid".into()));
        assert_eq!(access("x.pid"), Run("x.pid".into()));
        assert_eq!(
            access("/var/lib/foo/a.pid"),
            Directory("/var/lib/foo".into())
        );
        assert_eq!(access("/x.pid"), FileOnly("/x.pid".into()));
        assert_eq!(access("/var/x.pid"), FileOnly("/var/x.pid".into()));
    }

    #[test]
    fn odd_pid_files_are_refused() {
        for bad in [
            "/run/a b.pid",
            "/run/../etc/x",
            "%h/x.pid",
            "/",
            "/run/\\x2f",
            "/run/$X.pid",
            "/run/${X}",
            "/run/%i.pid",
            "/var/lib/%i/x.pid",
        ] {
            assert!(pid_file_access(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pid_file_in_a_top_level_directory_adds_the_touch() {
        let mut unit = UnitFile::parse("[Service]\nPIDFile=/srv/x.pid\n").unwrap();
        allow_pid_file(&mut unit).unwrap();
        assert_eq!(
            unit.get_all(SERVICE, "ExecStartPre"),
            ["+/usr/bin/touch /srv/x.pid"]
        );
        assert_eq!(unit.get_all(SERVICE, "ReadWritePaths"), ["-/srv/x.pid"]);
    }

    #[test]
    fn a_pid_file_in_run_is_left_to_the_private_run() {
        let mut unit = UnitFile::parse("[Service]\nPIDFile=/run/nginx.pid\n").unwrap();
        allow_pid_file(&mut unit).unwrap();
        assert!(unit.get_all(SERVICE, "ExecStartPre").is_empty());
        assert!(unit.get_all(SERVICE, "ReadWritePaths").is_empty());
    }

    /// A vendor's configuration test (`nginx -t`) opens the PID file before the daemon
    /// runs: the touch must come first.
    #[test]
    fn the_touch_comes_before_the_vendors_own_start_pre_lines() {
        let mut unit = UnitFile::parse(
            "[Service]\nPIDFile=/srv/nginx.pid\nExecStartPre=/bin/old\nExecStartPre=\n\
             ExecStartPre=/usr/sbin/nginx -t -q\nExecStartPre=/bin/b\n",
        )
        .unwrap();
        allow_pid_file(&mut unit).unwrap();
        assert_eq!(
            unit.get_all(SERVICE, "ExecStartPre"),
            [
                "+/usr/bin/touch /srv/nginx.pid",
                "/usr/sbin/nginx -t -q",
                "/bin/b"
            ]
        );
    }
}
