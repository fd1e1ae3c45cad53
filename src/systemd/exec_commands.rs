//! The command lines of a service's start (`ExecStartPre=`, `ExecStart=`,
//! `ExecStartPost=`) as systemd reports them on D-Bus, reduced to the one that made the
//! start fail. A start can fail before the main process ever runs: an `ExecStartPre=`
//! line exits non-zero, or the `ExecStart=` of a `Type=forking`/`oneshot` service (a
//! control process, not the main one) fails. systemd 252 then leaves `ExecMainCode`,
//! `ExecMainStatus` and `ExecMainStartTimestamp` at 0 (it resets them at every start) and
//! keeps the exit only in these properties, whose per-command status it also resets at
//! every start. Pure mapping; reading happens in `status.rs`. Layer 3.

use std::collections::HashMap;

use zbus::OwnedVariant;

/// One `a(sasbttttuii)` entry of an `Exec*` property: path, argv, ignore errors (`-`
/// prefix), start realtime, start monotonic, exit realtime, exit monotonic, pid, code
/// (`si_code`), status.
type ExecEntry = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);

/// The properties whose commands run while a service starts, in the order they run.
const START_COMMANDS: [&str; 3] = ["ExecStartPre", "ExecStart", "ExecStartPost"];

/// `si_code` of a process that exited on its own (waitid(2)).
const CLD_EXITED: i32 = 1;

/// A start command that ended in failure during the unit's latest start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCommand {
    /// Which command line: `ExecStartPre`, `ExecStart` or `ExecStartPost`.
    pub kind: &'static str,
    /// The program it ran.
    pub path: String,
    /// `si_code`: 1 exited, 2 killed, 3 dumped core.
    pub code: i32,
    /// The exit code when `code` is 1, else the signal.
    pub status: i32,
    /// When it started, CLOCK_REALTIME µs.
    pub start_us: u64,
    /// When it ended, CLOCK_REALTIME µs.
    pub exit_us: u64,
}

/// The start command that failed most recently, if any did: one that ended (exit time
/// set) other than by exiting 0, and whose failure counts (no `-` prefix).
pub(super) fn failed_command(properties: &HashMap<String, OwnedVariant>) -> Option<FailedCommand> {
    START_COMMANDS
        .iter()
        .flat_map(|kind| {
            entries(properties, kind)
                .into_iter()
                .map(move |e| (*kind, e))
        })
        .filter(|(_, (_, _, ignore, _, _, exit_us, _, _, code, status))| {
            !ignore && *exit_us != 0 && *code != 0 && !(*code == CLD_EXITED && *status == 0)
        })
        .max_by_key(|(_, entry)| entry.5)
        .map(
            |(kind, (path, _, _, start_us, _, exit_us, _, _, code, status))| FailedCommand {
                kind,
                path,
                code,
                status,
                start_us,
                exit_us,
            },
        )
}

/// The entries of one `Exec*` property; none when it is absent or has another type
/// (a unit without such lines, or a future systemd that changed the signature).
fn entries(properties: &HashMap<String, OwnedVariant>, key: &str) -> Vec<ExecEntry> {
    properties
        .get(key)
        .and_then(|value| value.try_clone().ok())
        .and_then(|value| Vec::<ExecEntry>::try_from(value).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use zbus::Variant;

    use super::*;

    fn entry(path: &str, ignore: bool, exit_us: u64, code: i32, status: i32) -> ExecEntry {
        (
            path.into(),
            vec![path.into()],
            ignore,
            exit_us.saturating_sub(10),
            0,
            exit_us,
            0,
            7,
            code,
            status,
        )
    }

    fn properties(pairs: Vec<(&str, Vec<ExecEntry>)>) -> HashMap<String, OwnedVariant> {
        pairs
            .into_iter()
            .map(|(key, value)| {
                let variant = Variant::from(value);
                (key.to_owned(), OwnedVariant::try_from(&variant).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_failed_exec_start_pre_is_found() {
        let props = properties(vec![
            (
                "ExecStartPre",
                vec![
                    entry("/bin/true", false, 100, 1, 0),
                    entry("/bin/mkdir", false, 200, 1, 3),
                ],
            ),
            ("ExecStart", vec![entry("/usr/sbin/d", false, 0, 0, 0)]),
        ]);
        let failed = failed_command(&props).unwrap();
        assert_eq!(
            (
                failed.kind,
                failed.path.as_str(),
                failed.code,
                failed.status
            ),
            ("ExecStartPre", "/bin/mkdir", 1, 3)
        );
        assert_eq!((failed.start_us, failed.exit_us), (190, 200));
    }

    #[test]
    fn ignored_successful_and_unfinished_commands_do_not_count() {
        let props = properties(vec![
            ("ExecStartPre", vec![entry("/bin/false", true, 100, 1, 1)]),
            ("ExecStart", vec![entry("/usr/sbin/d", false, 0, 0, 0)]),
            ("ExecStartPost", vec![entry("/bin/true", false, 300, 1, 0)]),
        ]);
        assert_eq!(failed_command(&props), None);
        assert_eq!(failed_command(&HashMap::new()), None);
    }

    #[test]
    fn a_killed_control_process_is_a_failure() {
        let props = properties(vec![("ExecStart", vec![entry("/bin/d", false, 50, 2, 9)])]);
        let failed = failed_command(&props).unwrap();
        assert_eq!(
            (failed.kind, failed.code, failed.status),
            ("ExecStart", 2, 9)
        );
    }
}
