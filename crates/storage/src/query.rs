//! Filters of the list operations, and the composite records that reads
//! return.

use serde::{Deserialize, Serialize};
use workteams_domain::{
    Invitation, InvitationState, Member, Membership, OrganizationId, ResourceId, Subject, Team,
    TeamId, User, UserId,
};

/// Which teams of an organization to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamFilter {
    pub organization_id: OrganizationId,
    /// Only the direct children of this team.
    pub parent_team_id: Option<TeamId>,
}

/// Which memberships of a team to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMembersQuery {
    pub team_id: TeamId,
    /// Also the members of every descendant team, each with the team they
    /// are a direct member of.
    pub include_descendants: bool,
    /// Also memberships whose expiry has passed.
    pub include_expired: bool,
}

/// Which teams of a user to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTeamsQuery {
    pub user_id: UserId,
    pub organization_id: Option<OrganizationId>,
    pub include_expired: bool,
}

/// Which resources of an organization to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFilter {
    pub organization_id: OrganizationId,
    pub resource_type: Option<String>,
    /// Only the direct children of this resource.
    pub parent_resource_id: Option<ResourceId>,
}

/// Which grants of an organization to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFilter {
    pub organization_id: OrganizationId,
    pub resource_id: Option<ResourceId>,
    pub subject: Option<Subject>,
}

/// Which invitations of an organization to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationFilter {
    pub organization_id: OrganizationId,
    /// Filters on the state as of now: `Pending` excludes invitations past
    /// their expiry and `Expired` lists exactly those.
    pub state: Option<InvitationState>,
}

/// An organization member with their user record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberWithUser {
    pub member: Member,
    pub user: User,
}

/// One membership in a team listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMemberEntry {
    pub membership: Membership,
    pub user: User,
    /// With `include_descendants`, the descendant team the user is a direct
    /// member of; `None` for direct members of the listed team.
    pub via_team_id: Option<TeamId>,
}

/// One team of a user, with the user's membership in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTeamEntry {
    pub team: Team,
    pub membership: Membership,
}

/// How many grants a batch set or changed, and how many it removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantBatchOutcome {
    pub set_count: usize,
    pub revoked_count: usize,
}

/// An accepted invitation and the member it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedInvitation {
    pub invitation: Invitation,
    pub member: MemberWithUser,
}
