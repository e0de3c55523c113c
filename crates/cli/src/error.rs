//! The command line's error type and how each error is shown to a person.

use std::fmt;
use std::path::PathBuf;

use tonic_types::StatusExt;
use workteams_domain::ValidationError;

use crate::yaml::Diagnostics;

/// Everything that can make a command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A manifest or Peribolos configuration has errors; nothing was applied.
    #[error("{}", render_diagnostics(.0))]
    Files(Diagnostics),

    /// A service rejected a call or could not be reached.
    #[error("{action} failed: {}", render_status(.status))]
    Rpc {
        action: String,
        status: Box<tonic::Status>,
    },

    #[error("cannot connect to {address}: {reason}")]
    Connect { address: String, reason: String },

    /// A service sent something this command cannot read.
    #[error("unexpected answer from the service: {0}")]
    Protocol(String),

    /// An invalid argument. The message names it and the reason.
    #[error("{0}")]
    Usage(String),

    #[error("{0}")]
    NotFound(String),

    /// The removal guard stopped an apply; nothing was changed.
    #[error("{0}")]
    Refused(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A service started by `workteams up` failed.
    #[error("{0}")]
    Serve(String),

    /// An apply stopped part way; the calls before the failed one were applied.
    #[error(
        "{source}\nthe changes before this one were applied; run the command again to apply the rest"
    )]
    PartlyApplied {
        #[source]
        source: Box<CliError>,
    },
}

impl CliError {
    pub fn rpc(action: impl Into<String>, status: tonic::Status) -> Self {
        Self::Rpc {
            action: action.into(),
            status: Box::new(status),
        }
    }

    /// Wraps an invalid id or value in a service's response.
    pub fn from_directory(error: ValidationError) -> Self {
        Self::Protocol(error.to_string())
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Tells whether a rejected call's message or field violations name
    /// `field`.
    pub fn names_field(&self, field: &str) -> bool {
        let Self::Rpc { status, .. } = self else {
            return false;
        };
        status.message().contains(field)
            || status.get_details_bad_request().is_some_and(|bad_request| {
                bad_request
                    .field_violations
                    .iter()
                    .any(|violation| violation.field.contains(field))
            })
    }

    /// Returns the gRPC status code when the error is a rejected call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

/// How many file errors are printed before the rest are only counted.
const MAX_PRINTED_ERRORS: usize = 50;

fn render_diagnostics(diagnostics: &Diagnostics) -> String {
    let mut text = String::new();
    let count = diagnostics.errors.len();
    for error in diagnostics.errors.iter().take(MAX_PRINTED_ERRORS) {
        text.push_str(&format!("{error}\n"));
    }
    if count > MAX_PRINTED_ERRORS {
        text.push_str(&format!(
            "... and {} more errors\n",
            count - MAX_PRINTED_ERRORS
        ));
    }
    let noun = if count == 1 { "error" } else { "errors" };
    text.push_str(&format!("{count} {noun} found; nothing was applied"));
    text
}

/// Formats the status message with the field violations and failed
/// preconditions the service attached.
pub fn render_status(status: &tonic::Status) -> String {
    let mut text = format!("{} ({})", status.message(), code_name(status.code()));
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.field, violation.description
            ));
        }
    }
    if let Some(precondition) = status.get_details_precondition_failure() {
        for violation in precondition.violations {
            text.push_str(&format!(
                "\n  {}: {}",
                violation.subject, violation.description
            ));
        }
    }
    if status.code() == tonic::Code::Unauthenticated {
        text.push_str(UNAUTHENTICATED_HINT);
    }
    text
}

/// The sources of a command's tokens, shown with every rejected token
/// because the server's message speaks of gRPC metadata.
const UNAUTHENTICATED_HINT: &str = "\n  hint: directory calls send the token from --token-file, \
     WORKTEAMS_TOKEN, or the development token `workteams up` keeps in the data folder; \
     sidecar calls send the one from --authz-token-file. Check also that --directory and \
     --authz name the services the token was made for.";

fn code_name(code: tonic::Code) -> impl fmt::Display {
    match code {
        tonic::Code::Ok => "ok",
        tonic::Code::Cancelled => "cancelled",
        tonic::Code::Unknown => "unknown error",
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::DeadlineExceeded => "timed out",
        tonic::Code::NotFound => "not found",
        tonic::Code::AlreadyExists => "already exists",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::ResourceExhausted => "resource exhausted",
        tonic::Code::FailedPrecondition => "failed precondition",
        tonic::Code::Aborted => "aborted",
        tonic::Code::OutOfRange => "out of range",
        tonic::Code::Unimplemented => "not implemented",
        tonic::Code::Internal => "internal error",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DataLoss => "data loss",
        tonic::Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_status_names_token_sources() {
        let status = tonic::Status::unauthenticated("the token has expired");

        let text = render_status(&status);

        assert!(text.starts_with("the token has expired (unauthenticated)"), "{text}");
        assert!(text.contains("--token-file"), "{text}");
        assert!(text.contains("--authz-token-file"), "{text}");
    }

    #[test]
    fn other_status_has_no_token_hint() {
        let status = tonic::Status::permission_denied("not an administrator");

        let text = render_status(&status);

        assert!(!text.contains("hint:"), "{text}");
    }
}
