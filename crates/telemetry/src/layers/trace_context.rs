//! The RPC span: one `tracing` span per call, whose OpenTelemetry parent
//! is the W3C trace context (`traceparent`, `tracestate`) of the incoming
//! metadata, so the call joins the caller's trace.

use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
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

/// Adds the W3C trace context of the current `tracing` span to the
/// metadata of an outgoing call, so the server's span joins this trace.
/// Adds nothing when the span belongs to no OpenTelemetry trace, as when
/// no exporter is installed.
pub fn inject_current_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes());
        let value = tonic::metadata::MetadataValue::try_from(value.as_str());
        if let (Ok(key), Ok(value)) = (key, value) {
            self.0.insert(key, value);
        }
    }
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
    fn nothing_injected_outside_a_trace() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        inject_current_context(&mut metadata);
        assert!(metadata.get("traceparent").is_none());
    }

    #[test]
    fn span_context_injected() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry().with(layer);

        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("outgoing");
            let _entered = span.enter();
            let mut metadata = tonic::metadata::MetadataMap::new();

            inject_current_context(&mut metadata);

            let trace_id = span.context().span().span_context().trace_id().to_string();
            let traceparent = metadata.get("traceparent").unwrap().to_str().unwrap();
            assert!(traceparent.starts_with("00-"), "{traceparent}");
            assert!(traceparent.contains(&trace_id), "{traceparent} lacks {trace_id}");
        });
    }

    #[test]
    fn missing_traceparent_gives_no_parent() {
        let context = parent_context(&HeaderMap::new());
        assert!(!context.span().span_context().is_valid());
    }
}
