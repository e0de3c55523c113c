//! Operations support shared by the Work Teams gRPC servers. It owns the
//! `tracing` subscriber with optional OpenTelemetry export, the Prometheus
//! metrics and their HTTP endpoint, and the tower layers every server puts
//! in front of its services: request ids, RPC spans, RPC metrics, load
//! shedding and deadlines.
//!
//! # Wiring a server
//!
//! ```no_run
//! # async fn run(grpc_listener: tokio::net::TcpListener) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use workteams_telemetry::{
//!     CallLimits, LogFormat, Metrics, ServerLayers, TelemetryEnvironment, TracingSettings,
//! };
//!
//! // 1. In main, after parsing the configuration and before binding:
//! //    resolve (exit 64 on error), then install inside the runtime.
//! let environment = TelemetryEnvironment::from_process();
//! let tracing = TracingSettings::new("workteams-authz", LogFormat::Json).resolve(&environment)?;
//! let _guard = tracing.install()?;
//!
//! // 2. One registry per process; add service metrics to `registry()`.
//! let metrics = Metrics::new()?;
//! let allowed = prometheus::IntCounter::new("authz_allowed_total", "Allowed checks.")?;
//! metrics.registry().register(Box::new(allowed.clone()))?;
//!
//! // 3. Serve the metrics endpoint next to the gRPC server.
//! let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:9152").await?;
//! tokio::spawn(workteams_telemetry::serve_metrics(
//!     metrics_listener,
//!     metrics.clone(),
//!     std::future::pending(),
//! ));
//!
//! // 4. Put the layers in front of every service.
//! let limits = CallLimits { concurrency_limit: 1024, default_deadline: Duration::from_secs(5) };
//! let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
//! tonic::transport::Server::builder()
//!     .layer(ServerLayers::new(metrics, limits))
//!     // .add_service(...)
//! #   .add_service(tonic_health::server::health_reporter().1)
//!     .serve_with_incoming(incoming)
//!     .await?;
//! # Ok(())
//! # }
//! ```

pub mod layers;
pub mod metrics;
pub mod subscriber;

pub use layers::{CallLimits, ServerLayers, inject_current_context};
pub use metrics::{METRICS_PATH, Metrics, serve_metrics};
pub use prometheus;
pub use subscriber::{
    LogFormat, LogTarget, OtlpExport, ResolvedTracing, TelemetryEnvironment, TracingGuard, TracingSettings,
};

/// An error while setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting, usually an environment variable, has an unusable value.
    #[error("invalid setting {setting}: {message}")]
    InvalidSetting { setting: String, message: String },

    #[error("cannot install the tracing subscriber: {0}")]
    Install(String),

    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(String),

    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl TelemetryError {
    /// The name of the setting at fault, for errors caused by one.
    pub fn setting(&self) -> Option<&str> {
        match self {
            Self::InvalidSetting { setting, .. } => Some(setting),
            _ => None,
        }
    }
}
