//! The results of access evaluation: effective permissions, the reasons
//! behind them, and listing entries.

use std::sync::Arc;

use workteams_domain::{
    MemberRole, MemberStatus, OrganizationId, PermissionSet, ResourceId, ResourceTypeDef, TeamId,
    UserId,
};

/// What kind of rule contributed to a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonKind {
    /// A grant to the user.
    IndividualGrant,
    /// A grant to a team the user is in, directly or through a child team.
    TeamGrant,
    /// The organization's base level for internal members.
    OrganizationBaseLevel,
    /// The highest level the organization gives owners and administrators.
    OrganizationAdministrator,
}

/// One grant or organization rule that contributed to a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub kind: ReasonKind,
    /// The resource the grant is on: the evaluated resource or one of its
    /// ancestors. For organization rules, the evaluated resource.
    pub resource_id: ResourceId,
    /// For team grants: the team the grant is given to.
    pub team_id: Option<TeamId>,
    /// For team grants: the team the user is a direct member of, which is the
    /// granted team or one of its descendants. When several direct teams
    /// reach the granted team, the granted team itself if the user is a
    /// direct member of it, otherwise the smallest team id.
    pub via_team_id: Option<TeamId>,
    /// What this reason contributes, implied lower levels included; empty for
    /// an explicit "no access" and for a grant whose permission names the
    /// type does not define.
    pub permissions: PermissionSet,
    pub no_access: bool,
}

/// Why a user holds nothing, or not the permission asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No grant reaches the user.
    NoGrant,
    /// An individual grant ("no access" or a lower level) decided over team
    /// grants.
    IndividualOverride,
    /// Grants reach the user but none includes the permission.
    PermissionNotHeld,
    /// The user is not an active member of the resource's organization.
    NotActiveMember,
    UnknownUser,
    /// The resource does not exist, or its type is not defined.
    UnknownResource,
}

/// The outcome of evaluating one user on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Every permission held, implied lower levels included.
    pub permissions: PermissionSet,
    /// The resource's type; `None` when the resource or its type is unknown.
    pub resource_type: Option<Arc<ResourceTypeDef>>,
    /// The grants and rules that decided, nearest resource first; within one
    /// resource the individual grant first, then team grants by team id, then
    /// the organization rules.
    pub reasons: Vec<Reason>,
    /// The permissions that team grants on the path would have given but an
    /// individual grant overrode (individual-precedence types only).
    pub overridden: PermissionSet,
    /// Why nothing is held; `None` when `permissions` is not empty.
    pub deny_reason: Option<DenyReason>,
}

impl Evaluation {
    /// Whether the permission with this index (in the type's list) is held.
    pub fn allows(&self, permission_index: usize) -> bool {
        self.permissions.contains(permission_index)
    }

    /// Why the permission with this index is not held; `None` when it is.
    pub fn deny_reason_for(&self, permission_index: usize) -> Option<DenyReason> {
        if self.allows(permission_index) {
            return None;
        }
        if let Some(reason) = self.deny_reason {
            return Some(reason);
        }
        if self.overridden.contains(permission_index) {
            Some(DenyReason::IndividualOverride)
        } else {
            Some(DenyReason::PermissionNotHeld)
        }
    }

    /// The highest level held, for types with ordered levels.
    pub fn level(&self) -> Option<&str> {
        self.resource_type
            .as_ref()
            .and_then(|definition| definition.level_name(self.permissions))
    }

    /// Names of the permissions held, lowest first.
    pub fn permission_names(&self) -> Vec<&str> {
        self.resource_type
            .as_ref()
            .map(|definition| definition.permission_names(self.permissions))
            .unwrap_or_default()
    }
}

/// One (user, resource) pair with at least one permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub user_id: UserId,
    pub resource_id: ResourceId,
    pub organization_id: OrganizationId,
    /// Never empty in a listing, so `deny_reason` is `None`.
    pub evaluation: Evaluation,
}

/// A window of a listing: at most `size` entries whose listed id (the
/// resource's for a user's listing, the user's for a resource's) comes
/// after `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<Id> {
    pub after: Option<Id>,
    pub size: usize,
}

impl<Id> PageRequest<Id> {
    /// The whole listing in one page.
    pub const ALL: Self = Self {
        after: None,
        size: usize::MAX,
    };
}

/// One page of a listing, sorted by the listed id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPage {
    pub entries: Vec<AccessEntry>,
    /// Whether entries follow this page.
    pub more: bool,
}

/// Optional restrictions of [`Index::list_user_access`](crate::Index::list_user_access).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFilter {
    pub organization: Option<OrganizationId>,
    pub resource_type: Option<String>,
}

/// Entity counts of an index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub organizations: usize,
    pub users: usize,
    /// Organization members.
    pub members: usize,
    pub teams: usize,
    /// Team memberships.
    pub memberships: usize,
    pub resources: usize,
    pub grants: usize,
    pub resource_types: usize,
}

/// An organization as the index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrganizationView<'a> {
    pub id: OrganizationId,
    pub name: &'a str,
}

/// A user as the index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserView<'a> {
    pub id: UserId,
    pub login: &'a str,
    pub email: Option<&'a str>,
}

/// A user's membership of an organization as the index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberView {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub role: MemberRole,
    pub status: MemberStatus,
}

/// A resource as the index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceView<'a> {
    pub id: ResourceId,
    pub organization_id: OrganizationId,
    pub resource_type: &'a str,
    /// `None` when the type is not defined (the resource then grants nothing).
    pub definition: Option<&'a Arc<ResourceTypeDef>>,
    pub external_id: &'a str,
    pub parent_resource_id: Option<ResourceId>,
    pub inherits: bool,
}
