//! Top layer: what each command of the `systemk` binary does, wired from the lower layers.
//! `main.rs` only parses, sets up logging and maps the outcome to an exit code.

mod agent;
mod doctor;
mod pods;
mod render;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{Cli, Command};

/// Runs the command the command line asks for; the exit code when it ran to the end.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Render(args)) => render::run(args).await?,
        Some(Command::Pods(args)) => pods::run(args).await?,
        Some(Command::Doctor(args)) => return Ok(ExitCode::from(doctor::run(*args).await?)),
        Some(Command::Manpage) => {
            let page = crate::config::manpage().context("cannot render the man page")?;
            std::io::stdout()
                .write_all(&page)
                .context("cannot write the man page")?;
        }
        None => agent::run(cli.agent).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The host's name, the default node name.
pub(crate) fn hostname() -> anyhow::Result<String> {
    let name: OsString = nix::unistd::gethostname().context("cannot read the host name")?;
    name.into_string()
        .map(|name| name.to_lowercase())
        .map_err(|name| anyhow::anyhow!("the host name {name:?} is not UTF-8"))
}
