//! Envoy's external authorization API (`envoy.service.auth.v3.Authorization`)
//! over the sidecar's index. Envoy sends the attributes of each HTTP
//! request, and the [`mapping`] turns them into one access check. The check
//! is decided at the current index version, like a `CheckAccess` with
//! minimize_latency.
//!
//! An allowed check returns OK. Everything else, including a request the
//! mapping cannot read, answers a denied HTTP response whose
//! [`DENIED_REASON_HEADER`] says why, so Envoy never forwards a request the
//! sidecar could not decide.

pub mod mapping;

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::ext_authz::v3::CheckResponseExt;
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue,
    HeaderValueOption, HttpResponse, HttpStatus, HttpStatusCode, OkHttpResponse,
};
use tonic::{Request, Response, Status};

pub use self::mapping::{ExtAuthzMapping, HttpAttributes, MappedCheck, Unmapped};
use crate::access::Denial;
use crate::error::AuthzError;
use crate::response::deny_reason;
use crate::service::AuthorizationHandler;

/// Header of a denied response that names the reason, such as `no_grant`
/// or `unmapped_route`.
pub const DENIED_REASON_HEADER: &str = "x-workteams-denied-reason";

/// The `envoy.service.auth.v3.Authorization` service.
#[derive(Debug, Clone)]
pub struct ExtAuthzHandler {
    mapping: Arc<ExtAuthzMapping>,
    checks: AuthorizationHandler,
}

/// The outcome of one Envoy check, before it becomes a `CheckResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Allow,
    Deny { status: HttpStatusCode, reason: String },
}

impl ExtAuthzHandler {
    pub fn new(mapping: ExtAuthzMapping, checks: AuthorizationHandler) -> Self {
        Self {
            mapping: Arc::new(mapping),
            checks,
        }
    }

    async fn decide(&self, request: &CheckRequest) -> Verdict {
        let empty = HashMap::new();
        let attributes = request.attributes.as_ref();
        let http = attributes.and_then(|attributes| attributes.request.as_ref()?.http.as_ref());
        let Some(http) = http else {
            tracing::info!(deny.reason = "no_http_request", "ext_authz denied a check without HTTP attributes");
            return forbidden("no_http_request");
        };
        let metadata = attributes
            .and_then(|attributes| attributes.metadata_context.as_ref())
            .map(|metadata| &metadata.filter_metadata);
        let headers = if http.headers.is_empty() { &empty } else { &http.headers };

        let mapped = self.mapping.map(&HttpAttributes {
            method: &http.method,
            path: &http.path,
            headers,
            metadata,
        });
        let mapped = match mapped {
            Ok(mapped) => mapped,
            Err(unmapped) => {
                tracing::info!(
                    http.method = %http.method,
                    deny.reason = unmapped.code(),
                    error = %unmapped,
                    "ext_authz denied a request the mapping does not cover",
                );
                return forbidden(unmapped.code());
            }
        };

        match self.checks.check_current(&mapped.query).await {
            Ok(decision) if decision.allowed() => Verdict::Allow,
            Ok(decision) => forbidden(&denial_code(decision.denial)),
            Err(error) => {
                let (status, reason) = error_verdict(&error);
                tracing::warn!(
                    route = %mapped.route,
                    permission = %mapped.query.permission,
                    deny.reason = reason,
                    error = %error,
                    "ext_authz could not decide; denying",
                );
                Verdict::Deny {
                    status,
                    reason: reason.to_owned(),
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthzHandler {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let verdict = self.decide(request.get_ref()).await;
        Ok(Response::new(check_response(verdict)))
    }
}

fn forbidden(reason: &str) -> Verdict {
    Verdict::Deny {
        status: HttpStatusCode::Forbidden,
        reason: reason.to_owned(),
    }
}

/// Returns the reason header value of a denial: the `DenyReason` name in
/// lower case without its prefix, such as `no_grant`.
fn denial_code(denial: Option<Denial>) -> String {
    let name = denial.map(deny_reason).map_or("DENY_REASON_UNSPECIFIED", |reason| reason.as_str_name());
    name.trim_start_matches("DENY_REASON_").to_ascii_lowercase()
}

/// Maps a check that failed instead of deciding to an HTTP status and reason.
fn error_verdict(error: &AuthzError) -> (HttpStatusCode, &'static str) {
    match error {
        AuthzError::NotReady | AuthzError::TooStale { .. } | AuthzError::ShuttingDown => {
            (HttpStatusCode::ServiceUnavailable, "index_unavailable")
        }
        // An id that names nothing, or a permission the type lacks.
        AuthzError::NotFound { .. } => (HttpStatusCode::Forbidden, "unknown_resource"),
        AuthzError::InvalidArgument(_) => (HttpStatusCode::Forbidden, "invalid_check"),
        _ => (HttpStatusCode::ServiceUnavailable, "internal_error"),
    }
}

fn check_response(verdict: Verdict) -> CheckResponse {
    match verdict {
        Verdict::Allow => {
            let mut response = CheckResponse::with_status(Status::ok(""));
            response.http_response = Some(HttpResponse::OkResponse(OkHttpResponse::default()));
            response
        }
        Verdict::Deny { status, reason } => {
            let code = if status == HttpStatusCode::ServiceUnavailable {
                tonic::Code::Unavailable
            } else {
                tonic::Code::PermissionDenied
            };
            let mut response = CheckResponse::with_status(Status::new(code, format!("access denied: {reason}")));
            #[allow(deprecated)]
            let header = HeaderValueOption {
                header: Some(HeaderValue {
                    key: DENIED_REASON_HEADER.to_owned(),
                    value: reason.clone(),
                    raw_value: Vec::new(),
                }),
                append: None,
                append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
                keep_empty_value: false,
            };
            response.http_response = Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: Some(HttpStatus { code: status.into() }),
                headers: vec![header],
                body: format!("access denied: {reason}\n"),
            }));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workteams_evaluation::DenyReason;

    #[test]
    fn denial_codes_are_short() {
        assert_eq!(denial_code(Some(Denial::Evaluated(DenyReason::NoGrant))), "no_grant");
        assert_eq!(denial_code(Some(Denial::UnknownUser)), "unknown_user");
    }

    #[test]
    fn denied_response_carries_reason_header() {
        let response = check_response(forbidden("no_grant"));
        let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else {
            panic!("not a denied response");
        };
        assert_eq!(denied.status.unwrap().code, i32::from(HttpStatusCode::Forbidden));
        let header = denied.headers[0].header.as_ref().unwrap();
        assert_eq!((header.key.as_str(), header.value.as_str()), (DENIED_REASON_HEADER, "no_grant"));
        assert_eq!(response.status.unwrap().code, tonic::Code::PermissionDenied as i32);
    }
}
