//! Changes as the change log records them and followers apply them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{InvitationId, OrganizationId, ResourceId, TeamId, UserId};
use crate::model::{GrantKey, Invitation, Grant, Member, Membership, Organization, Resource, Team, User};
use crate::resource_type::ResourceTypeDef;
use crate::token::Revision;

/// One entity as it is after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Organization(Organization),
    User(User),
    Member(Member),
    Team(Team),
    Membership(Membership),
    Resource(Resource),
    Grant(Grant),
    Invitation(Invitation),
    ResourceType(ResourceTypeDef),
}

impl Entity {
    /// The organization the entity belongs to; `None` for users and types.
    pub fn organization_id(&self) -> Option<OrganizationId> {
        match self {
            Self::Organization(organization) => Some(organization.id),
            Self::User(_) | Self::ResourceType(_) => None,
            Self::Member(member) => Some(member.organization_id),
            Self::Team(team) => Some(team.organization_id),
            Self::Membership(membership) => Some(membership.organization_id),
            Self::Resource(resource) => Some(resource.organization_id),
            Self::Grant(grant) => Some(grant.organization_id),
            Self::Invitation(invitation) => Some(invitation.organization_id),
        }
    }

    pub fn key(&self) -> EntityKey {
        match self {
            Self::Organization(organization) => EntityKey::Organization(organization.id),
            Self::User(user) => EntityKey::User(user.id),
            Self::Member(member) => EntityKey::Member {
                organization_id: member.organization_id,
                user_id: member.user_id,
            },
            Self::Team(team) => EntityKey::Team(team.id),
            Self::Membership(membership) => EntityKey::Membership {
                team_id: membership.team_id,
                user_id: membership.user_id,
            },
            Self::Resource(resource) => EntityKey::Resource(resource.id),
            Self::Grant(grant) => EntityKey::Grant(grant.key()),
            Self::Invitation(invitation) => EntityKey::Invitation(invitation.id),
            Self::ResourceType(definition) => EntityKey::ResourceType(definition.name.clone()),
        }
    }
}

/// Identifies a deleted entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKey {
    Organization(OrganizationId),
    User(UserId),
    Member {
        organization_id: OrganizationId,
        user_id: UserId,
    },
    Team(TeamId),
    Membership {
        team_id: TeamId,
        user_id: UserId,
    },
    Resource(ResourceId),
    Grant(GrantKey),
    Invitation(InvitationId),
    ResourceType(String),
}

/// One change inside a committed transaction. A transaction that removes an
/// entity also lists every row that went with it (a removed team's
/// memberships and grants, for example), so followers need no cascade rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Upserted(Entity),
    Deleted {
        key: EntityKey,
        /// `None` for users and types.
        organization_id: Option<OrganizationId>,
    },
}

impl Change {
    pub fn organization_id(&self) -> Option<OrganizationId> {
        match self {
            Self::Upserted(entity) => entity.organization_id(),
            Self::Deleted { organization_id, .. } => *organization_id,
        }
    }
}

/// All changes of one committed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    pub revision: Revision,
    pub changes: Vec<Change>,
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    pub commit_time: DateTime<Utc>,
}
