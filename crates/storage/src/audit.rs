//! Audit events: one per entity that a write changed, with who made the
//! change, when, through which request, and the entity's state before and
//! after it.

use chrono::{DateTime, Utc};
use workteams_domain::{Entity, EntityKey, OrganizationId, Revision, Subject};

/// The kind of an audited entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Organization,
    User,
    Member,
    Team,
    Membership,
    Resource,
    Grant,
    Invitation,
    ResourceType,
}

impl EntityKind {
    pub const ALL: [Self; 9] = [
        Self::Organization,
        Self::User,
        Self::Member,
        Self::Team,
        Self::Membership,
        Self::Resource,
        Self::Grant,
        Self::Invitation,
        Self::ResourceType,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Organization => "organization",
            Self::User => "user",
            Self::Member => "member",
            Self::Team => "team",
            Self::Membership => "membership",
            Self::Resource => "resource",
            Self::Grant => "grant",
            Self::Invitation => "invitation",
            Self::ResourceType => "resource_type",
        }
    }

    /// Parses the text of [`EntityKind::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn of_key(key: &EntityKey) -> Self {
        match key {
            EntityKey::Organization(_) => Self::Organization,
            EntityKey::User(_) => Self::User,
            EntityKey::Member { .. } => Self::Member,
            EntityKey::Team(_) => Self::Team,
            EntityKey::Membership { .. } => Self::Membership,
            EntityKey::Resource(_) => Self::Resource,
            EntityKey::Grant(_) => Self::Grant,
            EntityKey::Invitation(_) => Self::Invitation,
            EntityKey::ResourceType(_) => Self::ResourceType,
        }
    }
}

/// Formats the entity id that audit events record and
/// [`AuditFilter::entity_id`] matches: the entity's own id, the user id of a
/// member (the organization is the event's), `<team_id>/<user_id>` for a
/// team membership,
/// `<resource_id>/team:<team_id>` or `<resource_id>/user:<user_id>` for a
/// grant, and the name of a resource type.
pub fn audit_entity_id(key: &EntityKey) -> String {
    match key {
        EntityKey::Organization(id) => id.to_string(),
        EntityKey::User(id) => id.to_string(),
        EntityKey::Member { user_id, .. } => user_id.to_string(),
        EntityKey::Team(id) => id.to_string(),
        EntityKey::Membership { team_id, user_id } => format!("{team_id}/{user_id}"),
        EntityKey::Resource(id) => id.to_string(),
        EntityKey::Grant(grant) => match grant.subject {
            Subject::Team(team_id) => format!("{}/team:{team_id}", grant.resource_id),
            Subject::User(user_id) => format!("{}/user:{user_id}", grant.resource_id),
        },
        EntityKey::Invitation(id) => id.to_string(),
        EntityKey::ResourceType(name) => name.clone(),
    }
}

/// The order of an audit listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A filter on an organization's audit events. `None` fields match every
/// event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    pub organization_id: OrganizationId,
    /// The actor exactly as the request context gave it.
    pub actor: Option<String>,
    pub entity_kind: Option<EntityKind>,
    /// An id in the form of [`audit_entity_id`].
    pub entity_id: Option<String>,
    /// Events at or after this time.
    pub start_time: Option<DateTime<Utc>>,
    /// Events before this time.
    pub end_time: Option<DateTime<Utc>>,
    /// The RPC method exactly as the request context gave it.
    pub method: Option<String>,
    pub order: AuditOrder,
}

impl AuditFilter {
    /// Selects every event of the organization, newest first.
    pub fn organization(organization_id: OrganizationId) -> Self {
        Self {
            organization_id,
            actor: None,
            entity_kind: None,
            entity_id: None,
            start_time: None,
            end_time: None,
            method: None,
            order: AuditOrder::NewestFirst,
        }
    }
}

/// One changed entity of one committed write.
///
/// A write that changes an entity twice (a team whose leaders and parent
/// both change, for example) yields one event with the state before the
/// first change and after the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// The change-log revision of the write.
    pub revision: Revision,
    /// The event's place among the write's events, from 0.
    pub position: i32,
    /// The entity's organization. A user changed by a request on exactly
    /// one organization (accepting an invitation, for example) is recorded
    /// under it. Other user changes and resource type changes belong to
    /// none.
    pub organization_id: Option<OrganizationId>,
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    /// The RPC method from the request context.
    pub method: Option<String>,
    /// The store operation that made the change, for example `create_team`.
    pub operation: String,
    /// The time of the write, the commit time of its change-log batch.
    pub time: DateTime<Utc>,
    pub entity_kind: EntityKind,
    pub entity_key: EntityKey,
    /// `None` when the write created the entity.
    pub before: Option<Entity>,
    /// `None` when the write removed the entity.
    pub after: Option<Entity>,
}
