//! The `systemk` binary: parse the command line, set up logging, run, and map the outcome
//! to an exit code. All behaviour lives in the library.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().collect();
    let cli = match systemk::config::parse_args(argv.clone()) {
        Ok(cli) => cli,
        Err(err) => {
            let usage_error = err.use_stderr();
            // Printing help or the version is not an error; printing can only fail when
            // stdout is gone, and then there is no one to tell.
            let _ = err.print();
            return if usage_error {
                ExitCode::from(systemk::config::usage_exit_code(&argv))
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // reqwest and rustls need one process-wide crypto provider; only a second call fails.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("systemk: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(systemk::cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("systemk: {err:#}");
            ExitCode::FAILURE
        }
    }
}
