//! The `workteams` binary.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use workteams_cli::cli::{Cli, Command};
use workteams_cli::commands::{EXIT_ERROR, run};
use workteams_cli::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Up(_)));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };

    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    match runtime.block_on(run(cli, &mut stdout, &mut stderr)) {
        Ok(code) => code,
        // A reader that stops early (`| head`) is not an error.
        Err(CliError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Logs to standard error: the services' start, stop and errors for `up`,
/// only warnings for the other commands. `RUST_LOG` overrides the level.
fn init_tracing(serving: bool) {
    let default_level = if serving { "info" } else { "warn" };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
