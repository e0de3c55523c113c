//! The `workteams-directory` binary: parses the configuration and the
//! telemetry environment, binds the gRPC and metrics addresses, sets up
//! logging and tracing, and serves until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use workteams_directory::{
    DirectoryArgs, ServeError, ServeListeners, bind_metrics, serve_with,
};
use workteams_telemetry::{TelemetryEnvironment, TracingSettings};

/// Exit status for bad configuration (`EX_USAGE` in sysexits.h).
const EXIT_USAGE: u8 = 64;
/// Exit status when the server cannot start or fails while serving.
const EXIT_FAILURE: u8 = 1;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match DirectoryArgs::try_parse() {
        Ok(args) => args,
        Err(error) if error.use_stderr() => {
            let _ = error.print();
            return ExitCode::from(EXIT_USAGE);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
    let config = match args.resolve() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("workteams-directory: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let tracing = match TracingSettings::new("workteams-directory", config.log_format)
        .resolve(&TelemetryEnvironment::from_process())
    {
        Ok(tracing) => tracing,
        Err(error) => {
            eprintln!("workteams-directory: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };

    let listener = match tokio::net::TcpListener::bind(config.listen_address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "workteams-directory: cannot listen on {} (setting listen_address): {error}",
                config.listen_address
            );
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let metrics_listener = match config.metrics_listen_address {
        Some(address) => match bind_metrics(address).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                eprintln!("workteams-directory: {error}");
                return ExitCode::from(EXIT_FAILURE);
            }
        },
        None => None,
    };

    let tracing_guard = match tracing.install() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("workteams-directory: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    tracing::info!(
        database = if config.uses_sqlite() {
            "sqlite"
        } else {
            "postgres"
        },
        log_format = %config.log_format,
        span_export = tracing_guard.exports_spans(),
        "starting directory"
    );

    let listeners = ServeListeners {
        grpc: listener,
        metrics: metrics_listener,
    };
    let served = serve_with(config, listeners, stop_signal()).await;
    tracing_guard.shutdown();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(ServeError::Config(error)) => {
            eprintln!("workteams-directory: {error}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(error) => {
            tracing::error!(%error, "directory failed");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Completes on Ctrl-C, or on SIGTERM where signals exist.
async fn stop_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
