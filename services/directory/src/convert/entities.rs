//! Domain entities and changes to their protobuf messages.
//!
//! The orphan rule forbids `From<domain> for proto` here (both types come
//! from other crates), so the conversions go through the local
//! [`IntoProto`] trait.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use workteams_domain::{
    Change, ChangeBatch, Combining, ConsistencyToken, Entity, EntityKey, Grant, GrantKey,
    Invitation, InvitationState, Member, MemberRole, MemberStatus, Membership, Organization,
    OrganizationSettings, Resource, ResourceTypeDef, ResourceTypeDefault, Subject, Team, User,
};
use workteams_proto::directory::v1 as proto;
use workteams_storage::MemberWithUser;

use workteams_domain::command::Etag;

use super::fields::timestamp_to_proto;

/// Converts a domain value into its protobuf message.
pub trait IntoProto {
    type Proto;

    fn into_proto(self) -> Self::Proto;
}

impl<T: IntoProto> IntoProto for Vec<T> {
    type Proto = Vec<T::Proto>;

    fn into_proto(self) -> Self::Proto {
        self.into_iter().map(IntoProto::into_proto).collect()
    }
}

impl IntoProto for MemberRole {
    type Proto = proto::MemberRole;

    fn into_proto(self) -> Self::Proto {
        match self {
            Self::Owner => proto::MemberRole::Owner,
            Self::Administrator => proto::MemberRole::Administrator,
            Self::Collaborator => proto::MemberRole::Collaborator,
            Self::External => proto::MemberRole::External,
        }
    }
}

impl IntoProto for MemberStatus {
    type Proto = proto::MemberStatus;

    fn into_proto(self) -> Self::Proto {
        match self {
            Self::Active => proto::MemberStatus::Active,
            Self::Suspended => proto::MemberStatus::Suspended,
        }
    }
}

impl IntoProto for InvitationState {
    type Proto = proto::InvitationState;

    fn into_proto(self) -> Self::Proto {
        match self {
            Self::Pending => proto::InvitationState::Pending,
            Self::Accepted => proto::InvitationState::Accepted,
            Self::Revoked => proto::InvitationState::Revoked,
            Self::Expired => proto::InvitationState::Expired,
        }
    }
}

impl IntoProto for Combining {
    type Proto = proto::GrantCombining;

    fn into_proto(self) -> Self::Proto {
        match self {
            Self::IndividualPrecedence => proto::GrantCombining::IndividualPrecedence,
            Self::Cumulative => proto::GrantCombining::Cumulative,
        }
    }
}

impl IntoProto for ResourceTypeDefault {
    type Proto = proto::ResourceTypeDefault;

    fn into_proto(self) -> Self::Proto {
        let Self {
            resource_type,
            base_level,
            administrators_get_highest_level,
        } = self;
        proto::ResourceTypeDefault {
            resource_type,
            base_level: base_level.unwrap_or_default(),
            administrators_get_highest_level,
        }
    }
}

impl IntoProto for OrganizationSettings {
    type Proto = proto::OrganizationSettings;

    fn into_proto(self) -> Self::Proto {
        let Self {
            leaders_manage_members,
            resource_type_defaults,
        } = self;
        proto::OrganizationSettings {
            leaders_manage_members,
            resource_type_defaults: resource_type_defaults.into_proto(),
        }
    }
}

impl IntoProto for Organization {
    type Proto = proto::Organization;

    fn into_proto(self) -> Self::Proto {
        let Self {
            id,
            name,
            display_name,
            settings,
            create_time,
            update_time,
            version,
        } = self;
        proto::Organization {
            id: id.to_string(),
            name,
            display_name,
            settings: Some(settings.into_proto()),
            create_time: Some(timestamp_to_proto(create_time)),
            update_time: Some(timestamp_to_proto(update_time)),
            etag: Etag::of_version(version),
        }
    }
}

impl IntoProto for User {
    type Proto = proto::User;

    fn into_proto(self) -> Self::Proto {
        let Self {
            id,
            login,
            email,
            display_name,
            create_time,
            update_time,
            version,
        } = self;
        proto::User {
            id: id.to_string(),
            login,
            email: email.unwrap_or_default(),
            display_name,
            create_time: Some(timestamp_to_proto(create_time)),
            update_time: Some(timestamp_to_proto(update_time)),
            etag: Etag::of_version(version),
        }
    }
}

/// A member without the user record, as the change stream carries it.
impl IntoProto for Member {
    type Proto = proto::OrganizationMember;

    fn into_proto(self) -> Self::Proto {
        member_to_proto(self, None)
    }
}

/// A member with its user record filled in, as reads return it.
impl IntoProto for MemberWithUser {
    type Proto = proto::OrganizationMember;

    fn into_proto(self) -> Self::Proto {
        let Self { member, user } = self;
        member_to_proto(member, Some(user))
    }
}

fn member_to_proto(member: Member, user: Option<User>) -> proto::OrganizationMember {
    let Member {
        organization_id,
        user_id,
        role,
        status,
        create_time,
        update_time,
        version,
    } = member;
    proto::OrganizationMember {
        organization_id: organization_id.to_string(),
        user_id: user_id.to_string(),
        role: role.into_proto().into(),
        status: status.into_proto().into(),
        user: user.map(IntoProto::into_proto),
        create_time: Some(timestamp_to_proto(create_time)),
        update_time: Some(timestamp_to_proto(update_time)),
        etag: Etag::of_version(version),
    }
}

impl IntoProto for Team {
    type Proto = proto::Team;

    fn into_proto(self) -> Self::Proto {
        let Self {
            id,
            organization_id,
            name,
            description,
            color,
            parent_team_id,
            leader_user_ids,
            organization_role,
            create_time,
            update_time,
            version,
        } = self;
        proto::Team {
            id: id.to_string(),
            organization_id: organization_id.to_string(),
            name,
            description,
            color,
            parent_team_id: optional_to_text(parent_team_id),
            leader_user_ids: leader_user_ids.iter().map(ToString::to_string).collect(),
            create_time: Some(timestamp_to_proto(create_time)),
            update_time: Some(timestamp_to_proto(update_time)),
            etag: Etag::of_version(version),
            organization_role: organization_role
                .map_or(proto::MemberRole::Unspecified, IntoProto::into_proto)
                .into(),
        }
    }
}

/// A membership as the change stream carries it: no user record, no
/// descendant team.
impl IntoProto for Membership {
    type Proto = proto::TeamMembership;

    fn into_proto(self) -> Self::Proto {
        membership_to_proto(self, None, None)
    }
}

/// Builds a membership message, with the user record and the descendant team
/// the user belongs to when a listing provides them.
pub fn membership_to_proto(
    membership: Membership,
    user: Option<User>,
    via_team_id: Option<workteams_domain::TeamId>,
) -> proto::TeamMembership {
    let Membership {
        team_id,
        user_id,
        organization_id: _,
        added_by,
        add_time,
        expire_time,
    } = membership;
    proto::TeamMembership {
        team_id: team_id.to_string(),
        user_id: user_id.to_string(),
        added_by_user_id: optional_to_text(added_by),
        add_time: Some(timestamp_to_proto(add_time)),
        expire_time: expire_time.map(timestamp_to_proto),
        user: user.map(IntoProto::into_proto),
        via_team_id: optional_to_text(via_team_id),
    }
}

impl IntoProto for Resource {
    type Proto = proto::Resource;

    fn into_proto(self) -> Self::Proto {
        let Self {
            id,
            organization_id,
            resource_type,
            external_id,
            display_name,
            parent_resource_id,
            inherits,
            create_time,
            update_time,
            version,
        } = self;
        proto::Resource {
            id: id.to_string(),
            organization_id: organization_id.to_string(),
            resource_type,
            external_id,
            display_name,
            parent_resource_id: optional_to_text(parent_resource_id),
            inherits,
            create_time: Some(timestamp_to_proto(create_time)),
            update_time: Some(timestamp_to_proto(update_time)),
            etag: Etag::of_version(version),
        }
    }
}

impl IntoProto for Subject {
    type Proto = proto::Subject;

    fn into_proto(self) -> Self::Proto {
        let kind = match self {
            Self::Team(team_id) => proto::subject::Kind::TeamId(team_id.to_string()),
            Self::User(user_id) => proto::subject::Kind::UserId(user_id.to_string()),
        };
        proto::Subject { kind: Some(kind) }
    }
}

impl IntoProto for GrantKey {
    type Proto = proto::GrantKey;

    fn into_proto(self) -> Self::Proto {
        let Self {
            resource_id,
            subject,
        } = self;
        proto::GrantKey {
            resource_id: resource_id.to_string(),
            subject: Some(subject.into_proto()),
        }
    }
}

impl IntoProto for Grant {
    type Proto = proto::Grant;

    fn into_proto(self) -> Self::Proto {
        let Self {
            resource_id,
            subject,
            organization_id,
            permissions,
            no_access,
            expire_time,
            granted_by,
            create_time,
            update_time,
        } = self;
        proto::Grant {
            resource_id: resource_id.to_string(),
            subject: Some(subject.into_proto()),
            permissions,
            no_access,
            expire_time: expire_time.map(timestamp_to_proto),
            granted_by_user_id: optional_to_text(granted_by),
            create_time: Some(timestamp_to_proto(create_time)),
            update_time: Some(timestamp_to_proto(update_time)),
            organization_id: organization_id.to_string(),
        }
    }
}

/// Builds an invitation message with its state as of `now`, so a pending
/// invitation past its expiry reads as expired.
pub fn invitation_at(invitation: Invitation, now: DateTime<Utc>) -> proto::Invitation {
    let state = invitation.state_at(now);
    invitation_with_state(invitation, state)
}

/// An invitation with its stored state, as the change stream carries it:
/// followers derive expiry themselves from `expire_time`.
impl IntoProto for Invitation {
    type Proto = proto::Invitation;

    fn into_proto(self) -> Self::Proto {
        let state = self.state;
        invitation_with_state(self, state)
    }
}

fn invitation_with_state(invitation: Invitation, state: InvitationState) -> proto::Invitation {
    let Invitation {
        id,
        organization_id,
        email,
        team_ids,
        state: _,
        invited_by,
        create_time,
        expire_time,
        accepted_user_id,
        accept_time,
    } = invitation;
    proto::Invitation {
        id: id.to_string(),
        organization_id: organization_id.to_string(),
        email,
        team_ids: team_ids.iter().map(ToString::to_string).collect(),
        state: state.into_proto().into(),
        invited_by_user_id: optional_to_text(invited_by),
        create_time: Some(timestamp_to_proto(create_time)),
        expire_time: Some(timestamp_to_proto(expire_time)),
        accepted_user_id: optional_to_text(accepted_user_id),
        accept_time: accept_time.map(timestamp_to_proto),
    }
}

impl IntoProto for ResourceTypeDef {
    type Proto = proto::ResourceType;

    fn into_proto(self) -> Self::Proto {
        let Self {
            name,
            permissions,
            ordered_levels,
            combining,
            grants_propagate,
            case_insensitive_external_ids,
            nestable,
        } = self;
        proto::ResourceType {
            name,
            permissions,
            ordered_levels,
            combining: combining.into_proto().into(),
            grants_propagate,
            case_insensitive_external_ids,
            nestable,
        }
    }
}

impl IntoProto for Entity {
    type Proto = proto::Entity;

    fn into_proto(self) -> Self::Proto {
        use proto::entity::Kind;

        let kind = match self {
            Self::Organization(organization) => Kind::Organization(organization.into_proto()),
            Self::User(user) => Kind::User(user.into_proto()),
            Self::Member(member) => Kind::Member(member.into_proto()),
            Self::Team(team) => Kind::Team(team.into_proto()),
            Self::Membership(membership) => Kind::Membership(membership.into_proto()),
            Self::Resource(resource) => Kind::Resource(resource.into_proto()),
            Self::Grant(grant) => Kind::Grant(grant.into_proto()),
            Self::Invitation(invitation) => Kind::Invitation(invitation.into_proto()),
            Self::ResourceType(definition) => Kind::ResourceType(definition.into_proto()),
        };
        proto::Entity { kind: Some(kind) }
    }
}

impl IntoProto for EntityKey {
    type Proto = proto::EntityKey;

    fn into_proto(self) -> Self::Proto {
        use proto::entity_key::Kind;

        let kind = match self {
            Self::Organization(id) => Kind::OrganizationId(id.to_string()),
            Self::User(id) => Kind::UserId(id.to_string()),
            Self::Member {
                organization_id,
                user_id,
            } => Kind::Member(proto::MemberKey {
                organization_id: organization_id.to_string(),
                user_id: user_id.to_string(),
            }),
            Self::Team(id) => Kind::TeamId(id.to_string()),
            Self::Membership { team_id, user_id } => Kind::Membership(proto::MembershipKey {
                team_id: team_id.to_string(),
                user_id: user_id.to_string(),
            }),
            Self::Resource(id) => Kind::ResourceId(id.to_string()),
            Self::Grant(key) => Kind::Grant(key.into_proto()),
            Self::Invitation(id) => Kind::InvitationId(id.to_string()),
            Self::ResourceType(name) => Kind::ResourceType(name),
        };
        proto::EntityKey { kind: Some(kind) }
    }
}

impl IntoProto for Change {
    type Proto = proto::Change;

    fn into_proto(self) -> Self::Proto {
        let organization_id = optional_to_text(self.organization_id());
        let kind = match self {
            Self::Upserted(entity) => proto::change::Kind::Upserted(entity.into_proto()),
            Self::Deleted {
                key,
                organization_id: _,
            } => proto::change::Kind::Deleted(key.into_proto()),
        };
        proto::Change {
            kind: Some(kind),
            organization_id,
        }
    }
}

/// Builds a change batch message. The `epoch` identifies the database that
/// the batch's consistency token belongs to.
pub fn change_batch_to_proto(batch: ChangeBatch, epoch: Uuid) -> proto::ChangeBatch {
    let ChangeBatch {
        revision,
        changes,
        actor,
        request_id,
        traceparent,
        commit_time,
    } = batch;
    proto::ChangeBatch {
        revision: revision.0,
        consistency_token: ConsistencyToken::new(epoch, revision).encode(),
        changes: changes.into_proto(),
        actor: actor.unwrap_or_default(),
        request_id: request_id.unwrap_or_default(),
        traceparent: traceparent.unwrap_or_default(),
        commit_time: Some(timestamp_to_proto(commit_time)),
    }
}

fn optional_to_text<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}
