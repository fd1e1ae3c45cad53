//! The `systemk` binary: parse the command line, set up logging, run, map the outcome to
//! an exit code. All behaviour lives in the library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use systemk::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Manpage) = cli.command {
        let written =
            systemk::config::manpage().and_then(|page| std::io::stdout().write_all(&page));
        if let Err(err) = written {
            eprintln!("systemk: cannot write the man page: {err}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
