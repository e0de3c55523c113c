//! Conversion of the directory's snapshot and change-stream messages into
//! domain entities and changes.
//!
//! The directory produced these messages from valid domain values, so a
//! message that does not convert means the two sides disagree. The follower
//! treats any such error as a reason to resynchronize, never to skip a change.
//! Every message is destructured field by field, so a field added to the
//! contract fails the build here until the follower decides what to do with it.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use workteams_domain::change::{Change, ChangeBatch, Entity, EntityKey};
use workteams_domain::command::Etag;
use workteams_domain::{
    Combining, ConsistencyToken, Grant, GrantKey, Invitation, InvitationId, InvitationState, Member,
    MemberRole, MemberStatus, Membership, Organization, OrganizationId, OrganizationSettings, Resource,
    ResourceId, ResourceTypeDef, ResourceTypeDefault, Revision, Subject, Team, TeamId, User, UserId,
    ValidationError,
};
use workteams_proto::directory::v1 as proto;

/// Converts one protobuf message into its domain form; errors name the
/// offending field relative to the message.
pub trait FromProto<Message>: Sized {
    fn from_proto(message: Message) -> Result<Self, ValidationError>;
}

/// A change batch together with the consistency token the directory gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedBatch {
    pub batch: ChangeBatch,
    pub token: ConsistencyToken,
}

/// Converts a change batch, checking that its token names its revision in the
/// directory installation with `epoch`.
pub fn change_batch_from_proto(message: proto::ChangeBatch, epoch: Uuid) -> Result<ReceivedBatch, ValidationError> {
    let proto::ChangeBatch {
        revision,
        consistency_token,
        changes,
        actor,
        request_id,
        traceparent,
        commit_time,
    } = message;

    if revision <= 0 {
        return Err(ValidationError::new(
            "revision",
            revision.to_string(),
            "a change batch has a positive revision",
        ));
    }
    let token = ConsistencyToken::decode_for("consistency_token", &consistency_token, epoch)?;
    if token.revision != Revision(revision) {
        return Err(ValidationError::new(
            "consistency_token",
            &consistency_token,
            format!("names revision {} but the batch has revision {revision}", token.revision),
        ));
    }

    let changes = changes
        .into_iter()
        .enumerate()
        .map(|(position, change)| Change::from_proto(change).map_err(|error| error.within(&format!("changes[{position}]"))))
        .collect::<Result<Vec<_>, _>>()?;

    let batch = ChangeBatch {
        revision: Revision(revision),
        changes,
        actor: non_empty(actor),
        request_id: non_empty(request_id),
        traceparent: non_empty(traceparent),
        commit_time: required_timestamp("commit_time", commit_time)?,
    };
    Ok(ReceivedBatch { batch, token })
}

impl FromProto<proto::Change> for Change {
    fn from_proto(message: proto::Change) -> Result<Self, ValidationError> {
        let proto::Change { organization_id, kind } = message;

        let organization_id = optional_id("organization_id", &organization_id, OrganizationId::parse)?;
        match kind {
            Some(proto::change::Kind::Upserted(entity)) => {
                let entity = entity_from_proto(entity, organization_id).map_err(|error| error.within("upserted"))?;
                match (organization_id, entity.organization_id()) {
                    (Some(expected), Some(actual)) if expected != actual => {
                        return Err(ValidationError::new(
                            "organization_id",
                            expected.to_string(),
                            format!("differs from the organization {actual} of the changed entity"),
                        ));
                    }
                    _ => {}
                }
                Ok(Change::Upserted(entity))
            }
            Some(proto::change::Kind::Deleted(key)) => {
                let key = EntityKey::from_proto(key).map_err(|error| error.within("deleted"))?;
                Ok(Change::Deleted { key, organization_id })
            }
            None => Err(ValidationError::new("kind", "", "a change is either upserted or deleted")),
        }
    }
}

/// Converts an entity. `organization_id` supplies the organization of a team
/// membership, whose message does not carry one, and of a grant that leaves
/// its own `organization_id` empty.
pub fn entity_from_proto(
    message: proto::Entity,
    organization_id: Option<OrganizationId>,
) -> Result<Entity, ValidationError> {
    use proto::entity::Kind;

    let proto::Entity { kind } = message;
    let Some(kind) = kind else {
        return Err(ValidationError::new("kind", "", "an entity has a kind"));
    };
    let entity = match kind {
        Kind::Organization(organization) => {
            Entity::Organization(Organization::from_proto(organization).map_err(|error| error.within("organization"))?)
        }
        Kind::User(user) => Entity::User(User::from_proto(user).map_err(|error| error.within("user"))?),
        Kind::Member(member) => Entity::Member(Member::from_proto(member).map_err(|error| error.within("member"))?),
        Kind::Team(team) => Entity::Team(Team::from_proto(team).map_err(|error| error.within("team"))?),
        Kind::Membership(membership) => Entity::Membership(
            membership_from_proto(membership, organization_id).map_err(|error| error.within("membership"))?,
        ),
        Kind::Resource(resource) => {
            Entity::Resource(Resource::from_proto(resource).map_err(|error| error.within("resource"))?)
        }
        Kind::Grant(grant) => {
            Entity::Grant(grant_from_proto(grant, organization_id).map_err(|error| error.within("grant"))?)
        }
        Kind::Invitation(invitation) => {
            Entity::Invitation(Invitation::from_proto(invitation).map_err(|error| error.within("invitation"))?)
        }
        Kind::ResourceType(definition) => Entity::ResourceType(
            ResourceTypeDef::from_proto(definition).map_err(|error| error.within("resource_type"))?,
        ),
    };
    Ok(entity)
}

impl FromProto<proto::Organization> for Organization {
    fn from_proto(message: proto::Organization) -> Result<Self, ValidationError> {
        let proto::Organization {
            id,
            name,
            display_name,
            settings,
            create_time,
            update_time,
            etag,
        } = message;

        Ok(Self {
            id: OrganizationId::parse("id", &id)?,
            name: required_text("name", name)?,
            display_name,
            settings: settings
                .map(OrganizationSettings::from_proto)
                .transpose()
                .map_err(|error| error.within("settings"))?
                .unwrap_or_default(),
            create_time: required_timestamp("create_time", create_time)?,
            update_time: required_timestamp("update_time", update_time)?,
            version: version_from_etag("etag", &etag)?,
        })
    }
}

impl FromProto<proto::OrganizationSettings> for OrganizationSettings {
    fn from_proto(message: proto::OrganizationSettings) -> Result<Self, ValidationError> {
        let proto::OrganizationSettings {
            leaders_manage_members,
            resource_type_defaults,
        } = message;

        let resource_type_defaults = resource_type_defaults
            .into_iter()
            .enumerate()
            .map(|(position, default)| {
                let proto::ResourceTypeDefault {
                    resource_type,
                    base_level,
                    administrators_get_highest_level,
                } = default;
                let field = format!("resource_type_defaults[{position}]");
                Ok(ResourceTypeDefault {
                    resource_type: required_text("resource_type", resource_type).map_err(|error| error.within(&field))?,
                    base_level: non_empty(base_level),
                    administrators_get_highest_level,
                })
            })
            .collect::<Result<Vec<_>, ValidationError>>()?;

        Ok(Self {
            leaders_manage_members,
            resource_type_defaults,
        })
    }
}

impl FromProto<proto::User> for User {
    fn from_proto(message: proto::User) -> Result<Self, ValidationError> {
        let proto::User {
            id,
            login,
            email,
            display_name,
            create_time,
            update_time,
            etag,
        } = message;

        Ok(Self {
            id: UserId::parse("id", &id)?,
            login: required_text("login", login)?,
            email: non_empty(email),
            display_name,
            create_time: required_timestamp("create_time", create_time)?,
            update_time: required_timestamp("update_time", update_time)?,
            version: version_from_etag("etag", &etag)?,
        })
    }
}

impl FromProto<proto::OrganizationMember> for Member {
    fn from_proto(message: proto::OrganizationMember) -> Result<Self, ValidationError> {
        // The embedded user record is a convenience for readers; the follower
        // takes users from their own changes.
        let proto::OrganizationMember {
            organization_id,
            user_id,
            role,
            status,
            user: _,
            create_time,
            update_time,
            etag,
        } = message;

        Ok(Self {
            organization_id: OrganizationId::parse("organization_id", &organization_id)?,
            user_id: UserId::parse("user_id", &user_id)?,
            role: member_role("role", role)?,
            status: member_status("status", status)?,
            create_time: required_timestamp("create_time", create_time)?,
            update_time: required_timestamp("update_time", update_time)?,
            version: version_from_etag("etag", &etag)?,
        })
    }
}

impl FromProto<proto::Team> for Team {
    fn from_proto(message: proto::Team) -> Result<Self, ValidationError> {
        let proto::Team {
            id,
            organization_id,
            name,
            description,
            color,
            parent_team_id,
            leader_user_ids,
            create_time,
            update_time,
            etag,
            organization_role,
        } = message;

        let leader_user_ids = leader_user_ids
            .iter()
            .enumerate()
            .map(|(position, id)| UserId::parse(&format!("leader_user_ids[{position}]"), id))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Self {
            id: TeamId::parse("id", &id)?,
            organization_id: OrganizationId::parse("organization_id", &organization_id)?,
            name: required_text("name", name)?,
            description,
            color,
            parent_team_id: optional_id("parent_team_id", &parent_team_id, TeamId::parse)?,
            leader_user_ids,
            organization_role: team_role("organization_role", organization_role)?,
            create_time: required_timestamp("create_time", create_time)?,
            update_time: required_timestamp("update_time", update_time)?,
            version: version_from_etag("etag", &etag)?,
        })
    }
}

/// Converts a team membership, whose organization comes from the change or
/// the team that carries it.
pub fn membership_from_proto(
    message: proto::TeamMembership,
    organization_id: Option<OrganizationId>,
) -> Result<Membership, ValidationError> {
    // `user` and `via_team_id` are filled in on list reads only.
    let proto::TeamMembership {
        team_id,
        user_id,
        added_by_user_id,
        add_time,
        expire_time,
        user: _,
        via_team_id: _,
    } = message;

    let team_id = TeamId::parse("team_id", &team_id)?;
    let organization_id = organization_id.ok_or_else(|| {
        ValidationError::new(
            "team_id",
            team_id.to_string(),
            "the organization of the membership's team is unknown",
        )
    })?;

    Ok(Membership {
        team_id,
        user_id: UserId::parse("user_id", &user_id)?,
        organization_id,
        added_by: optional_id("added_by_user_id", &added_by_user_id, UserId::parse)?,
        add_time: required_timestamp("add_time", add_time)?,
        expire_time: optional_timestamp("expire_time", expire_time)?,
    })
}

impl FromProto<proto::Resource> for Resource {
    fn from_proto(message: proto::Resource) -> Result<Self, ValidationError> {
        let proto::Resource {
            id,
            organization_id,
            resource_type,
            external_id,
            display_name,
            parent_resource_id,
            inherits,
            create_time,
            update_time,
            etag,
        } = message;

        Ok(Self {
            id: ResourceId::parse("id", &id)?,
            organization_id: OrganizationId::parse("organization_id", &organization_id)?,
            resource_type: required_text("resource_type", resource_type)?,
            external_id: required_text("external_id", external_id)?,
            display_name,
            parent_resource_id: optional_id("parent_resource_id", &parent_resource_id, ResourceId::parse)?,
            inherits,
            create_time: required_timestamp("create_time", create_time)?,
            update_time: required_timestamp("update_time", update_time)?,
            version: version_from_etag("etag", &etag)?,
        })
    }
}

/// Converts a grant. Its own `organization_id` wins when set; it must then
/// agree with `organization_id` from the change or the resource.
pub fn grant_from_proto(message: proto::Grant, organization_id: Option<OrganizationId>) -> Result<Grant, ValidationError> {
    let proto::Grant {
        resource_id,
        subject,
        permissions,
        no_access,
        expire_time,
        granted_by_user_id,
        create_time,
        update_time,
        organization_id: own_organization_id,
    } = message;

    let resource_id = ResourceId::parse("resource_id", &resource_id)?;
    let own_organization_id = optional_id("organization_id", &own_organization_id, OrganizationId::parse)?;
    let organization_id = match (own_organization_id, organization_id) {
        (Some(own), Some(context)) if own != context => {
            return Err(ValidationError::new(
                "organization_id",
                own.to_string(),
                format!("differs from the organization {context} of the change or resource"),
            ));
        }
        (Some(own), _) => own,
        (None, Some(context)) => context,
        (None, None) => {
            return Err(ValidationError::new(
                "organization_id",
                "",
                "the organization of the grant's resource is unknown",
            ));
        }
    };

    if no_access != permissions.is_empty() {
        return Err(ValidationError::new(
            "permissions",
            permissions.join(","),
            "a grant lists permissions exactly when it is not an explicit no access",
        ));
    }

    Ok(Grant {
        resource_id,
        subject: subject_from_proto(subject).map_err(|error| error.within("subject"))?,
        organization_id,
        permissions,
        no_access,
        expire_time: optional_timestamp("expire_time", expire_time)?,
        granted_by: optional_id("granted_by_user_id", &granted_by_user_id, UserId::parse)?,
        create_time: required_timestamp("create_time", create_time)?,
        update_time: required_timestamp("update_time", update_time)?,
    })
}

impl FromProto<proto::Invitation> for Invitation {
    fn from_proto(message: proto::Invitation) -> Result<Self, ValidationError> {
        let proto::Invitation {
            id,
            organization_id,
            email,
            team_ids,
            state,
            invited_by_user_id,
            create_time,
            expire_time,
            accepted_user_id,
            accept_time,
        } = message;

        let team_ids = team_ids
            .iter()
            .enumerate()
            .map(|(position, id)| TeamId::parse(&format!("team_ids[{position}]"), id))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Self {
            id: InvitationId::parse("id", &id)?,
            organization_id: OrganizationId::parse("organization_id", &organization_id)?,
            email: required_text("email", email)?,
            team_ids,
            state: invitation_state("state", state)?,
            invited_by: optional_id("invited_by_user_id", &invited_by_user_id, UserId::parse)?,
            create_time: required_timestamp("create_time", create_time)?,
            expire_time: required_timestamp("expire_time", expire_time)?,
            accepted_user_id: optional_id("accepted_user_id", &accepted_user_id, UserId::parse)?,
            accept_time: optional_timestamp("accept_time", accept_time)?,
        })
    }
}

impl FromProto<proto::ResourceType> for ResourceTypeDef {
    fn from_proto(message: proto::ResourceType) -> Result<Self, ValidationError> {
        let proto::ResourceType {
            name,
            permissions,
            ordered_levels,
            combining,
            grants_propagate,
            case_insensitive_external_ids,
            nestable,
        } = message;

        let combining = match proto::GrantCombining::try_from(combining) {
            Ok(proto::GrantCombining::IndividualPrecedence) => Combining::IndividualPrecedence,
            Ok(proto::GrantCombining::Cumulative) => Combining::Cumulative,
            Ok(proto::GrantCombining::Unspecified) | Err(_) => {
                return Err(unknown_enum("combining", combining, "GrantCombining"));
            }
        };
        let definition = Self {
            name,
            permissions,
            ordered_levels,
            combining,
            grants_propagate,
            case_insensitive_external_ids,
            nestable,
        };

        // The definition's own check names fields as `resource_type.…`; the
        // caller adds that prefix, so strip it here.
        definition.validate().map_err(|mut error| {
            if let Some(field) = error.field.strip_prefix("resource_type.") {
                error.field = field.to_owned();
            }
            error
        })?;
        Ok(definition)
    }
}

impl FromProto<proto::EntityKey> for EntityKey {
    fn from_proto(message: proto::EntityKey) -> Result<Self, ValidationError> {
        use proto::entity_key::Kind;

        let proto::EntityKey { kind } = message;
        let Some(kind) = kind else {
            return Err(ValidationError::new("kind", "", "an entity key has a kind"));
        };
        let key = match kind {
            Kind::OrganizationId(id) => Self::Organization(OrganizationId::parse("organization_id", &id)?),
            Kind::UserId(id) => Self::User(UserId::parse("user_id", &id)?),
            Kind::Member(proto::MemberKey { organization_id, user_id }) => Self::Member {
                organization_id: OrganizationId::parse("member.organization_id", &organization_id)?,
                user_id: UserId::parse("member.user_id", &user_id)?,
            },
            Kind::TeamId(id) => Self::Team(TeamId::parse("team_id", &id)?),
            Kind::Membership(proto::MembershipKey { team_id, user_id }) => Self::Membership {
                team_id: TeamId::parse("membership.team_id", &team_id)?,
                user_id: UserId::parse("membership.user_id", &user_id)?,
            },
            Kind::ResourceId(id) => Self::Resource(ResourceId::parse("resource_id", &id)?),
            Kind::Grant(proto::GrantKey { resource_id, subject }) => Self::Grant(GrantKey {
                resource_id: ResourceId::parse("grant.resource_id", &resource_id)?,
                subject: subject_from_proto(subject).map_err(|error| error.within("grant.subject"))?,
            }),
            Kind::InvitationId(id) => Self::Invitation(InvitationId::parse("invitation_id", &id)?),
            Kind::ResourceType(name) => Self::ResourceType(required_text("resource_type", name)?),
        };
        Ok(key)
    }
}

fn subject_from_proto(subject: Option<proto::Subject>) -> Result<Subject, ValidationError> {
    let Some(proto::Subject { kind }) = subject else {
        return Err(ValidationError::new("", "", "a grant has a subject"));
    };
    match kind {
        Some(proto::subject::Kind::TeamId(id)) => Ok(Subject::Team(TeamId::parse("team_id", &id)?)),
        Some(proto::subject::Kind::UserId(id)) => Ok(Subject::User(UserId::parse("user_id", &id)?)),
        None => Err(ValidationError::new("kind", "", "a subject is a team or a user")),
    }
}

fn member_role(field: &str, value: i32) -> Result<MemberRole, ValidationError> {
    match proto::MemberRole::try_from(value) {
        Ok(proto::MemberRole::Owner) => Ok(MemberRole::Owner),
        Ok(proto::MemberRole::Administrator) => Ok(MemberRole::Administrator),
        Ok(proto::MemberRole::Collaborator) => Ok(MemberRole::Collaborator),
        Ok(proto::MemberRole::External) => Ok(MemberRole::External),
        Ok(proto::MemberRole::Unspecified) | Err(_) => Err(unknown_enum(field, value, "MemberRole")),
    }
}

/// Parses a team's organization role: administrator, collaborator or none.
/// Owner and external are rejected rather than applied, so a faulty
/// directory cannot make a whole team owners.
fn team_role(field: &str, value: i32) -> Result<Option<MemberRole>, ValidationError> {
    match proto::MemberRole::try_from(value) {
        Ok(proto::MemberRole::Unspecified) => Ok(None),
        Ok(proto::MemberRole::Administrator) => Ok(Some(MemberRole::Administrator)),
        Ok(proto::MemberRole::Collaborator) => Ok(Some(MemberRole::Collaborator)),
        Ok(proto::MemberRole::Owner | proto::MemberRole::External) => Err(ValidationError::new(
            field,
            value.to_string(),
            "a team gives administrator or collaborator only",
        )),
        Err(_) => Err(unknown_enum(field, value, "MemberRole")),
    }
}

fn member_status(field: &str, value: i32) -> Result<MemberStatus, ValidationError> {
    match proto::MemberStatus::try_from(value) {
        Ok(proto::MemberStatus::Active) => Ok(MemberStatus::Active),
        Ok(proto::MemberStatus::Suspended) => Ok(MemberStatus::Suspended),
        Ok(proto::MemberStatus::Unspecified) | Err(_) => Err(unknown_enum(field, value, "MemberStatus")),
    }
}

fn invitation_state(field: &str, value: i32) -> Result<InvitationState, ValidationError> {
    match proto::InvitationState::try_from(value) {
        Ok(proto::InvitationState::Pending) => Ok(InvitationState::Pending),
        Ok(proto::InvitationState::Accepted) => Ok(InvitationState::Accepted),
        Ok(proto::InvitationState::Revoked) => Ok(InvitationState::Revoked),
        Ok(proto::InvitationState::Expired) => Ok(InvitationState::Expired),
        Ok(proto::InvitationState::Unspecified) | Err(_) => Err(unknown_enum(field, value, "InvitationState")),
    }
}

fn unknown_enum(field: &str, value: i32, enumeration: &str) -> ValidationError {
    ValidationError::new(field, value.to_string(), format!("not a known {enumeration} value"))
}

fn required_text(field: &str, text: String) -> Result<String, ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::new(field, "", "must not be empty"));
    }
    Ok(text)
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn optional_id<Id>(
    field: &str,
    text: &str,
    parse: fn(&str, &str) -> Result<Id, ValidationError>,
) -> Result<Option<Id>, ValidationError> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(field, text).map(Some)
    }
}

fn required_timestamp(field: &str, timestamp: Option<prost_types::Timestamp>) -> Result<DateTime<Utc>, ValidationError> {
    optional_timestamp(field, timestamp)?.ok_or_else(|| ValidationError::new(field, "", "a timestamp is required"))
}

fn optional_timestamp(
    field: &str,
    timestamp: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    let Some(prost_types::Timestamp { seconds, nanos }) = timestamp else {
        return Ok(None);
    };
    u32::try_from(nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(seconds, nanos))
        .map(Some)
        .ok_or_else(|| {
            ValidationError::new(
                field,
                format!("{seconds}s {nanos}ns"),
                "not a valid timestamp",
            )
        })
}

/// Reads the entity version back from its etag.
fn version_from_etag(field: &str, etag: &str) -> Result<i64, ValidationError> {
    let etag = Etag::parse(field, etag)?.ok_or_else(|| ValidationError::new(field, "", "an etag is required"))?;
    Ok(etag.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp() -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: 1_750_000_000,
            nanos: 0,
        })
    }

    fn upserted(entity: proto::entity::Kind, organization_id: &str) -> proto::Change {
        proto::Change {
            organization_id: organization_id.to_owned(),
            kind: Some(proto::change::Kind::Upserted(proto::Entity { kind: Some(entity) })),
        }
    }

    fn team_subject(team: TeamId) -> Option<proto::Subject> {
        Some(proto::Subject {
            kind: Some(proto::subject::Kind::TeamId(team.to_string())),
        })
    }

    fn grant(resource: ResourceId, organization: &str) -> proto::Grant {
        proto::Grant {
            resource_id: resource.to_string(),
            subject: team_subject(TeamId::generate()),
            permissions: vec!["view".to_owned()],
            no_access: false,
            expire_time: None,
            granted_by_user_id: String::new(),
            create_time: timestamp(),
            update_time: timestamp(),
            organization_id: organization.to_owned(),
        }
    }

    fn member(role: i32) -> proto::OrganizationMember {
        proto::OrganizationMember {
            organization_id: OrganizationId::generate().to_string(),
            user_id: UserId::generate().to_string(),
            role,
            status: proto::MemberStatus::Active.into(),
            user: None,
            create_time: timestamp(),
            update_time: timestamp(),
            etag: "\"1\"".to_owned(),
        }
    }

    fn batch(epoch: Uuid, revision: i64, changes: Vec<proto::Change>) -> proto::ChangeBatch {
        proto::ChangeBatch {
            revision,
            consistency_token: ConsistencyToken::new(epoch, Revision(revision)).encode(),
            changes,
            actor: "ada".to_owned(),
            request_id: String::new(),
            traceparent: String::new(),
            commit_time: timestamp(),
        }
    }

    #[test]
    fn member_converts_with_version() {
        let converted = Member::from_proto(member(proto::MemberRole::Administrator.into())).unwrap();
        assert_eq!(converted.role, MemberRole::Administrator);
        assert_eq!(converted.version, 1);
    }

    #[test]
    fn unspecified_role_is_named() {
        let error = Member::from_proto(member(proto::MemberRole::Unspecified.into())).unwrap_err();
        assert_eq!(error.field, "role");
    }

    #[test]
    fn malformed_etag_is_named() {
        let message = proto::OrganizationMember {
            etag: "seven".to_owned(),
            ..member(proto::MemberRole::Owner.into())
        };
        let error = Member::from_proto(message).unwrap_err();
        assert_eq!(error.field, "etag");
    }

    #[test]
    fn membership_takes_change_organization() {
        let organization = OrganizationId::generate();
        let membership = proto::TeamMembership {
            team_id: TeamId::generate().to_string(),
            user_id: UserId::generate().to_string(),
            added_by_user_id: String::new(),
            add_time: timestamp(),
            expire_time: None,
            user: None,
            via_team_id: String::new(),
        };
        let change = upserted(proto::entity::Kind::Membership(membership), &organization.to_string());

        let converted = Change::from_proto(change).unwrap();

        let Change::Upserted(Entity::Membership(membership)) = converted else {
            panic!("expected a membership, got {converted:?}");
        };
        assert_eq!(membership.organization_id, organization);
        assert_eq!(membership.added_by, None);
    }

    #[test]
    fn membership_without_organization_is_rejected() {
        let membership = proto::TeamMembership {
            team_id: TeamId::generate().to_string(),
            user_id: UserId::generate().to_string(),
            add_time: timestamp(),
            ..Default::default()
        };
        let change = upserted(proto::entity::Kind::Membership(membership), "");
        let error = Change::from_proto(change).unwrap_err();
        assert_eq!(error.field, "upserted.membership.team_id");
    }

    #[test]
    fn grant_organization_mismatch_is_rejected() {
        let message = grant(ResourceId::generate(), &OrganizationId::generate().to_string());
        let change = upserted(proto::entity::Kind::Grant(message), &OrganizationId::generate().to_string());
        let error = Change::from_proto(change).unwrap_err();
        assert_eq!(error.field, "upserted.grant.organization_id");
    }

    #[test]
    fn grant_without_subject_is_named() {
        let message = proto::Grant {
            subject: None,
            ..grant(ResourceId::generate(), &OrganizationId::generate().to_string())
        };
        let error = grant_from_proto(message, None).unwrap_err();
        assert_eq!(error.field, "subject");
    }

    #[test]
    fn no_access_grant_with_permissions_is_rejected() {
        let message = proto::Grant {
            no_access: true,
            ..grant(ResourceId::generate(), &OrganizationId::generate().to_string())
        };
        let error = grant_from_proto(message, None).unwrap_err();
        assert_eq!(error.field, "permissions");
    }

    #[test]
    fn grant_expiry_converts() {
        let message = proto::Grant {
            expire_time: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 5,
            }),
            ..grant(ResourceId::generate(), "")
        };
        let converted = grant_from_proto(message, Some(OrganizationId::generate())).unwrap();
        let expected = DateTime::from_timestamp(1_800_000_000, 5).unwrap();
        assert_eq!(converted.expire_time, Some(expected));
    }

    #[test]
    fn negative_nanos_are_rejected() {
        let message = proto::Grant {
            create_time: Some(prost_types::Timestamp { seconds: 1, nanos: -1 }),
            ..grant(ResourceId::generate(), "")
        };
        let error = grant_from_proto(message, Some(OrganizationId::generate())).unwrap_err();
        assert_eq!(error.field, "create_time");
    }

    #[test]
    fn resource_type_converts_and_validates() {
        let valid = proto::ResourceType {
            name: "kdrive.folder".to_owned(),
            permissions: vec!["view".to_owned(), "modify".to_owned()],
            ordered_levels: true,
            combining: proto::GrantCombining::IndividualPrecedence.into(),
            grants_propagate: true,
            case_insensitive_external_ids: false,
            nestable: true,
        };
        let converted = ResourceTypeDef::from_proto(valid.clone()).unwrap();
        assert_eq!(converted.combining, Combining::IndividualPrecedence);

        let not_nestable = proto::ResourceType {
            nestable: false,
            ..valid
        };
        let error = ResourceTypeDef::from_proto(not_nestable).unwrap_err();
        assert_eq!(error.field, "grants_propagate");
    }

    #[test]
    fn deleted_grant_key_converts() {
        let resource = ResourceId::generate();
        let user = UserId::generate();
        let change = proto::Change {
            organization_id: OrganizationId::generate().to_string(),
            kind: Some(proto::change::Kind::Deleted(proto::EntityKey {
                kind: Some(proto::entity_key::Kind::Grant(proto::GrantKey {
                    resource_id: resource.to_string(),
                    subject: Some(proto::Subject {
                        kind: Some(proto::subject::Kind::UserId(user.to_string())),
                    }),
                })),
            })),
        };

        let converted = Change::from_proto(change).unwrap();

        let Change::Deleted { key, organization_id } = converted else {
            panic!("expected a deletion, got {converted:?}");
        };
        assert_eq!(
            key,
            EntityKey::Grant(GrantKey {
                resource_id: resource,
                subject: Subject::User(user),
            })
        );
        assert!(organization_id.is_some());
    }

    #[test]
    fn deleted_key_without_kind_is_named() {
        let change = proto::Change {
            organization_id: String::new(),
            kind: Some(proto::change::Kind::Deleted(proto::EntityKey { kind: None })),
        };
        let error = Change::from_proto(change).unwrap_err();
        assert_eq!(error.field, "deleted.kind");
    }

    #[test]
    fn batch_error_names_change_position() {
        let epoch = Uuid::now_v7();
        let good = proto::Change {
            organization_id: String::new(),
            kind: Some(proto::change::Kind::Deleted(proto::EntityKey {
                kind: Some(proto::entity_key::Kind::UserId(UserId::generate().to_string())),
            })),
        };
        let bad = proto::Change {
            organization_id: String::new(),
            kind: None,
        };
        let error = change_batch_from_proto(batch(epoch, 4, vec![good, bad]), epoch).unwrap_err();
        assert_eq!(error.field, "changes[1].kind");
    }

    #[test]
    fn batch_token_must_match_revision() {
        let epoch = Uuid::now_v7();
        let message = proto::ChangeBatch {
            consistency_token: ConsistencyToken::new(epoch, Revision(5)).encode(),
            ..batch(epoch, 4, Vec::new())
        };
        let error = change_batch_from_proto(message, epoch).unwrap_err();
        assert_eq!(error.field, "consistency_token");
    }

    #[test]
    fn batch_of_other_installation_is_rejected() {
        let message = batch(Uuid::now_v7(), 4, Vec::new());
        let error = change_batch_from_proto(message, Uuid::now_v7()).unwrap_err();
        assert_eq!(error.field, "consistency_token");
    }

    #[test]
    fn batch_converts_metadata() {
        let epoch = Uuid::now_v7();
        let received = change_batch_from_proto(batch(epoch, 4, Vec::new()), epoch).unwrap();
        assert_eq!(received.batch.revision, Revision(4));
        assert_eq!(received.batch.actor.as_deref(), Some("ada"));
        assert_eq!(received.batch.request_id, None);
        assert_eq!(received.token, ConsistencyToken::new(epoch, Revision(4)));
    }
}
