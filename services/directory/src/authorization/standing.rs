//! The caller's standing in one organization and the roles it may hand out.

use workteams_domain::{MemberRole, OrganizationId, Scope, UserId};

/// The caller's rights in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No authentication, or an `AdminAll` service account.
    Unrestricted,
    /// An owner, or an `AdminOrganization` service account.
    Owner,
    Administrator,
    /// A `ReadAll` or `ReadOrganization` service account.
    Reader,
    /// An active collaborator, by effective role.
    Collaborator(UserId),
    /// An active external member.
    External(UserId),
    /// Not a member, a suspended member, or a service account without a
    /// scope for the organization.
    Outsider,
}

impl Standing {
    pub fn can_manage(self) -> bool {
        matches!(self, Self::Unrestricted | Self::Owner | Self::Administrator)
    }

    /// Returns whether the caller reads everything in the organization.
    pub fn can_read(self) -> bool {
        self.can_manage() || self == Self::Reader
    }

    /// Returns the highest organization role the caller may hand out,
    /// directly or through a team: as a member role, a team role, or
    /// membership of a team that carries a role.
    pub fn grantable_role(self) -> Option<MemberRole> {
        match self {
            Self::Unrestricted | Self::Owner => Some(MemberRole::Owner),
            Self::Administrator => Some(MemberRole::Administrator),
            Self::Reader | Self::Collaborator(_) | Self::External(_) | Self::Outsider => None,
        }
    }

    pub(super) fn member_user_id(self) -> Option<UserId> {
        match self {
            Self::Collaborator(user_id) | Self::External(user_id) => Some(user_id),
            _ => None,
        }
    }
}

/// Ranks roles by what they allow, external lowest.
pub(super) fn rank(role: MemberRole) -> u8 {
    match role {
        MemberRole::External => 0,
        MemberRole::Collaborator => 1,
        MemberRole::Administrator => 2,
        MemberRole::Owner => 3,
    }
}

/// Returns whether a caller who may hand out `grantable` may hand out `role`.
pub(super) fn may_hand_out(grantable: Option<MemberRole>, role: MemberRole) -> bool {
    grantable.is_some_and(|grantable| rank(role) <= rank(grantable))
}

/// Returns the standing a service account's scopes give in one
/// organization, which is the highest any scope gives.
pub(super) fn service_standing(scopes: &[Scope], organization_id: OrganizationId) -> Standing {
    let mut standing = Standing::Outsider;
    for scope in scopes {
        match scope {
            Scope::AdminAll => return Standing::Unrestricted,
            Scope::AdminOrganization(id) if *id == organization_id => standing = Standing::Owner,
            Scope::ReadAll => {
                if standing == Standing::Outsider {
                    standing = Standing::Reader;
                }
            }
            Scope::ReadOrganization(id)
                if *id == organization_id && standing == Standing::Outsider =>
            {
                standing = Standing::Reader;
            }
            Scope::AdminOrganization(_) | Scope::ReadOrganization(_) => {}
        }
    }
    standing
}
