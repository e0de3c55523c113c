//! tower layers for tonic servers, and [`ServerLayers`], which stacks them
//! in the order every Work Teams server uses.
//!
//! From the outside in: [`RequestIdLayer`] (so every response, shed ones
//! included, carries the id), [`TraceContextLayer`] (the RPC span),
//! [`RpcMetricsLayer`] (so shed and timed-out calls are counted),
//! [`LoadShedLayer`] and [`DeadlineLayer`].

mod deadline;
mod load_shed;
mod request_id;
mod rpc_metrics;
mod trace_context;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use deadline::{Deadline, DeadlineLayer, parse_grpc_timeout};
pub use load_shed::{LoadShed, LoadShedLayer};
pub use request_id::{REQUEST_ID_HEADER, RequestId, RequestIdLayer};
pub use rpc_metrics::{RpcMetrics, RpcMetricsBody, RpcMetricsLayer};
pub use trace_context::{TraceContext, TraceContextLayer, inject_current_context, parent_context};

use crate::Metrics;

/// Boxed response future shared by the layers.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Limits every server applies to incoming calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Calls handled at once; the next one gets RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    /// Deadline of a call whose client sent no shorter `grpc-timeout`.
    pub default_deadline: Duration,
}

/// The full stack of server layers. Pass it to
/// `tonic::transport::Server::builder().layer(...)`.
///
/// tonic applies the layer to each connection; the clones share one
/// concurrency limit, so the limit holds for the whole server.
#[derive(Debug, Clone)]
pub struct ServerLayers {
    metrics: RpcMetricsLayer,
    load_shed: LoadShedLayer,
    deadline: DeadlineLayer,
}

impl ServerLayers {
    pub fn new(metrics: Metrics, limits: CallLimits) -> Self {
        Self {
            metrics: RpcMetricsLayer::new(metrics),
            load_shed: LoadShedLayer::new(limits.concurrency_limit),
            deadline: DeadlineLayer::new(limits.default_deadline),
        }
    }
}

impl<S> tower::Layer<S> for ServerLayers {
    type Service = RequestId<TraceContext<RpcMetrics<LoadShed<Deadline<S>>>>>;

    fn layer(&self, inner: S) -> Self::Service {
        let deadline = self.deadline.layer(inner);
        let shed = self.load_shed.layer(deadline);
        let metrics = self.metrics.layer(shed);
        let traced = TraceContextLayer.layer(metrics);
        RequestIdLayer.layer(traced)
    }
}
