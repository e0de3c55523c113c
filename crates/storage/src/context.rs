//! Who makes a write, how to recognize its repetition, and what it returns.

use serde::{Deserialize, Serialize};
use workteams_domain::ConsistencyToken;

/// Names a request so that a repetition returns the first result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The client's key, at most 128 characters.
    pub key: String,
    /// A hash of the request without its key, computed by the caller. A
    /// repetition with the same key but another fingerprint is rejected with
    /// [`StoreError::IdempotencyKeyReused`](crate::StoreError::IdempotencyKeyReused).
    pub fingerprint: Vec<u8>,
}

/// Request metadata that every write records in its change-log batch and
/// audit events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The user or service making the change; `None` for a system action.
    pub actor: Option<String>,
    pub request_id: Option<String>,
    /// W3C trace context of the request.
    pub traceparent: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
    /// The RPC method of the request, for example
    /// `/workteams.directory.v1.DirectoryService/CreateTeam`; `None` for a
    /// system action. Audit events record it and can be filtered by it.
    pub method: Option<String>,
}

impl RequestContext {
    /// A context for writes the system makes on its own (start-up, purges).
    pub fn system() -> Self {
        Self::default()
    }
}

/// The result of a write and the revision it created (or, for a write that
/// changed nothing, the head revision it saw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    pub value: T,
    pub token: ConsistencyToken,
}

/// The stored form of a write's result, for idempotent replays.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredResult<T> {
    pub value: T,
    pub revision: i64,
}
