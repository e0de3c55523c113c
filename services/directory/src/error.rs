//! The directory's error type and its one mapping to `tonic::Status`, with
//! the standard gRPC codes and rich error details (`google.rpc.BadRequest`,
//! `ResourceInfo`, `PreconditionFailure`, `ErrorInfo`, `RequestInfo`).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use workteams_auth::AuthError;
use workteams_domain::ValidationError;
use workteams_storage::StoreError;

use crate::authorization::Denied;

/// The `ErrorInfo.domain` of every error the directory returns.
pub const ERROR_DOMAIN: &str = "directory.workteams";
/// `ErrorInfo.reason` when a Watch token is older than the retained log.
pub const CHANGE_LOG_TRUNCATED: &str = "CHANGE_LOG_TRUNCATED";
/// `ErrorInfo.reason` when an etag no longer matches.
pub const ETAG_MISMATCH: &str = "ETAG_MISMATCH";
/// `ErrorInfo.reason` when a consistency token is ahead of the head.
pub const TOKEN_AHEAD: &str = "TOKEN_AHEAD";
/// `ErrorInfo.reason` of NOT_FOUND errors.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// `ErrorInfo.reason` of ALREADY_EXISTS errors.
pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
/// `ErrorInfo.reason` of FAILED_PRECONDITION errors other than truncation.
pub const FAILED_PRECONDITION: &str = "FAILED_PRECONDITION";
/// `ErrorInfo.reason` when the server stops a stream to shut down.
pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
/// `ErrorInfo.reason` when a caller has used up its rate limit.
pub const RATE_LIMITED: &str = "RATE_LIMITED";
/// `ErrorInfo.reason` when the caller may not make the call.
pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";

/// The error of an RPC: invalid input, a store error, or shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request breaks a rule before the store is involved.
    #[error(transparent)]
    Invalid(#[from] ValidationError),

    #[error(transparent)]
    Store(#[from] StoreError),

    /// The caller may not make this call on these ids.
    #[error(transparent)]
    PermissionDenied(#[from] Denied),

    /// The server is stopping; the client should retry on another replica
    /// or later.
    #[error("the directory is shutting down; reconnect and retry")]
    ShuttingDown,

    /// The call's credentials were missing or rejected.
    #[error("authentication failed: {0}")]
    Unauthenticated(#[from] AuthError),

    /// The caller has used up its rate limit.
    #[error("too many calls from this caller; retry after {} ms", retry_after.as_millis())]
    RateLimited { retry_after: std::time::Duration },
}

impl ApiError {
    /// Returns the request field the error is about, for logs: unlike the
    /// status message it never contains a submitted value, which may be an
    /// e-mail address.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid(error) | Self::Store(StoreError::Validation(error)) => Some(&error.field),
            Self::Store(
                StoreError::NotFound { field, .. }
                | StoreError::AlreadyExists { field, .. }
                | StoreError::FailedPrecondition { field, .. },
            ) => Some(field),
            Self::Store(StoreError::IdempotencyKeyReused { .. }) => Some("idempotency_key"),
            Self::PermissionDenied(denied) => denied.field.as_deref(),
            Self::Store(_)
            | Self::ShuttingDown
            | Self::Unauthenticated(_)
            | Self::RateLimited { .. } => None,
        }
    }

    /// Converts the error into a status with rich details. Internal errors
    /// are logged here with an error id; the client sees only the id.
    pub fn into_status(self, request_id: &str) -> Status {
        match self {
            Self::Invalid(error) => invalid_argument(&error),
            Self::Store(error) => store_status(error, request_id),
            Self::PermissionDenied(denied) => {
                let field = denied.field.clone().unwrap_or_default();
                let details = error_info(PERMISSION_DENIED, &[("field", &field)]);
                Status::with_error_details(Code::PermissionDenied, denied.to_string(), details)
            }
            Self::Unauthenticated(error) => {
                let details = error_info(error.reason(), &[]);
                Status::with_error_details(
                    Code::Unauthenticated,
                    format!("authentication failed: {error}"),
                    details,
                )
            }
            Self::RateLimited { retry_after } => {
                let mut details = error_info(RATE_LIMITED, &[]);
                details.set_retry_info(Some(retry_after));
                let message = Self::RateLimited { retry_after }.to_string();
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            Self::ShuttingDown => {
                let details =
                    ErrorDetails::with_error_info(SHUTTING_DOWN, ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(
                    Code::Unavailable,
                    Self::ShuttingDown.to_string(),
                    details,
                )
            }
        }
    }
}

fn invalid_argument(error: &ValidationError) -> Status {
    let description = format!("{} (value {:?})", error.reason, error.value);
    let details = ErrorDetails::with_bad_request_violation(error.field.clone(), description);
    Status::with_error_details(Code::InvalidArgument, error.to_string(), details)
}

fn error_info(reason: &str, metadata: &[(&str, &str)]) -> ErrorDetails {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

fn store_status(error: StoreError, request_id: &str) -> Status {
    let message = error.to_string();
    match error {
        StoreError::Validation(error) => invalid_argument(&error),

        StoreError::NotFound { what, field, value } => {
            let mut details = error_info(NOT_FOUND, &[("field", &field)]);
            details.set_resource_info(what, value, "", format!("no {what} with this {field}"));
            Status::with_error_details(Code::NotFound, message, details)
        }

        StoreError::AlreadyExists { what, field, value } => {
            let mut details = error_info(ALREADY_EXISTS, &[("field", &field)]);
            details.set_resource_info(
                what,
                value,
                "",
                format!("another {what} already has this {field}, compared ignoring case"),
            );
            Status::with_error_details(Code::AlreadyExists, message, details)
        }

        StoreError::FailedPrecondition { field, reason } => {
            let mut details = error_info(FAILED_PRECONDITION, &[("field", &field)]);
            details.add_precondition_failure_violation("STATE", field, reason);
            Status::with_error_details(Code::FailedPrecondition, message, details)
        }

        StoreError::Aborted { what, current_etag } => {
            let details = error_info(
                ETAG_MISMATCH,
                &[("entity", what), ("current_etag", &current_etag)],
            );
            Status::with_error_details(
                Code::Aborted,
                format!("{message}; read the {what} again and retry with its new etag"),
                details,
            )
        }

        StoreError::IdempotencyKeyReused { key } => invalid_argument(&ValidationError::new(
            "idempotency_key",
            key,
            "already used with a different request; use a new key for a new request",
        )),

        StoreError::ChangeLogTruncated { oldest_available } => {
            let oldest = oldest_available.to_string();
            let mut details = error_info(
                CHANGE_LOG_TRUNCATED,
                &[("oldest_available_revision", &oldest)],
            );
            details.add_precondition_failure_violation(
                CHANGE_LOG_TRUNCATED,
                "from_consistency_token",
                "the change log no longer contains the changes after this token",
            );
            Status::with_error_details(
                Code::FailedPrecondition,
                format!(
                    "the change log no longer contains the changes after this token (the oldest \
                     available revision is {oldest}); take a snapshot with ExportSnapshot and \
                     watch from its consistency token"
                ),
                details,
            )
        }

        StoreError::TokenFromOtherInstallation => invalid_argument(&ValidationError::new(
            "consistency_token",
            "",
            "the token comes from another directory installation; take a new snapshot or token from this one",
        )),

        StoreError::TokenAhead { requested, head } => {
            let details = error_info(
                TOKEN_AHEAD,
                &[
                    ("requested_revision", &requested.to_string()),
                    ("head_revision", &head.to_string()),
                ],
            );
            Status::with_error_details(Code::OutOfRange, message, details)
        }

        StoreError::Database(_) | StoreError::Corrupt(_) => {
            let error_id = uuid::Uuid::now_v7();
            tracing::error!(%error_id, request_id, error = %message, "internal error");
            let details =
                ErrorDetails::with_request_info(request_id, format!("error id {error_id}"));
            Status::with_error_details(
                Code::Internal,
                format!("internal error {error_id}; retry later or report the id to the operator"),
                details,
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use workteams_domain::Revision;

    use super::*;

    #[test]
    fn validation_names_field() {
        let error = ApiError::from(ValidationError::new(
            "members[3].user_id",
            "X",
            "not a user id",
        ));
        let status = error.into_status("r1");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "members[3].user_id");
        assert!(violations[0].description.contains("\"X\""));
    }

    #[test]
    fn not_found_has_resource_info() {
        let error = ApiError::from(StoreError::NotFound {
            what: "team",
            field: "team_id".to_owned(),
            value: "0190".to_owned(),
        });
        let status = error.into_status("r1");
        assert_eq!(status.code(), Code::NotFound);
        let details = status.get_error_details();
        assert_eq!(details.resource_info().unwrap().resource_type, "team");
    }

    #[test]
    fn truncated_log_says_take_snapshot() {
        let error = ApiError::from(StoreError::ChangeLogTruncated {
            oldest_available: Revision(40),
        });
        let status = error.into_status("r1");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("ExportSnapshot"));
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, CHANGE_LOG_TRUNCATED);
    }

    #[test]
    fn etag_mismatch_is_aborted() {
        let error = ApiError::from(StoreError::Aborted {
            what: "team",
            current_etag: "\"4\"".to_owned(),
        });
        assert_eq!(error.into_status("r1").code(), Code::Aborted);
    }

    #[test]
    fn database_error_hides_detail() {
        let error = ApiError::from(StoreError::Corrupt("SELECT secret FROM x".to_owned()));
        let status = error.into_status("r1");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("SELECT"));
    }
}
