//! The entities of the directory.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{InvitationId, OrganizationId, ResourceId, TeamId, UserId};

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// Legal representative of the organization.
    Owner,
    Administrator,
    Collaborator,
    /// An invited person from outside the organization.
    External,
}

impl MemberRole {
    /// Owners, administrators and collaborators; not external members.
    pub const fn is_internal(self) -> bool {
        !matches!(self, Self::External)
    }

    pub const fn is_administrator(self) -> bool {
        matches!(self, Self::Owner | Self::Administrator)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Administrator => "administrator",
            Self::Collaborator => "collaborator",
            Self::External => "external",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    /// Keeps their data but receives no access.
    Suspended,
}

impl MemberStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// Default access on every resource of one cumulative, ordered type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTypeDefault {
    pub resource_type: String,
    /// Level every internal member holds; `None` means no base level.
    pub base_level: Option<String>,
    /// Whether owners and administrators hold the type's highest level.
    pub administrators_get_highest_level: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationSettings {
    /// Whether team leaders may add and remove members of their teams.
    pub leaders_manage_members: bool,
    pub resource_type_defaults: Vec<ResourceTypeDefault>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub display_name: String,
    pub settings: OrganizationSettings,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Incremented on every change; the etag is derived from it.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// Stored as first given; unique ignoring case.
    pub login: String,
    /// Stored as given; unique ignoring case when present.
    pub email: Option<String>,
    pub display_name: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

/// A user's membership of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub role: MemberRole,
    pub status: MemberStatus,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub description: String,
    /// A CSS hex color, or empty.
    pub color: String,
    pub parent_team_id: Option<TeamId>,
    /// Sorted, without duplicates. Every leader is a member of the team.
    pub leader_user_ids: Vec<UserId>,
    /// The organization role (administrator or collaborator, never owner or
    /// external) that every active member of the team and of its descendant
    /// teams holds through an unexpired membership; `None` for none.
    #[serde(default)]
    pub organization_role: Option<MemberRole>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

/// A user's direct membership of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub team_id: TeamId,
    pub user_id: UserId,
    /// Denormalized from the team, so followers can route the change.
    pub organization_id: OrganizationId,
    pub added_by: Option<UserId>,
    pub add_time: DateTime<Utc>,
    /// The membership grants nothing from this instant on.
    pub expire_time: Option<DateTime<Utc>>,
}

impl Membership {
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.expire_time.is_none_or(|expiry| now < expiry)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub id: ResourceId,
    pub organization_id: OrganizationId,
    pub resource_type: String,
    /// Stored as given; compared ignoring case for types that say so.
    pub external_id: String,
    pub display_name: String,
    pub parent_resource_id: Option<ResourceId>,
    /// False breaks inheritance: grants on ancestors do not reach it.
    pub inherits: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

/// Who a grant is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Team(TeamId),
    User(UserId),
}

/// Identifies a grant: one per subject and resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantKey {
    pub resource_id: ResourceId,
    pub subject: Subject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub resource_id: ResourceId,
    pub subject: Subject,
    /// Denormalized from the resource.
    pub organization_id: OrganizationId,
    /// For ordered types one level name, otherwise permission names.
    /// Empty exactly when `no_access` is set.
    pub permissions: Vec<String>,
    /// An explicit "no access"; only individual grants may carry it.
    pub no_access: bool,
    pub expire_time: Option<DateTime<Utc>>,
    pub granted_by: Option<UserId>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Grant {
    pub fn key(&self) -> GrantKey {
        GrantKey {
            resource_id: self.resource_id,
            subject: self.subject,
        }
    }

    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.expire_time.is_none_or(|expiry| now < expiry)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
    /// Derived on read: a pending invitation past its expiry.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: InvitationId,
    pub organization_id: OrganizationId,
    pub email: String,
    pub team_ids: Vec<TeamId>,
    /// The stored state; a pending invitation past `expire_time` reads as
    /// expired through [`Invitation::state_at`].
    pub state: InvitationState,
    pub invited_by: Option<UserId>,
    pub create_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
    pub accepted_user_id: Option<UserId>,
    pub accept_time: Option<DateTime<Utc>>,
}

impl Invitation {
    pub fn state_at(&self, now: DateTime<Utc>) -> InvitationState {
        if self.state == InvitationState::Pending && now >= self.expire_time {
            InvitationState::Expired
        } else {
            self.state
        }
    }
}
