//! Per-RPC metrics: one count and one latency observation per call,
//! labelled by method and final gRPC status code.
//!
//! The status is read from the response headers for trailers-only
//! responses (errors, shed calls) and from the trailers otherwise, so the
//! latency runs until the last message of the call has been sent. A call
//! dropped before its status is known (the client went away) counts as
//! CANCELLED.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::BoxFuture;
use crate::Metrics;

/// Wraps services in [`RpcMetrics`].
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: Metrics,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Records every call into [`Metrics::record_rpc`].
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for RpcMetrics<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RequestBody: Send + 'static,
    ResponseBody: Send + 'static,
{
    type Response = Response<RpcMetricsBody<ResponseBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let recorder = CallRecorder {
            metrics: self.metrics.clone(),
            path: request.uri().path().to_owned(),
            started: Instant::now(),
            recorded: false,
        };

        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let response = inner.call(request);

        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    recorder.finish(tonic::Code::Unknown);
                    return Err(error);
                }
            };

            let recorder = match grpc_status(response.headers()) {
                Some(code) => {
                    recorder.finish(code);
                    None
                }
                None => Some(recorder),
            };
            Ok(response.map(|inner| RpcMetricsBody { inner, recorder }))
        })
    }
}

/// The start of one call, recorded once its status is known. A call
/// dropped before that (the client went away or reset the stream) is
/// recorded as CANCELLED.
#[derive(Debug)]
struct CallRecorder {
    metrics: Metrics,
    path: String,
    started: Instant,
    recorded: bool,
}

impl CallRecorder {
    fn finish(mut self, code: tonic::Code) {
        self.record(code);
    }

    fn record(&mut self, code: tonic::Code) {
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics.record_rpc(&self.path, code, seconds);
        self.recorded = true;
    }
}

impl Drop for CallRecorder {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(tonic::Code::Cancelled);
        }
    }
}

pin_project! {
    /// A response body that records the call when its trailers pass.
    pub struct RpcMetricsBody<B> {
        #[pin]
        inner: B,
        recorder: Option<CallRecorder>,
    }
}

impl<B: Default> Default for RpcMetricsBody<B> {
    fn default() -> Self {
        Self {
            inner: B::default(),
            recorder: None,
        }
    }
}

impl<B: Body> Body for RpcMetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(context));

        let code = match &frame {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|trailers| grpc_status(trailers).unwrap_or(tonic::Code::Unknown)),
            Some(Err(_)) => Some(tonic::Code::Unknown),
            // A gRPC response always ends with a status.
            None => Some(tonic::Code::Unknown),
        };
        if let Some(code) = code
            && let Some(recorder) = this.recorder.take()
        {
            recorder.finish(code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?;
    let number: i32 = value.to_str().ok()?.parse().ok()?;
    Some(tonic::Code::from_i32(number))
}
