//! Request ids: the caller's `x-request-id`, or a new UUID when the caller
//! sent none. The id is set on the request (for handlers and the RPC span)
//! and echoed on the response.
//!
//! An id that is present but unusable (too long, not printable ASCII, or
//! repeated) is passed on untouched and not echoed, so the service can
//! reject it with INVALID_ARGUMENT naming the metadata key.

use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use tower::{Layer, Service};

use super::BoxFuture;

/// Header carrying the request id in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Maximum length of a caller-chosen id, in bytes.
const MAX_REQUEST_ID_LENGTH: usize = 128;

/// Wraps services in [`RequestId`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestId { inner }
    }
}

/// Ensures every call has an `x-request-id` and echoes it back.
#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for RequestId<S>
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

    fn call(&mut self, mut request: Request<RequestBody>) -> Self::Future {
        let request_id = match caller_request_id(request.headers()) {
            CallerRequestId::Usable(value) => Some(value),
            CallerRequestId::Unusable => None,
            CallerRequestId::Missing => {
                let generated = new_request_id();
                request
                    .headers_mut()
                    .insert(REQUEST_ID_HEADER, generated.clone());
                Some(generated)
            }
        };

        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let response = inner.call(request);

        Box::pin(async move {
            let mut response = response.await?;
            if let Some(request_id) = request_id {
                response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
            }
            Ok(response)
        })
    }
}

/// What the caller sent as its request id.
#[derive(Debug, PartialEq, Eq)]
enum CallerRequestId {
    /// No header, or an empty one.
    Missing,
    /// One value of 1 to 128 printable ASCII characters (spaces allowed),
    /// so it is safe to log and to echo.
    Usable(HeaderValue),
    Unusable,
}

fn caller_request_id(headers: &HeaderMap) -> CallerRequestId {
    let mut values = headers.get_all(REQUEST_ID_HEADER).iter();
    let Some(value) = values.next() else {
        return CallerRequestId::Missing;
    };
    if values.next().is_some() {
        return CallerRequestId::Unusable;
    }

    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return CallerRequestId::Missing;
    }
    let printable = bytes.iter().all(|byte| (b' '..=b'~').contains(byte));
    if printable && bytes.len() <= MAX_REQUEST_ID_LENGTH {
        CallerRequestId::Usable(value.clone())
    } else {
        CallerRequestId::Unusable
    }
}

fn new_request_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(REQUEST_ID_HEADER, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn caller_id_kept() {
        let id = caller_request_id(&headers(&["req 42"]));
        assert_eq!(id, CallerRequestId::Usable("req 42".parse().unwrap()));
    }

    #[test]
    fn empty_id_counts_missing() {
        assert_eq!(caller_request_id(&headers(&[""])), CallerRequestId::Missing);
    }

    #[test]
    fn control_character_unusable() {
        let id = caller_request_id(&headers(&["tab\there"]));
        assert_eq!(id, CallerRequestId::Unusable);
    }

    #[test]
    fn long_id_unusable() {
        let long = "a".repeat(MAX_REQUEST_ID_LENGTH + 1);
        assert_eq!(
            caller_request_id(&headers(&[&long])),
            CallerRequestId::Unusable
        );
    }

    #[test]
    fn repeated_header_unusable() {
        let id = caller_request_id(&headers(&["a", "b"]));
        assert_eq!(id, CallerRequestId::Unusable);
    }

    #[test]
    fn generated_id_is_uuid() {
        let id = new_request_id();
        assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
    }
}
