//! The RPC span: one `tracing` span per call, whose OpenTelemetry parent
//! is the W3C trace context (`traceparent`, `tracestate`) of the incoming
//! metadata, so the call joins the caller's trace.

use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::BoxFuture;
use super::request_id::REQUEST_ID_HEADER;

/// Wraps services in [`TraceContext`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContext { inner }
    }
}

/// Runs each call's handler inside an `rpc` span.
#[derive(Debug, Clone)]
pub struct TraceContext<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for TraceContext<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RequestBody: Send + 'static,
    ResponseBody: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let path = request.uri().path();
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "rpc",
            otel.name = path,
            otel.kind = "server",
            rpc.system = "grpc",
            request_id,
        );
        // Fails only when no OpenTelemetry layer is installed, and then
        // there is no trace to join.
        let _ = span.set_parent(parent_context(request.headers()));

        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let response = span.in_scope(|| inner.call(request));
        Box::pin(response.instrument(span))
    }
}

/// Extracts the OpenTelemetry context described by the W3C trace context headers,
/// or an empty context when they are missing or invalid.
pub fn parent_context(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&MetadataExtractor(headers))
}

struct MetadataExtractor<'a>(&'a HeaderMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use opentelemetry::trace::TraceContextExt;

    use super::*;

    #[test]
    fn traceparent_becomes_parent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );

        let context = parent_context(&headers);
        let parent = context.span().span_context().clone();
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parent.is_remote());
    }

    #[test]
    fn missing_traceparent_gives_no_parent() {
        let context = parent_context(&HeaderMap::new());
        assert!(!context.span().span_context().is_valid());
    }
}
