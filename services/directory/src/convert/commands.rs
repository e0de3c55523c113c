//! Mutation requests into validated domain commands.
//!
//! Every conversion destructures its request completely, so a field added to
//! the contract fails the build here until it is handled. List lengths are
//! checked before the items are parsed, so an oversized batch is rejected
//! with its limit rather than with an error in item 5,000. Each command is
//! validated before it is returned; the store validates it again.

use chrono::{DateTime, Utc};
use workteams_domain::command::{
    AcceptInvitation, AddTeamMembers, BatchAddMembers, BatchCreateResources, BatchCreateUsers,
    BatchSetGrants, Etag, GrantChange, GrantSpec, MAX_BATCH_ITEMS, MAX_GRANT_CHANGES,
    MAX_INVITATION_TEAMS, MemberSpec, MemberUpdate, NewInvitation, NewMember, NewOrganization,
    NewResource, NewTeam, NewTeamGrant, NewTeamMember, NewUser, OrganizationUpdate,
    RemoveTeamMembers, ResourceParent, ResourceUpdate, SetTeamLeaders, SetTeamParent, SetTeamRole,
    TeamUpdate,
    UserUpdate,
};
use workteams_domain::{
    InvitationId, MemberStatus, OrganizationId, OrganizationSettings, ResourceId,
    ResourceTypeDefault, Subject, TeamId, UserId, ValidationError,
};
use workteams_proto::directory::v1 as proto;

use super::fields::{
    check_list_length, id_list, optional_future_time, optional_id, optional_role, optional_text,
    required_id, required_role, required_status, required_subject, status_or, update_mask,
};
use super::{RequestFacts, TryIntoDomain};
use crate::context::HasIdempotencyKey;

/// An entity to delete, with the etag it must still have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion<Id> {
    pub id: Id,
    pub etag: Option<Etag>,
}

/// A member to remove from an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRemoval {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
}

/// A resource to create in an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceCreation {
    pub organization_id: OrganizationId,
    pub resource: NewResource,
}

/// A grant to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRevocation {
    pub resource_id: ResourceId,
    pub subject: Subject,
}

fn settings_from_proto(settings: Option<proto::OrganizationSettings>) -> OrganizationSettings {
    let Some(proto::OrganizationSettings {
        leaders_manage_members,
        resource_type_defaults,
    }) = settings
    else {
        return OrganizationSettings::default();
    };
    OrganizationSettings {
        leaders_manage_members,
        resource_type_defaults: resource_type_defaults
            .into_iter()
            .map(|default| {
                let proto::ResourceTypeDefault {
                    resource_type,
                    base_level,
                    administrators_get_highest_level,
                } = default;
                ResourceTypeDefault {
                    resource_type,
                    base_level: optional_text(base_level),
                    administrators_get_highest_level,
                }
            })
            .collect(),
    }
}

impl TryIntoDomain for proto::CreateOrganizationRequest {
    type Domain = NewOrganization;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<NewOrganization, ValidationError> {
        let Self {
            name,
            display_name,
            settings,
            owner_user_id,
            idempotency_key: _,
        } = self;

        let command = NewOrganization {
            name,
            display_name,
            settings: settings_from_proto(settings),
            owner_user_id: optional_id("owner_user_id", &owner_user_id)?,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::UpdateOrganizationRequest {
    type Domain = OrganizationUpdate;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<OrganizationUpdate, ValidationError> {
        let Self {
            id,
            update_mask: mask,
            display_name,
            settings,
            etag,
            idempotency_key: _,
        } = self;

        let id = required_id("id", &id)?;
        let paths = update_mask("update_mask", mask, &["display_name", "settings"])?;
        let command = OrganizationUpdate {
            id,
            display_name: paths.contains("display_name").then_some(display_name),
            settings: paths
                .contains("settings")
                .then(|| settings_from_proto(settings)),
            etag: Etag::parse("etag", &etag)?,
        };
        command.validate()?;
        Ok(command)
    }
}

fn new_user_from_proto(login: String, email: String, display_name: String) -> NewUser {
    NewUser {
        login,
        email: optional_text(email),
        display_name,
    }
}

impl TryIntoDomain for proto::CreateUserRequest {
    type Domain = NewUser;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<NewUser, ValidationError> {
        let Self {
            login,
            email,
            display_name,
            idempotency_key: _,
        } = self;

        let command = new_user_from_proto(login, email, display_name);
        command.validate("")?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::UpdateUserRequest {
    type Domain = UserUpdate;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<UserUpdate, ValidationError> {
        let Self {
            id,
            update_mask: mask,
            login,
            email,
            display_name,
            etag,
            idempotency_key: _,
        } = self;

        let id = required_id("id", &id)?;
        let paths = update_mask("update_mask", mask, &["login", "email", "display_name"])?;
        let command = UserUpdate {
            id,
            login: paths.contains("login").then_some(login),
            email: paths.contains("email").then(|| optional_text(email)),
            display_name: paths.contains("display_name").then_some(display_name),
            etag: Etag::parse("etag", &etag)?,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::BatchCreateUsersRequest {
    type Domain = BatchCreateUsers;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<BatchCreateUsers, ValidationError> {
        let Self {
            users,
            idempotency_key: _,
        } = self;

        check_list_length("users", users.len(), MAX_BATCH_ITEMS)?;
        let users = users
            .into_iter()
            .map(|user| {
                let proto::NewUser {
                    login,
                    email,
                    display_name,
                } = user;
                new_user_from_proto(login, email, display_name)
            })
            .collect();
        let command = BatchCreateUsers { users };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::AddOrganizationMemberRequest {
    type Domain = NewMember;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<NewMember, ValidationError> {
        let Self {
            organization_id,
            user_id,
            role,
            status,
            idempotency_key: _,
        } = self;

        Ok(NewMember {
            organization_id: required_id("organization_id", &organization_id)?,
            member: MemberSpec {
                user_id: required_id("user_id", &user_id)?,
                role: required_role("role", role)?,
                status: status_or("status", status, MemberStatus::Active)?,
            },
        })
    }
}

impl TryIntoDomain for proto::BatchAddOrganizationMembersRequest {
    type Domain = BatchAddMembers;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<BatchAddMembers, ValidationError> {
        let Self {
            organization_id,
            members,
            idempotency_key: _,
        } = self;

        let organization_id = required_id("organization_id", &organization_id)?;
        check_list_length("members", members.len(), MAX_BATCH_ITEMS)?;
        let members = members
            .into_iter()
            .enumerate()
            .map(|(index, member)| {
                let proto::NewOrganizationMember {
                    user_id,
                    role,
                    status,
                } = member;
                let prefix = format!("members[{index}]");
                Ok(MemberSpec {
                    user_id: required_id(&format!("{prefix}.user_id"), &user_id)?,
                    role: required_role(&format!("{prefix}.role"), role)?,
                    status: status_or(&format!("{prefix}.status"), status, MemberStatus::Active)?,
                })
            })
            .collect::<Result<Vec<_>, ValidationError>>()?;
        let command = BatchAddMembers {
            organization_id,
            members,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::UpdateOrganizationMemberRequest {
    type Domain = MemberUpdate;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<MemberUpdate, ValidationError> {
        let Self {
            organization_id,
            user_id,
            update_mask: mask,
            role,
            status,
            etag,
            idempotency_key: _,
        } = self;

        let organization_id = required_id("organization_id", &organization_id)?;
        let user_id = required_id("user_id", &user_id)?;
        let paths = update_mask("update_mask", mask, &["role", "status"])?;
        let role = if paths.contains("role") {
            Some(required_role("role", role)?)
        } else {
            None
        };
        let status = if paths.contains("status") {
            Some(required_status("status", status)?)
        } else {
            None
        };
        Ok(MemberUpdate {
            organization_id,
            user_id,
            role,
            status,
            etag: Etag::parse("etag", &etag)?,
        })
    }
}

impl TryIntoDomain for proto::RemoveOrganizationMemberRequest {
    type Domain = MemberRemoval;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<MemberRemoval, ValidationError> {
        let Self {
            organization_id,
            user_id,
            idempotency_key: _,
        } = self;

        Ok(MemberRemoval {
            organization_id: required_id("organization_id", &organization_id)?,
            user_id: required_id("user_id", &user_id)?,
        })
    }
}

fn team_members_from_proto(
    field: &str,
    members: Vec<proto::NewTeamMember>,
    now: DateTime<Utc>,
) -> Result<Vec<NewTeamMember>, ValidationError> {
    check_list_length(field, members.len(), MAX_BATCH_ITEMS)?;
    members
        .into_iter()
        .enumerate()
        .map(|(index, member)| {
            let proto::NewTeamMember {
                user_id,
                expire_time,
            } = member;
            let prefix = format!("{field}[{index}]");
            Ok(NewTeamMember {
                user_id: required_id(&format!("{prefix}.user_id"), &user_id)?,
                expire_time: optional_future_time(
                    &format!("{prefix}.expire_time"),
                    expire_time,
                    now,
                )?,
            })
        })
        .collect()
}

impl TryIntoDomain for proto::CreateTeamRequest {
    type Domain = NewTeam;

    fn try_into_domain(self, facts: &RequestFacts) -> Result<NewTeam, ValidationError> {
        let Self {
            organization_id,
            name,
            description,
            color,
            parent_team_id,
            members,
            leader_user_ids,
            grants,
            idempotency_key: _,
        } = self;

        let organization_id = required_id("organization_id", &organization_id)?;
        let parent_team_id = optional_id("parent_team_id", &parent_team_id)?;
        let members = team_members_from_proto("members", members, facts.now)?;
        check_list_length("leader_user_ids", leader_user_ids.len(), MAX_BATCH_ITEMS)?;
        let leader_user_ids = id_list("leader_user_ids", &leader_user_ids)?;
        check_list_length("grants", grants.len(), MAX_BATCH_ITEMS)?;
        let grants = grants
            .into_iter()
            .enumerate()
            .map(|(index, grant)| {
                let proto::NewTeamGrant {
                    resource_id,
                    permissions,
                    expire_time,
                } = grant;
                let prefix = format!("grants[{index}]");
                Ok(NewTeamGrant {
                    resource_id: required_id(&format!("{prefix}.resource_id"), &resource_id)?,
                    permissions,
                    expire_time: optional_future_time(
                        &format!("{prefix}.expire_time"),
                        expire_time,
                        facts.now,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, ValidationError>>()?;

        let command = NewTeam {
            organization_id,
            name,
            description,
            color,
            parent_team_id,
            members,
            leader_user_ids,
            grants,
            added_by: facts.actor_user_id,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::UpdateTeamRequest {
    type Domain = TeamUpdate;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<TeamUpdate, ValidationError> {
        let Self {
            id,
            update_mask: mask,
            name,
            description,
            color,
            etag,
            idempotency_key: _,
        } = self;

        let id = required_id("id", &id)?;
        let paths = update_mask("update_mask", mask, &["name", "description", "color"])?;
        let command = TeamUpdate {
            id,
            name: paths.contains("name").then_some(name),
            description: paths.contains("description").then_some(description),
            color: paths.contains("color").then_some(color),
            etag: Etag::parse("etag", &etag)?,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::DeleteTeamRequest {
    type Domain = Deletion<TeamId>;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<Deletion<TeamId>, ValidationError> {
        let Self {
            id,
            etag,
            idempotency_key: _,
        } = self;

        Ok(Deletion {
            id: required_id("id", &id)?,
            etag: Etag::parse("etag", &etag)?,
        })
    }
}

impl TryIntoDomain for proto::SetTeamLeadersRequest {
    type Domain = SetTeamLeaders;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<SetTeamLeaders, ValidationError> {
        let Self {
            team_id,
            leader_user_ids,
            etag,
            idempotency_key: _,
        } = self;

        let team_id = required_id("team_id", &team_id)?;
        check_list_length("leader_user_ids", leader_user_ids.len(), MAX_BATCH_ITEMS)?;
        let command = SetTeamLeaders {
            team_id,
            leader_user_ids: id_list("leader_user_ids", &leader_user_ids)?,
            etag: Etag::parse("etag", &etag)?,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::SetTeamParentRequest {
    type Domain = SetTeamParent;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<SetTeamParent, ValidationError> {
        let Self {
            team_id,
            parent_team_id,
            etag,
            idempotency_key: _,
        } = self;

        Ok(SetTeamParent {
            team_id: required_id("team_id", &team_id)?,
            parent_team_id: optional_id("parent_team_id", &parent_team_id)?,
            etag: Etag::parse("etag", &etag)?,
        })
    }
}

impl TryIntoDomain for proto::SetTeamRoleRequest {
    type Domain = SetTeamRole;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<SetTeamRole, ValidationError> {
        let Self {
            team_id,
            role,
            etag,
            idempotency_key: _,
        } = self;

        let command = SetTeamRole {
            team_id: required_id("team_id", &team_id)?,
            role: optional_role("role", role)?,
            etag: Etag::parse("etag", &etag)?,
        };
        command.validate()?;
        Ok(command)
    }
}

// SetTeamRole takes an idempotency key like every other write.
impl HasIdempotencyKey for proto::SetTeamRoleRequest {
    fn idempotency_key_mut(&mut self) -> &mut String {
        &mut self.idempotency_key
    }
}

impl TryIntoDomain for proto::AddTeamMembersRequest {
    type Domain = AddTeamMembers;

    fn try_into_domain(self, facts: &RequestFacts) -> Result<AddTeamMembers, ValidationError> {
        let Self {
            team_id,
            members,
            idempotency_key: _,
        } = self;

        let command = AddTeamMembers {
            team_id: required_id("team_id", &team_id)?,
            members: team_members_from_proto("members", members, facts.now)?,
            added_by: facts.actor_user_id,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::RemoveTeamMembersRequest {
    type Domain = RemoveTeamMembers;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<RemoveTeamMembers, ValidationError> {
        let Self {
            team_id,
            user_ids,
            idempotency_key: _,
        } = self;

        let team_id = required_id("team_id", &team_id)?;
        check_list_length("user_ids", user_ids.len(), MAX_BATCH_ITEMS)?;
        let command = RemoveTeamMembers {
            team_id,
            user_ids: id_list("user_ids", &user_ids)?,
        };
        command.validate()?;
        Ok(command)
    }
}

fn new_resource_from_proto(
    prefix: &str,
    resource: proto::NewResource,
) -> Result<NewResource, ValidationError> {
    let proto::NewResource {
        resource_type,
        external_id,
        display_name,
        parent_resource_id,
        parent_external_id,
        inherits,
    } = resource;

    let parent = match (parent_resource_id.is_empty(), parent_external_id.is_empty()) {
        (true, true) => None,
        (false, true) => Some(ResourceParent::Id(required_id(
            &format!("{prefix}.parent_resource_id"),
            &parent_resource_id,
        )?)),
        (true, false) => Some(ResourceParent::ExternalId(parent_external_id)),
        (false, false) => {
            return Err(ValidationError::new(
                format!("{prefix}.parent_external_id"),
                parent_external_id,
                "set either parent_resource_id or parent_external_id, not both",
            ));
        }
    };
    let resource = NewResource {
        resource_type,
        external_id,
        display_name,
        parent,
        inherits: inherits.unwrap_or(true),
    };
    resource.validate(prefix)?;
    Ok(resource)
}

impl TryIntoDomain for proto::CreateResourceRequest {
    type Domain = ResourceCreation;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<ResourceCreation, ValidationError> {
        let Self {
            organization_id,
            resource,
            idempotency_key: _,
        } = self;

        let organization_id = required_id("organization_id", &organization_id)?;
        let resource = resource.ok_or_else(|| {
            ValidationError::new("resource", "", "the resource to create is required")
        })?;
        Ok(ResourceCreation {
            organization_id,
            resource: new_resource_from_proto("resource", resource)?,
        })
    }
}

impl TryIntoDomain for proto::BatchCreateResourcesRequest {
    type Domain = BatchCreateResources;

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<BatchCreateResources, ValidationError> {
        let Self {
            organization_id,
            resources,
            idempotency_key: _,
        } = self;

        let organization_id = required_id("organization_id", &organization_id)?;
        check_list_length("resources", resources.len(), MAX_BATCH_ITEMS)?;
        let resources = resources
            .into_iter()
            .enumerate()
            .map(|(index, resource)| {
                new_resource_from_proto(&format!("resources[{index}]"), resource)
            })
            .collect::<Result<Vec<_>, ValidationError>>()?;
        let command = BatchCreateResources {
            organization_id,
            resources,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::UpdateResourceRequest {
    type Domain = ResourceUpdate;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<ResourceUpdate, ValidationError> {
        let Self {
            id,
            update_mask: mask,
            display_name,
            parent_resource_id,
            inherits,
            external_id,
            etag,
            idempotency_key: _,
        } = self;

        let id = required_id("id", &id)?;
        let paths = update_mask(
            "update_mask",
            mask,
            &[
                "display_name",
                "parent_resource_id",
                "inherits",
                "external_id",
            ],
        )?;
        let parent_resource_id = if paths.contains("parent_resource_id") {
            Some(optional_id("parent_resource_id", &parent_resource_id)?)
        } else {
            None
        };
        let command = ResourceUpdate {
            id,
            display_name: paths.contains("display_name").then_some(display_name),
            external_id: paths.contains("external_id").then_some(external_id),
            parent_resource_id,
            inherits: paths.contains("inherits").then_some(inherits),
            etag: Etag::parse("etag", &etag)?,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::DeleteResourceRequest {
    type Domain = Deletion<ResourceId>;

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<Deletion<ResourceId>, ValidationError> {
        let Self {
            id,
            etag,
            idempotency_key: _,
        } = self;

        Ok(Deletion {
            id: required_id("id", &id)?,
            etag: Etag::parse("etag", &etag)?,
        })
    }
}

impl TryIntoDomain for proto::GrantAccessRequest {
    type Domain = GrantSpec;

    fn try_into_domain(self, facts: &RequestFacts) -> Result<GrantSpec, ValidationError> {
        let Self {
            resource_id,
            subject,
            permissions,
            no_access,
            expire_time,
            idempotency_key: _,
        } = self;

        let command = GrantSpec {
            resource_id: required_id("resource_id", &resource_id)?,
            subject: required_subject("subject", subject)?,
            permissions,
            no_access,
            expire_time: optional_future_time("expire_time", expire_time, facts.now)?,
            granted_by: facts.actor_user_id,
        };
        command.validate("")?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::RevokeAccessRequest {
    type Domain = GrantRevocation;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<GrantRevocation, ValidationError> {
        let Self {
            resource_id,
            subject,
            idempotency_key: _,
        } = self;

        Ok(GrantRevocation {
            resource_id: required_id("resource_id", &resource_id)?,
            subject: required_subject("subject", subject)?,
        })
    }
}

fn grant_change_from_proto(
    prefix: &str,
    change: proto::GrantChange,
    facts: &RequestFacts,
) -> Result<GrantChange, ValidationError> {
    let proto::GrantChange {
        resource_id,
        subject,
        permissions,
        no_access,
        expire_time,
        revoke,
    } = change;

    let resource_id = required_id(&format!("{prefix}.resource_id"), &resource_id)?;
    let subject = required_subject(&format!("{prefix}.subject"), subject)?;
    if revoke {
        return Ok(GrantChange::Revoke {
            resource_id,
            subject,
        });
    }
    Ok(GrantChange::Set(GrantSpec {
        resource_id,
        subject,
        permissions,
        no_access,
        expire_time: optional_future_time(
            &format!("{prefix}.expire_time"),
            expire_time,
            facts.now,
        )?,
        granted_by: facts.actor_user_id,
    }))
}

impl TryIntoDomain for proto::BatchSetGrantsRequest {
    type Domain = BatchSetGrants;

    fn try_into_domain(self, facts: &RequestFacts) -> Result<BatchSetGrants, ValidationError> {
        let Self {
            organization_id,
            changes,
            idempotency_key: _,
        } = self;

        let organization_id = required_id("organization_id", &organization_id)?;
        check_list_length("changes", changes.len(), MAX_GRANT_CHANGES)?;
        let changes = changes
            .into_iter()
            .enumerate()
            .map(|(index, change)| {
                grant_change_from_proto(&format!("changes[{index}]"), change, facts)
            })
            .collect::<Result<Vec<_>, ValidationError>>()?;
        let command = BatchSetGrants {
            organization_id,
            changes,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::CreateInvitationRequest {
    type Domain = NewInvitation;

    fn try_into_domain(self, facts: &RequestFacts) -> Result<NewInvitation, ValidationError> {
        let Self {
            organization_id,
            email,
            team_ids,
            expire_time,
            invited_by_user_id,
            idempotency_key: _,
        } = self;

        let organization_id = required_id("organization_id", &organization_id)?;
        check_list_length("team_ids", team_ids.len(), MAX_INVITATION_TEAMS)?;
        let command = NewInvitation {
            organization_id,
            email,
            team_ids: id_list("team_ids", &team_ids)?,
            expire_time: optional_future_time("expire_time", expire_time, facts.now)?,
            invited_by: optional_id("invited_by_user_id", &invited_by_user_id)?
                .or(facts.actor_user_id),
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::AcceptInvitationRequest {
    type Domain = AcceptInvitation;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<AcceptInvitation, ValidationError> {
        let Self {
            id,
            login,
            display_name,
            idempotency_key: _,
        } = self;

        let command = AcceptInvitation {
            id: required_id("id", &id)?,
            login: optional_text(login),
            display_name,
        };
        command.validate()?;
        Ok(command)
    }
}

impl TryIntoDomain for proto::RevokeInvitationRequest {
    type Domain = InvitationId;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<InvitationId, ValidationError> {
        let Self {
            id,
            idempotency_key: _,
        } = self;

        required_id("id", &id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn facts() -> RequestFacts {
        RequestFacts {
            now: Utc::now(),
            actor_user_id: None,
            epoch: uuid::Uuid::now_v7(),
        }
    }

    #[test]
    fn batch_over_limit_names_field() {
        let request = proto::AddTeamMembersRequest {
            team_id: TeamId::generate().to_string(),
            members: vec![proto::NewTeamMember::default(); MAX_BATCH_ITEMS + 1],
            idempotency_key: String::new(),
        };
        let error = request.try_into_domain(&facts()).unwrap_err();
        assert_eq!(error.field, "members");
        assert!(error.reason.contains("1000"));
    }

    #[test]
    fn grant_changes_over_limit_rejected() {
        let request = proto::BatchSetGrantsRequest {
            organization_id: OrganizationId::generate().to_string(),
            changes: vec![proto::GrantChange::default(); MAX_GRANT_CHANGES + 1],
            idempotency_key: String::new(),
        };
        let error = request.try_into_domain(&facts()).unwrap_err();
        assert_eq!(error.field, "changes");
    }

    #[test]
    fn nested_member_id_named() {
        let request = proto::AddTeamMembersRequest {
            team_id: TeamId::generate().to_string(),
            members: vec![
                proto::NewTeamMember {
                    user_id: UserId::generate().to_string(),
                    expire_time: None,
                },
                proto::NewTeamMember {
                    user_id: UserId::generate().to_string().to_uppercase(),
                    expire_time: None,
                },
            ],
            idempotency_key: String::new(),
        };
        let error = request.try_into_domain(&facts()).unwrap_err();
        assert_eq!(error.field, "members[1].user_id");
    }

    #[test]
    fn past_expiry_rejected() {
        let request = proto::AddTeamMembersRequest {
            team_id: TeamId::generate().to_string(),
            members: vec![proto::NewTeamMember {
                user_id: UserId::generate().to_string(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
            }],
            idempotency_key: String::new(),
        };
        let error = request.try_into_domain(&facts()).unwrap_err();
        assert_eq!(error.field, "members[0].expire_time");
    }

    #[test]
    fn both_parent_forms_rejected() {
        let request = proto::CreateResourceRequest {
            organization_id: OrganizationId::generate().to_string(),
            resource: Some(proto::NewResource {
                resource_type: "kdrive.folder".to_owned(),
                external_id: "42".to_owned(),
                display_name: String::new(),
                parent_resource_id: ResourceId::generate().to_string(),
                parent_external_id: "41".to_owned(),
                inherits: None,
            }),
            idempotency_key: String::new(),
        };
        let error = request.try_into_domain(&facts()).unwrap_err();
        assert_eq!(error.field, "resource.parent_external_id");
    }

    #[test]
    fn resource_inherits_by_default() {
        let request = proto::CreateResourceRequest {
            organization_id: OrganizationId::generate().to_string(),
            resource: Some(proto::NewResource {
                resource_type: "kdrive.folder".to_owned(),
                external_id: "42".to_owned(),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        };
        let creation = request.try_into_domain(&facts()).unwrap();
        assert!(creation.resource.inherits);
    }

    #[test]
    fn user_update_clears_email() {
        let request = proto::UpdateUserRequest {
            id: UserId::generate().to_string(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["email".to_owned()],
            }),
            ..Default::default()
        };
        let update = request.try_into_domain(&facts()).unwrap();
        assert_eq!(update.email, Some(None));
        assert_eq!(update.login, None);
    }

    #[test]
    fn member_update_needs_status_value() {
        let request = proto::UpdateOrganizationMemberRequest {
            organization_id: OrganizationId::generate().to_string(),
            user_id: UserId::generate().to_string(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".to_owned()],
            }),
            ..Default::default()
        };
        let error = request.try_into_domain(&facts()).unwrap_err();
        assert_eq!(error.field, "status");
    }

    #[test]
    fn team_name_control_character_named() {
        let request = proto::CreateTeamRequest {
            organization_id: OrganizationId::generate().to_string(),
            name: "docs\u{7}".to_owned(),
            ..Default::default()
        };
        let error = request.try_into_domain(&facts()).unwrap_err();
        assert_eq!(error.field, "name");
    }
}
