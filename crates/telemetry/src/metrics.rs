//! Prometheus metrics: the registry a service adds its own gauges and
//! counters to, the per-RPC families the [`crate::layers`] record into, and
//! the HTTP endpoint that serves them in the text exposition format.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;

/// Path the metrics endpoint serves. Every other path returns 404.
pub const METRICS_PATH: &str = "/metrics";

/// Upper bounds of the RPC latency buckets, in seconds: 1 ms to about 33 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384, 32.768,
];

/// Labels of the per-RPC families: the gRPC service, the method and the
/// status code name such as `OK` or `RESOURCE_EXHAUSTED`.
const RPC_LABELS: [&str; 3] = ["grpc_service", "grpc_method", "grpc_code"];

/// The metrics of one server process. Cloning is cheap and every clone
/// records into the same registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    handled: IntCounterVec,
    handling_seconds: HistogramVec,
}

impl Metrics {
    /// Creates a registry with the per-RPC families registered in it.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();

        let handled = IntCounterVec::new(
            Opts::new(
                "grpc_server_handled_total",
                "gRPC calls completed by the server, by method and status code.",
            ),
            &RPC_LABELS,
        )?;
        let handling_seconds = HistogramVec::new(
            HistogramOpts::new(
                "grpc_server_handling_seconds",
                "Time from receiving a gRPC call to its final status, in seconds.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &RPC_LABELS,
        )?;
        registry.register(Box::new(handled.clone()))?;
        registry.register(Box::new(handling_seconds.clone()))?;

        Ok(Self {
            registry,
            handled,
            handling_seconds,
        })
    }

    /// The registry to register service-specific collectors in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one completed call. `method_path` is the gRPC path such as
    /// `/workteams.directory.v1.DirectoryService/GetTeam`.
    pub fn record_rpc(&self, method_path: &str, code: tonic::Code, seconds: f64) {
        let (service, method) = split_method_path(method_path);
        let labels = [service, method, code_name(code)];

        self.handled.with_label_values(&labels).inc();
        self.handling_seconds
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// Renders every registered family in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}

/// Serves [`METRICS_PATH`] over HTTP/1 on `listener` until `shutdown`
/// completes. Connections already open end on their own; each one only
/// carries short scrape requests.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);

    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Accept errors such as EMFILE are transient; the next
                    // scrape retries.
                    tracing::warn!(%error, "metrics endpoint cannot accept a connection");
                    continue;
                }
            },
        };

        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != METRICS_PATH {
        return plain_response(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain_response(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }

    match metrics.render() {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            if let Ok(value) = header::HeaderValue::from_str(TextEncoder::new().format_type()) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot render metrics");
            plain_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render metrics; see the server log\n",
            )
        }
    }
}

fn plain_response(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Splits `/package.Service/Method` into its service and method. Paths of
/// another shape (not gRPC) keep the whole path as the service.
fn split_method_path(path: &str) -> (&str, &str) {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or((path, ""))
}

/// The status code's name as the gRPC specification spells it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;

    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn method_path_split() {
        let (service, method) = split_method_path("/workteams.authz.v1.AuthzService/Check");
        assert_eq!(service, "workteams.authz.v1.AuthzService");
        assert_eq!(method, "Check");
    }

    #[test]
    fn odd_path_kept_whole() {
        assert_eq!(split_method_path("health"), ("health", ""));
    }

    #[test]
    fn recorded_call_rendered() {
        let metrics = Metrics::new().unwrap();
        metrics.record_rpc("/pkg.Svc/Get", tonic::Code::NotFound, 0.003);

        let text = metrics.render().unwrap();
        assert!(text.contains(
            r#"grpc_server_handled_total{grpc_code="NOT_FOUND",grpc_method="Get",grpc_service="pkg.Svc"} 1"#
        ), "{text}");
        assert!(
            text.contains("grpc_server_handling_seconds_bucket"),
            "{text}"
        );
    }
}
