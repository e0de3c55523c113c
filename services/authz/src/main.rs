//! The `workteams-authz` binary: reads and checks the configuration and the
//! telemetry environment, binds the gRPC, Unix socket and metrics
//! addresses, sets up logging and tracing, and runs the sidecar until
//! SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use workteams_authz::config::LogFormat;
use workteams_authz::{AuthzConfig, ServeError, ServeListeners, bind_metrics, serve_with};
use workteams_telemetry::{ResolvedTracing, TelemetryEnvironment, TracingSettings};

/// Exit status for a bad command line or setting (`EX_USAGE` in sysexits.h).
const EXIT_CONFIG: u8 = 64;
/// Exit status when a listen address cannot be bound (`EX_UNAVAILABLE`).
const EXIT_UNAVAILABLE: u8 = 69;
/// Exit status when the server fails while running (`EX_SOFTWARE`).
const EXIT_SOFTWARE: u8 = 70;

fn main() -> ExitCode {
    let config = match AuthzConfig::try_parse() {
        Ok(config) => config,
        Err(error) if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = config.validate() {
        eprintln!("workteams-authz: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let log_format = match config.log_format {
        LogFormat::Text => workteams_telemetry::LogFormat::Plain,
        LogFormat::Json => workteams_telemetry::LogFormat::Json,
    };
    let tracing = match TracingSettings::new("workteams-authz", log_format).resolve(&TelemetryEnvironment::from_process())
    {
        Ok(tracing) => tracing,
        Err(error) => {
            eprintln!("workteams-authz: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("workteams-authz: could not start the async runtime: {error}");
            return ExitCode::from(EXIT_SOFTWARE);
        }
    };
    runtime.block_on(run(config, tracing))
}

async fn run(config: AuthzConfig, tracing: ResolvedTracing) -> ExitCode {
    let shutdown = shutdown_signal();
    let listeners = match bind(&config).await {
        Ok(listeners) => listeners,
        Err(message) => {
            eprintln!("workteams-authz: {message}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };

    let tracing_guard = match tracing.install() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("workteams-authz: {error}");
            return ExitCode::from(EXIT_SOFTWARE);
        }
    };
    tracing::info!(span_export = tracing_guard.exports_spans(), "starting authorization sidecar");

    let served = serve_with(config, listeners, shutdown).await;
    let code = match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(ServeError::Config(error)) => {
            eprintln!("workteams-authz: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            tracing::error!(error = %error, "the sidecar stopped with an error");
            ExitCode::from(EXIT_SOFTWARE)
        }
    };
    tracing_guard.shutdown();
    code
}

/// Binds every configured address, or returns a message naming the one that failed.
async fn bind(config: &AuthzConfig) -> Result<ServeListeners, String> {
    let grpc = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| format!("cannot listen on {} (setting --listen): {error}", config.listen))?;
    let mut listeners = ServeListeners::tcp(grpc);

    let metrics_address = config.metrics_address().map_err(|error| error.to_string())?;
    if let Some(address) = metrics_address {
        listeners.metrics = Some(bind_metrics(address).await.map_err(|error| error.to_string())?);
    }

    if let Some(path) = &config.unix_socket {
        #[cfg(unix)]
        {
            let mode = config.unix_socket_permissions().map_err(|error| error.to_string())?;
            listeners.unix = Some(workteams_authz::bind_unix_socket(path, mode).map_err(|error| error.to_string())?);
        }
        #[cfg(not(unix))]
        return Err(format!(
            "cannot listen on {} (setting --unix-socket): Unix domain sockets need a Unix system",
            path.display()
        ));
    }
    Ok(listeners)
}

/// Listens for SIGINT and SIGTERM at once, so a signal that arrives while
/// the sidecar starts is not lost, and returns a future that completes on
/// the first one.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};

    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let (mut interrupt, mut terminate) = match (interrupt, terminate) {
            (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(error = %error, "could not listen for SIGINT and SIGTERM; stop the sidecar with SIGKILL");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT; shutting down"),
            _ = terminate.recv() => tracing::info!("received SIGTERM; shutting down"),
        }
    }
}

/// Returns a future that completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("received Ctrl-C; shutting down"),
            Err(error) => {
                tracing::error!(error = %error, "could not listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    }
}
