//! Conversions between table rows and domain entities.

use std::str::FromStr;

use sea_orm::ActiveValue::Set;
use workteams_domain::{
    Grant, Invitation, InvitationState, Member, MemberRole, MemberStatus, Membership, Organization,
    OrganizationSettings, Resource, Subject, Team, User, UserId, ValidationError,
};

use super::time::{from_micros, optional_from_micros, to_micros};
use crate::error::StoreError;
use crate::schema::tables::{grants, invitations, members, organizations, resources, team_memberships, teams, users};

/// Parses an id read from the database.
pub(crate) fn parse_id<T: FromStr<Err = ValidationError>>(text: &str) -> Result<T, StoreError> {
    text.parse().map_err(StoreError::corrupt)
}

pub(crate) fn parse_optional_id<T: FromStr<Err = ValidationError>>(text: Option<&str>) -> Result<Option<T>, StoreError> {
    text.map(parse_id).transpose()
}

pub(crate) fn organization(row: organizations::Model) -> Result<Organization, StoreError> {
    let settings: OrganizationSettings = serde_json::from_str(&row.settings)?;
    Ok(Organization {
        id: parse_id(&row.id)?,
        name: row.name,
        display_name: row.display_name,
        settings,
        create_time: from_micros(row.create_time_us)?,
        update_time: from_micros(row.update_time_us)?,
        version: row.version,
    })
}

pub(crate) fn organization_row(organization: &Organization) -> Result<organizations::ActiveModel, StoreError> {
    Ok(organizations::ActiveModel {
        id: Set(organization.id.to_string()),
        name: Set(organization.name.clone()),
        name_key: Set(workteams_domain::text::fold(&organization.name)),
        display_name: Set(organization.display_name.clone()),
        settings: Set(serde_json::to_string(&organization.settings)?),
        create_time_us: Set(to_micros(organization.create_time)),
        update_time_us: Set(to_micros(organization.update_time)),
        version: Set(organization.version),
    })
}

pub(crate) fn user(row: users::Model) -> Result<User, StoreError> {
    Ok(User {
        id: parse_id(&row.id)?,
        login: row.login,
        email: row.email,
        display_name: row.display_name,
        create_time: from_micros(row.create_time_us)?,
        update_time: from_micros(row.update_time_us)?,
        version: row.version,
    })
}

pub(crate) fn user_row(user: &User) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(user.id.to_string()),
        login: Set(user.login.clone()),
        login_key: Set(workteams_domain::text::fold(&user.login)),
        email: Set(user.email.clone()),
        email_key: Set(user.email.as_deref().map(workteams_domain::text::fold)),
        display_name: Set(user.display_name.clone()),
        create_time_us: Set(to_micros(user.create_time)),
        update_time_us: Set(to_micros(user.update_time)),
        version: Set(user.version),
    }
}

pub(crate) fn role_from_text(text: &str) -> Result<MemberRole, StoreError> {
    match text {
        "owner" => Ok(MemberRole::Owner),
        "administrator" => Ok(MemberRole::Administrator),
        "collaborator" => Ok(MemberRole::Collaborator),
        "external" => Ok(MemberRole::External),
        other => Err(StoreError::corrupt(format!("unknown member role {other:?}"))),
    }
}

pub(crate) fn status_from_text(text: &str) -> Result<MemberStatus, StoreError> {
    match text {
        "active" => Ok(MemberStatus::Active),
        "suspended" => Ok(MemberStatus::Suspended),
        other => Err(StoreError::corrupt(format!("unknown member status {other:?}"))),
    }
}

pub(crate) fn member(row: members::Model) -> Result<Member, StoreError> {
    Ok(Member {
        organization_id: parse_id(&row.organization_id)?,
        user_id: parse_id(&row.user_id)?,
        role: role_from_text(&row.role)?,
        status: status_from_text(&row.status)?,
        create_time: from_micros(row.create_time_us)?,
        update_time: from_micros(row.update_time_us)?,
        version: row.version,
    })
}

pub(crate) fn member_row(member: &Member) -> members::ActiveModel {
    members::ActiveModel {
        organization_id: Set(member.organization_id.to_string()),
        user_id: Set(member.user_id.to_string()),
        role: Set(member.role.as_str().to_owned()),
        status: Set(member.status.as_str().to_owned()),
        create_time_us: Set(to_micros(member.create_time)),
        update_time_us: Set(to_micros(member.update_time)),
        version: Set(member.version),
    }
}

/// Builds a team from its row and its leaders (in any order).
pub(crate) fn team(row: teams::Model, mut leader_user_ids: Vec<UserId>) -> Result<Team, StoreError> {
    leader_user_ids.sort();
    leader_user_ids.dedup();
    Ok(Team {
        id: parse_id(&row.id)?,
        organization_id: parse_id(&row.organization_id)?,
        name: row.name,
        description: row.description,
        color: row.color,
        parent_team_id: parse_optional_id(row.parent_team_id.as_deref())?,
        leader_user_ids,
        organization_role: row.organization_role.as_deref().map(role_from_text).transpose()?,
        create_time: from_micros(row.create_time_us)?,
        update_time: from_micros(row.update_time_us)?,
        version: row.version,
    })
}

pub(crate) fn team_row(team: &Team) -> teams::ActiveModel {
    teams::ActiveModel {
        id: Set(team.id.to_string()),
        organization_id: Set(team.organization_id.to_string()),
        name: Set(team.name.clone()),
        name_key: Set(workteams_domain::text::fold(&team.name)),
        description: Set(team.description.clone()),
        color: Set(team.color.clone()),
        parent_team_id: Set(team.parent_team_id.map(|id| id.to_string())),
        organization_role: Set(team.organization_role.map(|role| role.as_str().to_owned())),
        create_time_us: Set(to_micros(team.create_time)),
        update_time_us: Set(to_micros(team.update_time)),
        version: Set(team.version),
    }
}

pub(crate) fn membership(row: team_memberships::Model) -> Result<Membership, StoreError> {
    Ok(Membership {
        team_id: parse_id(&row.team_id)?,
        user_id: parse_id(&row.user_id)?,
        organization_id: parse_id(&row.organization_id)?,
        added_by: parse_optional_id(row.added_by.as_deref())?,
        add_time: from_micros(row.add_time_us)?,
        expire_time: optional_from_micros(row.expire_time_us)?,
    })
}

pub(crate) fn membership_row(membership: &Membership) -> team_memberships::ActiveModel {
    team_memberships::ActiveModel {
        team_id: Set(membership.team_id.to_string()),
        user_id: Set(membership.user_id.to_string()),
        organization_id: Set(membership.organization_id.to_string()),
        added_by: Set(membership.added_by.map(|id| id.to_string())),
        add_time_us: Set(to_micros(membership.add_time)),
        expire_time_us: Set(membership.expire_time.map(to_micros)),
    }
}

pub(crate) fn resource(row: resources::Model) -> Result<Resource, StoreError> {
    Ok(Resource {
        id: parse_id(&row.id)?,
        organization_id: parse_id(&row.organization_id)?,
        resource_type: row.resource_type,
        external_id: row.external_id,
        display_name: row.display_name,
        parent_resource_id: parse_optional_id(row.parent_resource_id.as_deref())?,
        inherits: row.inherits,
        create_time: from_micros(row.create_time_us)?,
        update_time: from_micros(row.update_time_us)?,
        version: row.version,
    })
}

/// The row of a resource; `external_id_key` is the folded or verbatim
/// external id, as the resource's type says.
pub(crate) fn resource_row(resource: &Resource, external_id_key: String) -> resources::ActiveModel {
    resources::ActiveModel {
        id: Set(resource.id.to_string()),
        organization_id: Set(resource.organization_id.to_string()),
        resource_type: Set(resource.resource_type.clone()),
        external_id: Set(resource.external_id.clone()),
        external_id_key: Set(external_id_key),
        display_name: Set(resource.display_name.clone()),
        parent_resource_id: Set(resource.parent_resource_id.map(|id| id.to_string())),
        inherits: Set(resource.inherits),
        create_time_us: Set(to_micros(resource.create_time)),
        update_time_us: Set(to_micros(resource.update_time)),
        version: Set(resource.version),
    }
}

pub(crate) const SUBJECT_TEAM: &str = "team";
pub(crate) const SUBJECT_USER: &str = "user";

/// The (kind, id) columns of a subject.
pub(crate) fn subject_columns(subject: Subject) -> (&'static str, String) {
    match subject {
        Subject::Team(team_id) => (SUBJECT_TEAM, team_id.to_string()),
        Subject::User(user_id) => (SUBJECT_USER, user_id.to_string()),
    }
}

pub(crate) fn subject(kind: &str, id: &str) -> Result<Subject, StoreError> {
    match kind {
        SUBJECT_TEAM => Ok(Subject::Team(parse_id(id)?)),
        SUBJECT_USER => Ok(Subject::User(parse_id(id)?)),
        other => Err(StoreError::corrupt(format!("unknown subject kind {other:?}"))),
    }
}

pub(crate) fn grant(row: grants::Model) -> Result<Grant, StoreError> {
    Ok(Grant {
        resource_id: parse_id(&row.resource_id)?,
        subject: subject(&row.subject_kind, &row.subject_id)?,
        organization_id: parse_id(&row.organization_id)?,
        permissions: serde_json::from_str(&row.permissions)?,
        no_access: row.no_access,
        expire_time: optional_from_micros(row.expire_time_us)?,
        granted_by: parse_optional_id(row.granted_by.as_deref())?,
        create_time: from_micros(row.create_time_us)?,
        update_time: from_micros(row.update_time_us)?,
    })
}

pub(crate) fn grant_row(grant: &Grant) -> Result<grants::ActiveModel, StoreError> {
    let (subject_kind, subject_id) = subject_columns(grant.subject);
    Ok(grants::ActiveModel {
        resource_id: Set(grant.resource_id.to_string()),
        subject_kind: Set(subject_kind.to_owned()),
        subject_id: Set(subject_id),
        organization_id: Set(grant.organization_id.to_string()),
        permissions: Set(serde_json::to_string(&grant.permissions)?),
        no_access: Set(grant.no_access),
        expire_time_us: Set(grant.expire_time.map(to_micros)),
        granted_by: Set(grant.granted_by.map(|id| id.to_string())),
        create_time_us: Set(to_micros(grant.create_time)),
        update_time_us: Set(to_micros(grant.update_time)),
    })
}

pub(crate) fn state_text(state: InvitationState) -> &'static str {
    match state {
        InvitationState::Pending => "pending",
        InvitationState::Accepted => "accepted",
        InvitationState::Revoked => "revoked",
        InvitationState::Expired => "expired",
    }
}

fn state_from_text(text: &str) -> Result<InvitationState, StoreError> {
    match text {
        "pending" => Ok(InvitationState::Pending),
        "accepted" => Ok(InvitationState::Accepted),
        "revoked" => Ok(InvitationState::Revoked),
        "expired" => Ok(InvitationState::Expired),
        other => Err(StoreError::corrupt(format!("unknown invitation state {other:?}"))),
    }
}

/// Builds an invitation from its row and its team ids in request order.
pub(crate) fn invitation(row: invitations::Model, team_ids: Vec<workteams_domain::TeamId>) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: parse_id(&row.id)?,
        organization_id: parse_id(&row.organization_id)?,
        email: row.email,
        team_ids,
        state: state_from_text(&row.state)?,
        invited_by: parse_optional_id(row.invited_by.as_deref())?,
        create_time: from_micros(row.create_time_us)?,
        expire_time: from_micros(row.expire_time_us)?,
        accepted_user_id: parse_optional_id(row.accepted_user_id.as_deref())?,
        accept_time: optional_from_micros(row.accept_time_us)?,
    })
}

pub(crate) fn invitation_row(invitation: &Invitation) -> invitations::ActiveModel {
    invitations::ActiveModel {
        id: Set(invitation.id.to_string()),
        organization_id: Set(invitation.organization_id.to_string()),
        email: Set(invitation.email.clone()),
        state: Set(state_text(invitation.state).to_owned()),
        invited_by: Set(invitation.invited_by.map(|id| id.to_string())),
        create_time_us: Set(to_micros(invitation.create_time)),
        expire_time_us: Set(to_micros(invitation.expire_time)),
        accepted_user_id: Set(invitation.accepted_user_id.map(|id| id.to_string())),
        accept_time_us: Set(invitation.accept_time.map(to_micros)),
    }
}
