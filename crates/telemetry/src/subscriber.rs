//! The process-wide `tracing` subscriber: plain or JSON logs filtered by a
//! `RUST_LOG`-style directive, and an OpenTelemetry span export over OTLP
//! (gRPC) that runs only when the standard `OTEL_*` variables ask for it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;
use std::time::Duration;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::TelemetryError;

/// Environment variables this module reads. Everything else is ignored, so
/// a snapshot never carries unrelated secrets around.
const READ_VARIABLES: [&str; 9] = [
    "RUST_LOG",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
];

/// Export timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is not set (the
/// OpenTelemetry specification's default).
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How log lines are written to standard output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured when standard output is a terminal.
    #[default]
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "plain" => Ok(Self::Plain),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "{other:?} is not a log format; expected plain or json"
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Plain => "plain",
            Self::Json => "json",
        })
    }
}

/// The stream that log lines are written to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output, for servers.
    #[default]
    Stdout,
    /// Standard error, for commands whose standard output carries results.
    Stderr,
}

/// The telemetry variables of the process environment, read once at start
/// so that tests can pass their own values instead of changing the
/// environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryEnvironment {
    variables: BTreeMap<String, String>,
}

impl TelemetryEnvironment {
    /// Reads `RUST_LOG` and the `OTEL_*` variables this crate understands.
    /// Variables that are not valid Unicode count as unset.
    pub fn from_process() -> Self {
        Self::from_pairs(READ_VARIABLES.iter().filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|value| ((*name).to_owned(), value))
        }))
    }

    /// Builds an environment from name and value pairs.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: Into<String>,
        V: Into<String>,
    {
        Self {
            variables: pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        }
    }

    /// Returns a variable's value, treating an empty value as unset as the
    /// OpenTelemetry specification asks.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
    }
}

/// What a service asks of the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingSettings {
    /// `service.name` of exported spans unless `OTEL_SERVICE_NAME` is set.
    pub service_name: String,
    pub log_format: LogFormat,
    pub log_target: LogTarget,
    /// Filter directive used when `RUST_LOG` is unset, such as `info`.
    pub default_filter: String,
}

impl TracingSettings {
    pub fn new(service_name: impl Into<String>, log_format: LogFormat) -> Self {
        Self {
            service_name: service_name.into(),
            log_format,
            log_target: LogTarget::Stdout,
            default_filter: "info".to_owned(),
        }
    }

    /// Checks the settings against `environment` without installing
    /// anything, so a service can reject bad values before it binds.
    pub fn resolve(
        &self,
        environment: &TelemetryEnvironment,
    ) -> Result<ResolvedTracing, TelemetryError> {
        let filter_text = environment
            .get("RUST_LOG")
            .unwrap_or(&self.default_filter)
            .to_owned();
        // Parsed here only to report errors early; `install` parses again
        // because `EnvFilter` cannot be cloned.
        parse_filter(&filter_text)?;

        let otlp = otlp_export(environment, &self.service_name)?;
        Ok(ResolvedTracing {
            log_format: self.log_format,
            log_target: self.log_target,
            filter_text,
            otlp,
        })
    }
}

/// Where and how spans are exported over OTLP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExport {
    /// gRPC endpoint of the collector, such as `http://127.0.0.1:4317`.
    pub endpoint: String,
    pub service_name: String,
    pub timeout: Duration,
}

/// Checked subscriber settings, ready to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTracing {
    pub log_format: LogFormat,
    pub log_target: LogTarget,
    /// The filter directive in force, from `RUST_LOG` or the default.
    pub filter_text: String,
    /// `None` when no OTLP endpoint is configured or export is disabled.
    pub otlp: Option<OtlpExport>,
}

impl ResolvedTracing {
    /// Installs the global subscriber and, with OTLP export, the global
    /// tracer provider and the W3C trace context propagator.
    ///
    /// Must run inside a Tokio runtime when OTLP export is on, because the
    /// exporter's gRPC channel runs on it. Fails if a global subscriber is
    /// already installed.
    pub fn install(self) -> Result<TracingGuard, TelemetryError> {
        let filter = parse_filter(&self.filter_text)?;

        let log_layer = match (self.log_format, self.log_target) {
            (LogFormat::Plain, LogTarget::Stdout) => tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stdout().is_terminal())
                .boxed(),
            (LogFormat::Plain, LogTarget::Stderr) => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .boxed(),
            (LogFormat::Json, LogTarget::Stdout) => tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .boxed(),
            (LogFormat::Json, LogTarget::Stderr) => tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_writer(std::io::stderr)
                .boxed(),
        };

        let tracer_provider = match &self.otlp {
            Some(export) => Some(build_tracer_provider(export)?),
            None => None,
        };
        let trace_layer = tracer_provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer().with_tracer(provider.tracer("workteams"))
        });

        tracing_subscriber::registry()
            .with(log_layer)
            .with(trace_layer)
            .with(filter)
            .try_init()
            .map_err(|error| TelemetryError::Install(error.to_string()))?;

        if let Some(provider) = &tracer_provider {
            global::set_tracer_provider(provider.clone());
            global::set_text_map_propagator(TraceContextPropagator::new());
        }
        Ok(TracingGuard { tracer_provider })
    }
}

/// Flushes and stops the span export when dropped or shut down.
#[must_use = "dropping the guard stops the span export"]
#[derive(Debug)]
pub struct TracingGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl TracingGuard {
    /// Returns whether spans are exported over OTLP.
    pub fn exports_spans(&self) -> bool {
        self.tracer_provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            // The subscriber may already be gone, so write to stderr too.
            eprintln!("span export shutdown failed: {error}");
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_filter(text: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .parse(text)
        .map_err(|error| TelemetryError::InvalidSetting {
            setting: "RUST_LOG".to_owned(),
            message: format!("{text:?} is not a filter directive: {error}"),
        })
}

/// Reads the OTLP settings, following the precedence of the OpenTelemetry
/// specification: the per-signal `..._TRACES_...` variable over the
/// general one.
fn otlp_export(
    environment: &TelemetryEnvironment,
    default_service_name: &str,
) -> Result<Option<OtlpExport>, TelemetryError> {
    let disabled = environment
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let no_exporter = environment
        .get("OTEL_TRACES_EXPORTER")
        .is_some_and(|value| value.eq_ignore_ascii_case("none"));
    if disabled || no_exporter {
        return Ok(None);
    }
    if let Some(exporter) = environment.get("OTEL_TRACES_EXPORTER")
        && !exporter.eq_ignore_ascii_case("otlp")
    {
        return Err(invalid(
            "OTEL_TRACES_EXPORTER",
            format!("{exporter:?} is not supported; expected otlp or none"),
        ));
    }

    let endpoint = match environment
        .get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .map(|value| ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value))
        .or_else(|| {
            environment
                .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|value| ("OTEL_EXPORTER_OTLP_ENDPOINT", value))
        }) {
        Some((name, value)) => {
            if value.parse::<http::Uri>().is_err()
                || !(value.starts_with("http://") || value.starts_with("https://"))
            {
                return Err(invalid(
                    name,
                    format!("{value:?} is not an http:// or https:// URL"),
                ));
            }
            value.to_owned()
        }
        None => return Ok(None),
    };

    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(protocol) = environment.get(name) {
            if protocol != "grpc" {
                return Err(invalid(
                    name,
                    format!("{protocol:?} is not supported; only grpc is built in"),
                ));
            }
            break;
        }
    }

    let timeout = match environment.get("OTEL_EXPORTER_OTLP_TIMEOUT") {
        Some(text) => text
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| {
                invalid(
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                    format!("{text:?} is not a whole number of milliseconds"),
                )
            })?,
        None => DEFAULT_EXPORT_TIMEOUT,
    };

    let service_name = environment
        .get("OTEL_SERVICE_NAME")
        .unwrap_or(default_service_name)
        .to_owned();
    Ok(Some(OtlpExport {
        endpoint,
        service_name,
        timeout,
    }))
}

fn build_tracer_provider(export: &OtlpExport) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(export.endpoint.clone())
        .with_timeout(export.timeout)
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .map_err(|error| TelemetryError::Exporter(error.to_string()))?;

    // An empty resource builder, so that no detector reads the process
    // environment behind the snapshot's back.
    let resource = Resource::builder_empty()
        .with_service_name(export.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

fn invalid(setting: &str, message: String) -> TelemetryError {
    TelemetryError::InvalidSetting {
        setting: setting.to_owned(),
        message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn settings() -> TracingSettings {
        TracingSettings::new("workteams-test", LogFormat::Json)
    }

    #[test]
    fn export_off_without_endpoint() {
        let resolved = settings()
            .resolve(&TelemetryEnvironment::default())
            .unwrap();
        assert_eq!(resolved.otlp, None);
    }

    #[test]
    fn traces_endpoint_wins() {
        let environment = TelemetryEnvironment::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:5317",
            ),
            ("OTEL_SERVICE_NAME", "directory-eu"),
        ]);
        let export = settings().resolve(&environment).unwrap().otlp.unwrap();
        assert_eq!(export.endpoint, "http://127.0.0.1:5317");
        assert_eq!(export.service_name, "directory-eu");
        assert_eq!(export.timeout, DEFAULT_EXPORT_TIMEOUT);
    }

    #[test]
    fn sdk_disabled_turns_export_off() {
        let environment = TelemetryEnvironment::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert_eq!(settings().resolve(&environment).unwrap().otlp, None);
    }

    #[test]
    fn http_protocol_rejected() {
        let environment = TelemetryEnvironment::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        let error = settings().resolve(&environment).unwrap_err();
        assert_eq!(error.setting(), Some("OTEL_EXPORTER_OTLP_PROTOCOL"));
    }

    #[test]
    fn bad_endpoint_named() {
        let environment =
            TelemetryEnvironment::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]);
        let error = settings().resolve(&environment).unwrap_err();
        assert_eq!(error.setting(), Some("OTEL_EXPORTER_OTLP_ENDPOINT"));
    }

    #[test]
    fn bad_filter_named() {
        let environment = TelemetryEnvironment::from_pairs([("RUST_LOG", "workteams=loud")]);
        let error = settings().resolve(&environment).unwrap_err();
        assert_eq!(error.setting(), Some("RUST_LOG"));
    }

    #[test]
    fn empty_variable_counts_unset() {
        let environment = TelemetryEnvironment::from_pairs([("RUST_LOG", " ")]);
        let resolved = settings().resolve(&environment).unwrap();
        assert_eq!(resolved.filter_text, "info");
    }

    #[tokio::test]
    async fn span_exporter_builds() {
        let export = OtlpExport {
            endpoint: "http://127.0.0.1:4317".to_owned(),
            service_name: "workteams-test".to_owned(),
            timeout: DEFAULT_EXPORT_TIMEOUT,
        };

        let provider = build_tracer_provider(&export).unwrap();

        // Nothing was recorded, so shutting down sends nothing.
        provider.shutdown().unwrap();
    }

    #[test]
    fn log_format_parses() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("plain".parse(), Ok(LogFormat::Plain));
        assert!("text".parse::<LogFormat>().is_err());
    }
}
