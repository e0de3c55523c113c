//! Errors of the sidecar's request handlers and their gRPC status codes with
//! rich error details.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use workteams_domain::{Revision, ValidationError};

use crate::config::format_duration;

/// Domain of the `ErrorInfo` reasons this service returns.
pub const ERROR_DOMAIN: &str = "authz.workteams";

/// The reason a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    #[error(transparent)]
    InvalidArgument(#[from] ValidationError),

    /// An id that names nothing in the index.
    #[error("{kind} {id} not found at revision {revision}")]
    NotFound {
        kind: &'static str,
        field: String,
        id: String,
        revision: Revision,
    },

    #[error("the sidecar has not loaded its first snapshot from the directory yet; retry shortly")]
    NotReady,

    #[error(
        "the index was last confirmed up to date with the directory {} ago, longer than the allowed {}; \
         the directory may be unreachable",
        format_duration(*staleness),
        format_duration(*max_staleness)
    )]
    TooStale {
        staleness: Duration,
        max_staleness: Duration,
    },

    /// The request's own deadline ends before the index reaches the revision.
    #[error(
        "the index is at revision {reached} and did not reach the requested revision {requested} \
         before the request deadline ({} of waiting)",
        format_duration(*waited)
    )]
    DeadlineBeforeRevision {
        requested: Revision,
        reached: Revision,
        waited: Duration,
    },

    /// The configured wait for requests without a deadline ran out.
    #[error(
        "the index is at revision {reached} and did not reach the requested revision {requested} \
         within {}; retry, or send a longer deadline",
        format_duration(*waited)
    )]
    RevisionNotReached {
        requested: Revision,
        reached: Revision,
        waited: Duration,
    },

    /// The directory's current revision could not be read for a
    /// fully consistent request.
    #[error("could not read the directory's current revision: {0}")]
    DirectoryUnavailable(String),

    /// The follower stopped, so the index will not advance any more.
    #[error("the sidecar is shutting down")]
    ShuttingDown,

    /// A bug in the sidecar, such as a panic while evaluating.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthzError {
    pub fn not_found(kind: &'static str, field: impl Into<String>, id: impl ToString, revision: Revision) -> Self {
        Self::NotFound {
            kind,
            field: field.into(),
            id: id.to_string(),
            revision,
        }
    }

    /// Prefixes the field path of field errors, for a request nested in a
    /// batch.
    pub fn within(self, parent: &str) -> Self {
        match self {
            Self::InvalidArgument(error) => Self::InvalidArgument(error.within(parent)),
            Self::NotFound {
                kind,
                field,
                id,
                revision,
            } => Self::NotFound {
                kind,
                field: format!("{parent}.{field}"),
                id,
                revision,
            },
            other => other,
        }
    }

    fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::Internal(_) => Code::Internal,
            Self::NotFound { .. } => Code::NotFound,
            Self::DeadlineBeforeRevision { .. } => Code::DeadlineExceeded,
            Self::NotReady
            | Self::TooStale { .. }
            | Self::RevisionNotReached { .. }
            | Self::DirectoryUnavailable(_)
            | Self::ShuttingDown => Code::Unavailable,
        }
    }

    /// Returns the `ErrorInfo` reason of errors that are not about one field.
    fn reason(&self) -> Option<&'static str> {
        match self {
            Self::InvalidArgument(_) | Self::NotFound { .. } => None,
            Self::NotReady => Some("INDEX_NOT_READY"),
            Self::TooStale { .. } => Some("INDEX_TOO_STALE"),
            Self::DeadlineBeforeRevision { .. } | Self::RevisionNotReached { .. } => Some("REVISION_NOT_REACHED"),
            Self::DirectoryUnavailable(_) => Some("DIRECTORY_UNAVAILABLE"),
            Self::ShuttingDown => Some("SHUTTING_DOWN"),
            Self::Internal(_) => Some("INTERNAL"),
        }
    }
}

impl From<AuthzError> for Status {
    fn from(error: AuthzError) -> Self {
        let message = error.to_string();
        let mut details = ErrorDetails::new();

        match &error {
            AuthzError::InvalidArgument(violation) => {
                details.add_bad_request_violation(
                    violation.field.clone(),
                    format!("invalid value {:?}: {}", violation.value, violation.reason),
                );
            }
            AuthzError::NotFound { kind, field, id, .. } => {
                details.add_bad_request_violation(field.clone(), format!("no {kind} has id {id:?}"));
                details.set_resource_info(*kind, id.clone(), "", message.clone());
            }
            AuthzError::NotReady
            | AuthzError::TooStale { .. }
            | AuthzError::DeadlineBeforeRevision { .. }
            | AuthzError::RevisionNotReached { .. }
            | AuthzError::DirectoryUnavailable(_)
            | AuthzError::ShuttingDown => {}
            AuthzError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
            }
        }

        if let Some(reason) = error.reason() {
            details.set_error_info(reason, ERROR_DOMAIN, metadata(&error));
        }
        if matches!(error, AuthzError::NotReady | AuthzError::RevisionNotReached { .. }) {
            details.set_retry_info(Some(Duration::from_millis(200)));
        }

        Status::with_error_details(error.code(), message, details)
    }
}

fn metadata(error: &AuthzError) -> HashMap<String, String> {
    match error {
        AuthzError::DeadlineBeforeRevision { requested, reached, .. }
        | AuthzError::RevisionNotReached { requested, reached, .. } => HashMap::from([
            ("requested_revision".to_owned(), requested.to_string()),
            ("index_revision".to_owned(), reached.to_string()),
        ]),
        AuthzError::TooStale {
            staleness,
            max_staleness,
        } => HashMap::from([
            ("staleness_ms".to_owned(), staleness.as_millis().to_string()),
            ("max_staleness_ms".to_owned(), max_staleness.as_millis().to_string()),
        ]),
        _ => HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_field() {
        let error = AuthzError::from(ValidationError::new("checks[2].permission", "fly", "unknown permission"));
        let status = Status::from(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "checks[2].permission");
    }

    #[test]
    fn not_ready_is_unavailable_with_reason() {
        let status = Status::from(AuthzError::NotReady);
        assert_eq!(status.code(), Code::Unavailable);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "INDEX_NOT_READY");
    }

    #[test]
    fn deadline_wait_is_deadline_exceeded() {
        let status = Status::from(AuthzError::DeadlineBeforeRevision {
            requested: Revision(9),
            reached: Revision(4),
            waited: Duration::from_millis(300),
        });
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert!(status.message().contains("revision 9"));
    }

    #[test]
    fn not_found_names_field_and_id() {
        let status = Status::from(AuthzError::not_found("user", "user.id", "abc", Revision(3)));
        assert_eq!(status.code(), Code::NotFound);
        let details = status.get_error_details();
        assert_eq!(details.resource_info().unwrap().resource_name, "abc");
        assert_eq!(details.bad_request().unwrap().field_violations[0].field, "user.id");
    }
}
