//! A concurrency limit that sheds load instead of queueing: a call that
//! arrives while the limit is reached gets RESOURCE_EXHAUSTED at once.
//!
//! A call keeps its slot until its handler returns the response. For
//! server-streaming calls such as Watch that is when the stream opens, so
//! open streams do not use up the limit. Health checks are never shed,
//! because an orchestrator that sees failed probes on a busy server would
//! restart it and make the overload worse.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use super::BoxFuture;

/// Path prefix of the standard gRPC health service.
const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Wraps services in [`LoadShed`]. Every service made by one layer (and
/// its clones) shares the same limit.
#[derive(Debug, Clone)]
pub struct LoadShedLayer {
    slots: Arc<Semaphore>,
    limit: usize,
}

impl LoadShedLayer {
    /// Creates a limit of `limit` calls at once. A limit of 0 sheds every call
    /// but health checks.
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
            limit,
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            slots: Arc::clone(&self.slots),
            limit: self.limit,
        }
    }
}

/// Rejects calls over the concurrency limit with RESOURCE_EXHAUSTED.
#[derive(Debug, Clone)]
pub struct LoadShed<S> {
    inner: S,
    slots: Arc<Semaphore>,
    limit: usize,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for LoadShed<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RequestBody: Send + 'static,
    ResponseBody: Default + Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let exempt = request.uri().path().starts_with(HEALTH_PATH_PREFIX);
        let slot = if exempt {
            None
        } else {
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    let limit = self.limit;
                    tracing::debug!(limit, path = request.uri().path(), "call shed");
                    return Box::pin(async move {
                        Ok(tonic::Status::resource_exhausted(format!(
                            "the server is handling its limit of {limit} calls; retry with backoff"
                        ))
                        .into_http())
                    });
                }
            }
        };

        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let response = inner.call(request);

        Box::pin(async move {
            let result = response.await;
            drop(slot);
            result
        })
    }
}
