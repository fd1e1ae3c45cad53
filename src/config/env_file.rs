//! The command line, and for `systemk doctor` also `/etc/default/systemk`: the service
//! gets that file from systemd (`EnvironmentFile=`), a shell does not, so doctor reads it
//! itself to check what the agent really uses. Its values become the defaults of the
//! matching flags, so a flag on the command line and a variable in the environment still
//! win, as they would for the service. The file is read as systemd reads it, for the
//! syntax the shipped file documents: `NAME=value` lines, `#`/`;` comments, values in
//! matching quotes unquoted.

use std::collections::BTreeMap;
use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, FromArgMatches as _, Parser as _};

use super::{Cli, Command};

/// Exit code for a bad command line (`EX_USAGE`, sysexits.h), the agent's.
const EXIT_USAGE: u8 = 64;
/// Exit code of `systemk doctor` for a bad command line, as clap and most checkers use.
const DOCTOR_EXIT_USAGE: u8 = 2;

/// Parses `argv` (program name first); for `systemk doctor`, with the defaults of its
/// `--env-file`.
pub fn parse_args(argv: Vec<OsString>) -> Result<Cli, clap::Error> {
    let cli = Cli::try_parse_from(&argv)?;
    let Some(Command::Doctor(args)) = &cli.command else {
        return Ok(cli);
    };
    let text = match std::fs::read_to_string(&args.env_file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(cli),
        Err(err) => {
            return Err(Cli::command().error(
                ErrorKind::Io,
                format!("cannot read --env-file {}: {err}", args.env_file.display()),
            ));
        }
    };
    let command = with_file_defaults(Cli::command(), &parse_env_file(&text), |name| {
        std::env::var_os(name).is_some()
    });
    let matches = command.try_get_matches_from(&argv)?;
    Cli::from_arg_matches(&matches)
}

/// The exit code for a usage error in `argv`: 2 for `systemk doctor`, else 64.
pub fn usage_exit_code(argv: &[OsString]) -> u8 {
    if argv.get(1).is_some_and(|arg| arg == "doctor") {
        DOCTOR_EXIT_USAGE
    } else {
        EXIT_USAGE
    }
}

/// The variables of an environment file, as systemd's `EnvironmentFile=` reads the
/// shipped syntax: blank lines and `#`/`;` comments skipped, `NAME=value` trimmed, one
/// pair of matching quotes removed; later lines win.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|quote| {
                value
                    .strip_prefix(*quote)
                    .and_then(|rest| rest.strip_suffix(*quote))
            })
            .unwrap_or(value);
        vars.insert(name.trim().to_owned(), unquoted.to_owned());
    }
    vars
}

/// `command` with the doctor's flags defaulting to the file's variables, except those
/// the environment sets (`in_env`).
fn with_file_defaults(
    command: clap::Command,
    vars: &BTreeMap<String, String>,
    in_env: impl Fn(&str) -> bool,
) -> clap::Command {
    command.mut_subcommand("doctor", |mut doctor| {
        let from_file: Vec<(clap::Id, String)> = doctor
            .get_arguments()
            .filter_map(|arg| {
                let name = arg.get_env()?.to_str()?;
                let value = vars.get(name).filter(|_| !in_env(name))?;
                Some((arg.get_id().clone(), value.clone()))
            })
            .collect();
        for (id, value) in from_file {
            doctor = doctor.mut_arg(id, |arg| arg.default_value(value));
        }
        doctor
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_syntax() {
        let vars = parse_env_file(
            "# comment\n; also\n\nSYSTEMK_CERT_DIR=/var/lib/x/pki\n SYSTEMK_NODENAME = \"node a\" \nSYSTEMK_STATE_DIR='/s'\nnot a variable\nSYSTEMK_STATE_DIR=/t\n#SYSTEMK_KUBECONFIG=/k\n",
        );
        assert_eq!(vars.get("SYSTEMK_CERT_DIR").unwrap(), "/var/lib/x/pki");
        assert_eq!(vars.get("SYSTEMK_NODENAME").unwrap(), "node a");
        assert_eq!(vars.get("SYSTEMK_STATE_DIR").unwrap(), "/t");
        assert!(!vars.contains_key("SYSTEMK_KUBECONFIG"));
        assert_eq!(vars.len(), 3);
    }

    fn doctor(argv: &[&str], vars: &[(&str, &str)], env: &[&str]) -> super::super::DoctorArgs {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let command = with_file_defaults(Cli::command(), &vars, |name| env.contains(&name));
        let matches = command.try_get_matches_from(argv).unwrap();
        match Cli::from_arg_matches(&matches).unwrap().command {
            Some(Command::Doctor(args)) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_file_sets_defaults_and_flags_win() {
        let vars = [
            ("SYSTEMK_CERT_DIR", "/from/file"),
            ("SYSTEMK_BOOTSTRAP_KUBECONFIG", "/etc/systemk/bootstrap"),
            ("SYSTEMK_STATE_DIR", "/state"),
        ];
        let args = doctor(&["systemk", "doctor"], &vars, &[]);
        assert_eq!(args.agent.cert_dir(), std::path::Path::new("/from/file"));
        assert_eq!(args.agent.paths.state_dir, std::path::Path::new("/state"));
        assert_eq!(
            args.agent.bootstrap_kubeconfig.as_deref(),
            Some(std::path::Path::new("/etc/systemk/bootstrap"))
        );
        let args = doctor(&["systemk", "doctor", "--cert-dir", "/flag"], &vars, &[]);
        assert_eq!(args.agent.cert_dir(), std::path::Path::new("/flag"));
        // A variable of the environment is left to clap, which reads it.
        let args = doctor(&["systemk", "doctor"], &vars, &["SYSTEMK_CERT_DIR"]);
        assert_ne!(args.agent.cert_dir(), std::path::Path::new("/from/file"));
    }

    #[test]
    fn doctor_usage_errors_exit_2() {
        let argv = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(usage_exit_code(&argv(&["systemk", "doctor", "--bogus"])), 2);
        assert_eq!(usage_exit_code(&argv(&["systemk", "--bogus"])), 64);
        assert!(parse_args(argv(&["systemk", "doctor", "-o", "yaml"])).is_err());
    }
}
