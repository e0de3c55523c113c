//! A per-call deadline: the server's default, or the client's
//! `grpc-timeout` when that is shorter.
//!
//! The deadline covers the time until the handler returns its response.
//! For server-streaming calls such as Watch that is the time to open the
//! stream, so long-lived streams are not cut by it.

use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tower::{Layer, Service};

use super::BoxFuture;

/// Header in which a gRPC client sends its deadline.
const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

/// Wraps services in [`Deadline`].
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    default_deadline: Duration,
}

impl DeadlineLayer {
    pub fn new(default_deadline: Duration) -> Self {
        Self { default_deadline }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            default_deadline: self.default_deadline,
        }
    }
}

/// Ends a call with DEADLINE_EXCEEDED when its handler has not returned a
/// response in time, dropping (and so cancelling) the handler's future.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    default_deadline: Duration,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for Deadline<S>
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
        let deadline = call_deadline(request.headers(), self.default_deadline);

        // The ready service handles this call, and a fresh clone takes
        // its place for the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let response = inner.call(request);

        Box::pin(async move {
            match tokio::time::timeout(deadline, response).await {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call did not complete within its deadline of {deadline:?}"
                ))
                .into_http()),
            }
        })
    }
}

/// Returns the shorter of the client's `grpc-timeout` and the default. A header
/// that cannot be parsed is ignored, as gRPC servers commonly do.
fn call_deadline(headers: &HeaderMap, default_deadline: Duration) -> Duration {
    headers
        .get(GRPC_TIMEOUT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(default_deadline, |requested| {
            requested.min(default_deadline)
        })
}

/// Parses a `grpc-timeout` value: at most 8 digits followed by one of the
/// units H, M, S, m (milliseconds), u (microseconds) or n (nanoseconds).
pub fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let unit_start = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at(unit_start);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;

    match unit {
        "H" => Some(Duration::from_secs(amount * 3600)),
        "M" => Some(Duration::from_secs(amount * 60)),
        "S" => Some(Duration::from_secs(amount)),
        "m" => Some(Duration::from_millis(amount)),
        "u" => Some(Duration::from_micros(amount)),
        "n" => Some(Duration::from_nanos(amount)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timeout_units_parse() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn bad_timeouts_ignored() {
        for text in ["", "m", "10", "123456789S", "1.5S", "-1S", "10x"] {
            assert_eq!(parse_grpc_timeout(text), None, "{text:?}");
        }
    }

    #[test]
    fn shorter_client_deadline_wins() {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT_HEADER, "100m".parse().unwrap());
        let deadline = call_deadline(&headers, Duration::from_secs(30));
        assert_eq!(deadline, Duration::from_millis(100));
    }

    #[test]
    fn longer_client_deadline_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT_HEADER, "5M".parse().unwrap());
        let deadline = call_deadline(&headers, Duration::from_secs(30));
        assert_eq!(deadline, Duration::from_secs(30));
    }
}
