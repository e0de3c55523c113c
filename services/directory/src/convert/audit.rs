//! Audit listing requests into store filters, and audit events into
//! messages.

use workteams_domain::ValidationError;
use workteams_proto::directory::v1 as proto;
use workteams_storage::{AuditEvent, AuditFilter, AuditOrder, EntityKind, PageRequest};

use super::entities::IntoProto;
use super::fields::{optional_text, optional_timestamp, required_id, timestamp_to_proto};
use super::{RequestFacts, TryIntoDomain};

impl TryIntoDomain for proto::ListAuditEventsRequest {
    type Domain = (AuditFilter, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(AuditFilter, PageRequest), ValidationError> {
        let Self {
            organization_id,
            actor,
            entity_kind,
            entity_id,
            start_time,
            end_time,
            method,
            oldest_first,
            page_size,
            page_token,
        } = self;

        // The store checks that end_time lies after start_time.
        let filter = AuditFilter {
            organization_id: required_id("organization_id", &organization_id)?,
            actor: optional_text(actor),
            entity_kind: optional_entity_kind("entity_kind", entity_kind)?,
            entity_id: optional_text(entity_id),
            start_time: optional_timestamp("start_time", start_time)?,
            end_time: optional_timestamp("end_time", end_time)?,
            method: optional_text(method),
            order: if oldest_first {
                AuditOrder::OldestFirst
            } else {
                AuditOrder::NewestFirst
            },
        };
        Ok((
            filter,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

/// Parses an entity kind filter; unspecified does not filter.
fn optional_entity_kind(field: &str, value: i32) -> Result<Option<EntityKind>, ValidationError> {
    let kind = proto::AuditEntityKind::try_from(value).map_err(|_| {
        ValidationError::new(field, value.to_string(), "not an audit entity kind")
    })?;
    Ok(match kind {
        proto::AuditEntityKind::Unspecified => None,
        proto::AuditEntityKind::Organization => Some(EntityKind::Organization),
        proto::AuditEntityKind::User => Some(EntityKind::User),
        proto::AuditEntityKind::Member => Some(EntityKind::Member),
        proto::AuditEntityKind::Team => Some(EntityKind::Team),
        proto::AuditEntityKind::Membership => Some(EntityKind::Membership),
        proto::AuditEntityKind::Resource => Some(EntityKind::Resource),
        proto::AuditEntityKind::Grant => Some(EntityKind::Grant),
        proto::AuditEntityKind::Invitation => Some(EntityKind::Invitation),
        proto::AuditEntityKind::ResourceType => Some(EntityKind::ResourceType),
    })
}

impl IntoProto for EntityKind {
    type Proto = proto::AuditEntityKind;

    fn into_proto(self) -> Self::Proto {
        match self {
            Self::Organization => proto::AuditEntityKind::Organization,
            Self::User => proto::AuditEntityKind::User,
            Self::Member => proto::AuditEntityKind::Member,
            Self::Team => proto::AuditEntityKind::Team,
            Self::Membership => proto::AuditEntityKind::Membership,
            Self::Resource => proto::AuditEntityKind::Resource,
            Self::Grant => proto::AuditEntityKind::Grant,
            Self::Invitation => proto::AuditEntityKind::Invitation,
            Self::ResourceType => proto::AuditEntityKind::ResourceType,
        }
    }
}

impl IntoProto for AuditEvent {
    type Proto = proto::AuditEvent;

    fn into_proto(self) -> Self::Proto {
        let Self {
            revision,
            position,
            organization_id,
            actor,
            request_id,
            traceparent,
            method,
            // The contract carries the RPC method, so the store's operation
            // name stays internal.
            operation: _,
            time,
            entity_kind,
            entity_key,
            before,
            after,
        } = self;
        proto::AuditEvent {
            revision: revision.0,
            position,
            organization_id: organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            actor: actor.unwrap_or_default(),
            request_id: request_id.unwrap_or_default(),
            traceparent: traceparent.unwrap_or_default(),
            method: method.unwrap_or_default(),
            time: Some(timestamp_to_proto(time)),
            entity_kind: entity_kind.into_proto().into(),
            entity_key: Some(entity_key.into_proto()),
            before: before.map(IntoProto::into_proto),
            after: after.map(IntoProto::into_proto),
        }
    }
}
