//! The context of one RPC: who calls (actor), the request id echoed back to
//! the client, the W3C trace context, the idempotency key with its request
//! fingerprint, and the tracing span the call runs in.

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::metadata::{MetadataMap, MetadataValue};
use tracing::Span;
use workteams_domain::command::check_idempotency_key;
use workteams_domain::{Caller, UserId, ValidationError};
use workteams_storage::{IdempotencyKey, RequestContext};

/// Metadata key naming the user or service that makes the call. Only an
/// insecure directory (no authentication) records it; otherwise the
/// authenticated caller is the actor.
pub const ACTOR_METADATA: &str = "x-workteams-actor";
/// Metadata key of the request id, read from the request and always set on
/// the response (generated when the client sent none).
pub const REQUEST_ID_METADATA: &str = "x-request-id";
/// Metadata key of the W3C trace context.
pub const TRACEPARENT_METADATA: &str = "traceparent";

/// Full name of the directory service, the prefix of its method paths.
const SERVICE_NAME: &str = "workteams.directory.v1.DirectoryService";

/// Maximum length, in bytes, of an actor name.
const MAX_ACTOR_BYTES: usize = 256;
/// Maximum length, in bytes, of a client-chosen request id.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// The context of one call, built before its message is decoded.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The RPC method name without the service, such as `CreateTeam`.
    pub method: &'static str,
    /// Actor recorded for the call's changes: the authenticated caller's
    /// name, or the client's actor metadata without authentication.
    pub actor: Option<String>,
    /// The caller, as established by authentication.
    pub caller: Caller,
    pub request_id: String,
    pub traceparent: Option<String>,
    pub span: Span,
}

impl CallContext {
    /// Reads the call's metadata. A request id or actor that is not
    /// printable ASCII within its length limit is rejected. A malformed
    /// `traceparent` is ignored, as the W3C Trace Context specification
    /// requires of receivers.
    pub fn from_metadata(
        method: &'static str,
        metadata: &MetadataMap,
    ) -> Result<Self, ValidationError> {
        let request_id = match metadata_text(metadata, REQUEST_ID_METADATA, MAX_REQUEST_ID_BYTES)? {
            Some(request_id) => request_id,
            None => uuid::Uuid::now_v7().to_string(),
        };
        let actor = metadata_text(metadata, ACTOR_METADATA, MAX_ACTOR_BYTES)?;
        let traceparent = metadata
            .get(TRACEPARENT_METADATA)
            .and_then(|value| value.to_str().ok())
            .filter(|text| is_valid_traceparent(text))
            .map(str::to_owned);

        let span = tracing::info_span!(
            "rpc",
            method,
            request_id = %request_id,
            organization_id = tracing::field::Empty,
            team_id = tracing::field::Empty,
            resource_id = tracing::field::Empty,
            user_id = tracing::field::Empty,
            invitation_id = tracing::field::Empty,
        );

        Ok(Self {
            method,
            actor,
            caller: Caller::Unauthenticated,
            request_id,
            traceparent,
            span,
        })
    }

    /// Creates a context for a call whose metadata was unusable, so the error can
    /// still carry a request id.
    pub fn fallback(method: &'static str) -> Self {
        let request_id = uuid::Uuid::now_v7().to_string();
        let span = tracing::info_span!("rpc", method, request_id = %request_id);
        Self {
            method,
            actor: None,
            caller: Caller::Unauthenticated,
            request_id,
            traceparent: None,
            span,
        }
    }

    /// Returns the user who makes the call, when it is one: team memberships
    /// and grants record who added them. Without authentication the client's
    /// actor metadata is used when it is a user id.
    pub fn actor_user_id(&self) -> Option<UserId> {
        match &self.caller {
            Caller::User(user_id) => Some(*user_id),
            Caller::Service(_) => None,
            Caller::Unauthenticated => self
                .actor
                .as_deref()
                .and_then(|actor| UserId::parse(ACTOR_METADATA, actor).ok()),
        }
    }

    /// Records an entity id on the call's span.
    pub fn record(&self, field: &'static str, id: &dyn std::fmt::Display) {
        self.span.record(field, tracing::field::display(id));
    }

    /// Builds the metadata the store records with the call's writes.
    pub fn store_context(&self, idempotency: Option<IdempotencyKey>) -> RequestContext {
        RequestContext {
            actor: self.actor.clone(),
            request_id: Some(self.request_id.clone()),
            traceparent: self.traceparent.clone(),
            idempotency,
            method: Some(format!("/{SERVICE_NAME}/{}", self.method)),
        }
    }

    /// Sets the request id on outgoing metadata.
    pub fn echo_request_id(&self, metadata: &mut MetadataMap) {
        // The id was either generated (a UUID) or checked to be printable
        // ASCII, so it is always a valid metadata value.
        if let Ok(value) = MetadataValue::try_from(self.request_id.as_str()) {
            metadata.insert(REQUEST_ID_METADATA, value);
        }
    }

    /// Takes the idempotency key out of a request and fingerprints the rest.
    ///
    /// The fingerprint hashes the method name and the encoded request with
    /// its key field cleared, so a repetition matches only when every other
    /// field is equal. An empty key means the call is not idempotent.
    pub fn take_idempotency<R: HasIdempotencyKey>(
        &self,
        request: &mut R,
    ) -> Result<Option<IdempotencyKey>, ValidationError> {
        let key = std::mem::take(request.idempotency_key_mut());
        if key.is_empty() {
            return Ok(None);
        }
        check_idempotency_key("idempotency_key", &key)?;

        let mut hasher = Sha256::new();
        hasher.update(self.method.as_bytes());
        hasher.update([0_u8]);
        hasher.update(request.encode_to_vec());
        Ok(Some(IdempotencyKey {
            key,
            fingerprint: hasher.finalize().to_vec(),
        }))
    }
}

/// A request message with an `idempotency_key` field.
pub trait HasIdempotencyKey: Message {
    fn idempotency_key_mut(&mut self) -> &mut String;
}

macro_rules! has_idempotency_key {
    ($($request:ident),* $(,)?) => {
        $(impl HasIdempotencyKey for workteams_proto::directory::v1::$request {
            fn idempotency_key_mut(&mut self) -> &mut String {
                &mut self.idempotency_key
            }
        })*
    };
}

has_idempotency_key!(
    CreateOrganizationRequest,
    UpdateOrganizationRequest,
    CreateUserRequest,
    UpdateUserRequest,
    BatchCreateUsersRequest,
    AddOrganizationMemberRequest,
    UpdateOrganizationMemberRequest,
    RemoveOrganizationMemberRequest,
    BatchAddOrganizationMembersRequest,
    CreateTeamRequest,
    UpdateTeamRequest,
    DeleteTeamRequest,
    SetTeamLeadersRequest,
    SetTeamParentRequest,
    AddTeamMembersRequest,
    RemoveTeamMembersRequest,
    CreateResourceRequest,
    BatchCreateResourcesRequest,
    UpdateResourceRequest,
    DeleteResourceRequest,
    GrantAccessRequest,
    RevokeAccessRequest,
    BatchSetGrantsRequest,
    CreateInvitationRequest,
    AcceptInvitationRequest,
    RevokeInvitationRequest,
);

/// Reads an optional ASCII metadata value, rejecting control characters and
/// values over `max_bytes`.
fn metadata_text(
    metadata: &MetadataMap,
    key: &'static str,
    max_bytes: usize,
) -> Result<Option<String>, ValidationError> {
    let Some(value) = metadata.get(key) else {
        return Ok(None);
    };
    let field = format!("metadata {key}");
    let text = value
        .to_str()
        .map_err(|_| ValidationError::new(&field, "", "must be printable ASCII"))?;
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > max_bytes {
        return Err(ValidationError::new(
            &field,
            text,
            format!("is {} bytes long; the maximum is {max_bytes}", text.len()),
        ));
    }
    if !text
        .bytes()
        .all(|byte| byte.is_ascii_graphic() || byte == b' ')
    {
        return Err(ValidationError::new(
            &field,
            text,
            "must be printable ASCII",
        ));
    }
    Ok(Some(text.to_owned()))
}

/// Checks the W3C `traceparent` form `00-<32 hex>-<16 hex>-<2 hex>`, with
/// non-zero trace and parent ids. Later versions may append fields after the
/// flags, so only version 00 must end there.
fn is_valid_traceparent(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let is_lower_hex = |part: &str, length: usize| {
        part.len() == length
            && part
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    };
    let is_zero = |part: &str| part.bytes().all(|byte| byte == b'0');
    if parts.len() < 4 {
        return false;
    }
    let (version, trace_id, parent_id, flags) = (parts[0], parts[1], parts[2], parts[3]);
    let fields_valid = is_lower_hex(version, 2)
        && version != "ff"
        && is_lower_hex(trace_id, 32)
        && !is_zero(trace_id)
        && is_lower_hex(parent_id, 16)
        && !is_zero(parent_id)
        && is_lower_hex(flags, 2);
    let length_valid = if version == "00" {
        parts.len() == 4
    } else {
        true
    };
    fields_valid && length_valid
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use workteams_proto::directory::v1::CreateTeamRequest;

    const METHOD: &str = "workteams.directory.v1.DirectoryService/CreateTeam";

    fn metadata(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (key, value) in pairs {
            map.insert(*key, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn request_id_generated_when_missing() {
        let context = CallContext::from_metadata(METHOD, &MetadataMap::new()).unwrap();
        assert_eq!(context.request_id.len(), 36);
    }

    #[test]
    fn request_id_taken_from_metadata() {
        let context =
            CallContext::from_metadata(METHOD, &metadata(&[("x-request-id", "abc-1")])).unwrap();
        assert_eq!(context.request_id, "abc-1");
    }

    #[test]
    fn long_request_id_rejected() {
        let long = "x".repeat(200);
        let error =
            CallContext::from_metadata(METHOD, &metadata(&[("x-request-id", &long)])).unwrap_err();
        assert_eq!(error.field, "metadata x-request-id");
    }

    #[test]
    fn valid_traceparent_kept() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context =
            CallContext::from_metadata(METHOD, &metadata(&[("traceparent", traceparent)])).unwrap();
        assert_eq!(context.traceparent.as_deref(), Some(traceparent));
    }

    #[test]
    fn malformed_traceparent_ignored() {
        for traceparent in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let context =
                CallContext::from_metadata(METHOD, &metadata(&[("traceparent", traceparent)]))
                    .unwrap();
            assert_eq!(context.traceparent, None, "{traceparent}");
        }
    }

    #[test]
    fn fingerprint_ignores_key() {
        let context = CallContext::fallback(METHOD);
        let mut first = CreateTeamRequest {
            name: "docs".to_owned(),
            idempotency_key: "k1".to_owned(),
            ..Default::default()
        };
        let mut second = CreateTeamRequest {
            idempotency_key: "k2".to_owned(),
            ..first.clone()
        };
        let first_key = context.take_idempotency(&mut first).unwrap().unwrap();
        let second_key = context.take_idempotency(&mut second).unwrap().unwrap();
        assert_eq!(first_key.fingerprint, second_key.fingerprint);
        assert_eq!(first.idempotency_key, "");
    }

    #[test]
    fn fingerprint_differs_by_field() {
        let context = CallContext::fallback(METHOD);
        let mut first = CreateTeamRequest {
            name: "docs".to_owned(),
            idempotency_key: "k".to_owned(),
            ..Default::default()
        };
        let mut second = CreateTeamRequest {
            name: "blog".to_owned(),
            ..first.clone()
        };
        let first_key = context.take_idempotency(&mut first).unwrap().unwrap();
        let second_key = context.take_idempotency(&mut second).unwrap().unwrap();
        assert_ne!(first_key.fingerprint, second_key.fingerprint);
    }

    #[test]
    fn fingerprint_differs_by_method() {
        let create = CallContext::fallback(METHOD);
        let other = CallContext::fallback("workteams.directory.v1.DirectoryService/Other");
        let request = CreateTeamRequest {
            name: "docs".to_owned(),
            idempotency_key: "k".to_owned(),
            ..Default::default()
        };
        let first = create
            .take_idempotency(&mut request.clone())
            .unwrap()
            .unwrap();
        let second = other
            .take_idempotency(&mut request.clone())
            .unwrap()
            .unwrap();
        assert_ne!(first.fingerprint, second.fingerprint);
    }
}
