//! The storage layer's error type, and the one place where database errors
//! become domain errors.

use sea_orm::{DbErr, SqlErr};
use workteams_domain::{Revision, ValidationError};

/// Why a storage operation failed. On any error nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An input breaks a rule; maps to INVALID_ARGUMENT with a field
    /// violation.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// The entity the request names, or one it refers to, does not exist.
    #[error("{what} {value} not found ({field})")]
    NotFound {
        /// What was looked for, for example "team".
        what: &'static str,
        /// The request field that named it, for example `members[2].user_id`.
        field: String,
        value: String,
    },

    /// A unique key is already taken.
    #[error("{what} with {field} {value:?} already exists")]
    AlreadyExists {
        what: &'static str,
        field: String,
        value: String,
    },

    /// The request is well formed but the directory's state forbids it (a
    /// leader who is not a member, a parent cycle, an expired invitation...).
    #[error("{reason} ({field})")]
    FailedPrecondition { field: String, reason: String },

    /// The etag does not match the entity's current version.
    #[error("etag mismatch: the {what} changed since it was read (current etag {current_etag})")]
    Aborted {
        what: &'static str,
        current_etag: String,
    },

    /// The idempotency key was used before with a different request; maps
    /// to INVALID_ARGUMENT on field `idempotency_key`.
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyKeyReused { key: String },

    /// The change log no longer holds the revisions after the given token;
    /// the client must take a new snapshot.
    #[error(
        "the change log no longer contains the changes after this token; the oldest available \
         token is at revision {oldest_available}, take a new snapshot"
    )]
    ChangeLogTruncated {
        /// Changes after this revision are still available.
        oldest_available: Revision,
    },

    /// The token was issued by another directory database.
    #[error("the consistency token belongs to another directory installation")]
    TokenFromOtherInstallation,

    /// The token names a revision this database has not reached.
    #[error("the consistency token is at revision {requested}, ahead of the head revision {head}")]
    TokenAhead { requested: Revision, head: Revision },

    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] DbErr),

    /// A stored row that could not be decoded (a bug or a manual edit).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, field: impl Into<String>, value: impl ToString) -> Self {
        Self::NotFound {
            what,
            field: field.into(),
            value: value.to_string(),
        }
    }

    pub(crate) fn precondition(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(detail: impl ToString) -> Self {
        Self::Corrupt(detail.to_string())
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        map_db_error(error)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::corrupt(error)
    }
}

/// A unique index and the request field its key comes from.
struct UniqueKey {
    index: &'static str,
    what: &'static str,
    field: &'static str,
}

/// Unique indexes that requests can collide with. Validation reads these
/// keys before writing, so a violation here means a concurrent writer on
/// another replica took the key first; the error still names the field.
const UNIQUE_KEYS: &[UniqueKey] = &[
    UniqueKey { index: "organizations_name_key", what: "organization", field: "name" },
    UniqueKey { index: "users_login_key", what: "user", field: "login" },
    UniqueKey { index: "users_email_key", what: "user", field: "email" },
    UniqueKey { index: "teams_name_key", what: "team", field: "name" },
    UniqueKey { index: "resources_external_id_key", what: "resource", field: "external_id" },
];

/// Maps a database error to a domain error: unique-key violations become
/// [`StoreError::AlreadyExists`] on the field the key comes from, and
/// foreign-key violations become [`StoreError::FailedPrecondition`].
pub(crate) fn map_db_error(error: DbErr) -> StoreError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            let known = UNIQUE_KEYS.iter().find(|key| message.contains(key.index)).or_else(|| {
                // SQLite names the columns, not the index.
                UNIQUE_KEYS.iter().find(|key| message.contains(&sqlite_column_hint(key)))
            });
            match known {
                Some(key) => StoreError::AlreadyExists {
                    what: key.what,
                    field: key.field.to_owned(),
                    value: String::new(),
                },
                None => StoreError::Database(error),
            }
        }
        Some(SqlErr::ForeignKeyConstraintViolation(message)) => StoreError::FailedPrecondition {
            field: String::new(),
            reason: format!("a referenced entity was removed concurrently: {message}"),
        },
        _ => StoreError::Database(error),
    }
}

/// SQLite reports `UNIQUE constraint failed: teams.organization_id, teams.name_key`.
fn sqlite_column_hint(key: &UniqueKey) -> String {
    let table = key.index.split('_').next().unwrap_or_default();
    let column = match key.field {
        "name" => "name_key",
        "login" => "login_key",
        "email" => "email_key",
        _ => "external_id_key",
    };
    format!("{table}.{column}")
}
