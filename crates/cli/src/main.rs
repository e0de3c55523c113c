//! The `workteams` binary.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use workteams_cli::cli::{Cli, Command};
use workteams_cli::commands::{COMMAND_SPAN_TARGET, EXIT_ERROR, run};
use workteams_cli::error::CliError;
use workteams_telemetry::{
    LogFormat, LogTarget, TelemetryEnvironment, TracingGuard, TracingSettings,
};

/// The hint printed when the span export settings are invalid.
const FIX_OTEL: &str = "fix or unset the OTEL_* variables";

fn main() -> ExitCode {
    let cli = Cli::parse();

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
    // The span exporter's gRPC channel runs on this runtime.
    let _runtime_context = runtime.enter();
    let span_export = init_tracing(matches!(cli.command, Command::Up(_)));

    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let outcome = runtime.block_on(run(cli, &mut stdout, &mut stderr));

    // Flushed outside `block_on` but while the runtime still runs the
    // exporter's channel.
    if let Some(guard) = span_export {
        guard.shutdown();
    }

    match outcome {
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
///
/// When the standard `OTEL_*` variables configure an OTLP endpoint, spans
/// are exported too, and the returned guard flushes them. Without those
/// variables the logging is the plain one and nothing is exported.
fn init_tracing(serving: bool) -> Option<TracingGuard> {
    let default_level = if serving { "info" } else { "warn" };

    let mut settings = TracingSettings::new("workteams-cli", LogFormat::Plain);
    settings.log_target = LogTarget::Stderr;
    // Calls carry a trace context only when the command span passes the
    // filter. A span writes no log lines, so the output stays the same.
    settings.default_filter = format!("{default_level},{COMMAND_SPAN_TARGET}=info");

    match settings.resolve(&TelemetryEnvironment::from_process()) {
        Ok(resolved) if resolved.otlp.is_some() => match resolved.install() {
            Ok(guard) => return Some(guard),
            Err(error) => eprintln!("warning: spans are not exported: {error}; {FIX_OTEL}"),
        },
        Ok(_) => {}
        // A bad `RUST_LOG` means plain logging at the default level, as
        // before. Other settings matter only when export is requested.
        Err(error) if error.setting() == Some("RUST_LOG") => {}
        Err(error) => eprintln!("warning: spans are not exported: {error}; {FIX_OTEL}"),
    }

    init_plain_logging(default_level);
    None
}

/// Keeps the command span out of the log lines, which read as they did
/// before spans were exported.
fn init_plain_logging(default_level: &str) {
    let command_span_off = format!("{COMMAND_SPAN_TARGET}=off");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_level))
        .add_directive(command_span_off.parse().unwrap_or_default());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
