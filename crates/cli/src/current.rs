//! The state the directory holds for the organizations being synced, built
//! from its snapshot export (one stream per organization) and user look-ups.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use workteams_domain::{
    MemberRole, MemberStatus, OrganizationId, OrganizationSettings, ResourceId,
    ResourceTypeDefault, Subject, TeamId, UserId,
};
use workteams_proto::directory::v1 as proto;

use crate::desired::login_key;
use crate::error::CliError;

/// Users and organizations as the directory stores them.
#[derive(Debug, Clone, Default)]
pub struct CurrentState {
    /// Known users by folded login.
    pub users: HashMap<String, CurrentUser>,
    /// Folded login of every known user id.
    pub logins: HashMap<UserId, String>,
    /// Organizations by folded name.
    pub organizations: HashMap<String, CurrentOrganization>,
    /// The revision the snapshots were read at, as a consistency token.
    pub consistency_token: Option<String>,
}

impl CurrentState {
    pub fn add_user(&mut self, user: CurrentUser) {
        let key = login_key(&user.login);
        self.logins.insert(user.id, key.clone());
        self.users.insert(key, user);
    }

    pub fn user_login(&self, id: UserId) -> String {
        self.logins
            .get(&id)
            .and_then(|key| self.users.get(key))
            .map_or_else(|| id.to_string(), |user| user.login.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: UserId,
    pub login: String,
    pub email: Option<String>,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMember {
    pub role: MemberRole,
    pub status: MemberStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentTeam {
    pub name: String,
    pub description: String,
    pub color: String,
    pub parent: Option<TeamId>,
    pub leaders: BTreeSet<UserId>,
    /// The organization role the team gives its members.
    pub organization_role: Option<MemberRole>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentResource {
    pub resource_type: String,
    pub external_id: String,
    pub display_name: String,
    pub parent: Option<ResourceId>,
    pub inherits: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentGrant {
    pub permissions: Vec<String>,
    pub no_access: bool,
    pub expire_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentOrganization {
    pub id: OrganizationId,
    pub name: String,
    pub display_name: String,
    pub settings: OrganizationSettings,
    pub members: BTreeMap<UserId, CurrentMember>,
    pub teams: BTreeMap<TeamId, CurrentTeam>,
    /// Expiry of every direct team membership.
    pub memberships: BTreeMap<(TeamId, UserId), Option<DateTime<Utc>>>,
    pub resources: BTreeMap<ResourceId, CurrentResource>,
    pub grants: BTreeMap<(ResourceId, Subject), CurrentGrant>,
}

impl CurrentOrganization {
    pub fn new(
        id: OrganizationId,
        name: String,
        display_name: String,
        settings: OrganizationSettings,
    ) -> Self {
        Self {
            id,
            name,
            display_name,
            settings,
            members: BTreeMap::new(),
            teams: BTreeMap::new(),
            memberships: BTreeMap::new(),
            resources: BTreeMap::new(),
            grants: BTreeMap::new(),
        }
    }
}

/// Builds one organization and the users it mentions from the entities of
/// a snapshot export filtered by that organization.
pub fn organization_from_snapshot(
    entities: Vec<proto::Entity>,
    state: &mut CurrentState,
) -> Result<Option<CurrentOrganization>, CliError> {
    let mut organization: Option<CurrentOrganization> = None;
    let mut members = Vec::new();
    let mut teams = Vec::new();
    let mut memberships = Vec::new();
    let mut resources = Vec::new();
    let mut grants = Vec::new();

    for entity in entities {
        match entity.kind {
            Some(proto::entity::Kind::Organization(value)) => {
                organization = Some(convert_organization(value)?)
            }
            Some(proto::entity::Kind::User(value)) => state.add_user(convert_user(value)?),
            Some(proto::entity::Kind::Member(value)) => members.push(value),
            Some(proto::entity::Kind::Team(value)) => teams.push(value),
            Some(proto::entity::Kind::Membership(value)) => memberships.push(value),
            Some(proto::entity::Kind::Resource(value)) => resources.push(value),
            Some(proto::entity::Kind::Grant(value)) => grants.push(value),
            Some(proto::entity::Kind::Invitation(_) | proto::entity::Kind::ResourceType(_))
            | None => {}
        }
    }

    let Some(mut organization) = organization else {
        return Ok(None);
    };

    for member in members {
        let user_id = parse_user_id("member.user_id", &member.user_id)?;
        if let Some(user) = member.user {
            state.add_user(convert_user(user)?);
        }
        organization.members.insert(
            user_id,
            CurrentMember {
                role: convert_role(member.role)?,
                status: convert_status(member.status),
            },
        );
    }
    for team in teams {
        let id = parse_team_id("team.id", &team.id)?;
        let parent = optional(&team.parent_team_id, |text| {
            parse_team_id("team.parent_team_id", text)
        })?;
        let leaders = team
            .leader_user_ids
            .iter()
            .map(|text| parse_user_id("team.leader_user_ids", text))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let organization_role = match team.organization_role {
            0 => None,
            role => Some(convert_role(role)?),
        };
        organization.teams.insert(
            id,
            CurrentTeam {
                name: team.name,
                description: team.description,
                color: team.color,
                parent,
                leaders,
                organization_role,
            },
        );
    }
    for membership in memberships {
        let team_id = parse_team_id("membership.team_id", &membership.team_id)?;
        let user_id = parse_user_id("membership.user_id", &membership.user_id)?;
        if let Some(user) = membership.user {
            state.add_user(convert_user(user)?);
        }
        organization.memberships.insert(
            (team_id, user_id),
            membership.expire_time.map(timestamp_to_time),
        );
    }
    for resource in resources {
        let id = parse_resource_id("resource.id", &resource.id)?;
        let parent = optional(&resource.parent_resource_id, |text| {
            parse_resource_id("resource.parent_resource_id", text)
        })?;
        organization.resources.insert(
            id,
            CurrentResource {
                resource_type: resource.resource_type,
                external_id: resource.external_id,
                display_name: resource.display_name,
                parent,
                inherits: resource.inherits,
            },
        );
    }
    for grant in grants {
        let resource_id = parse_resource_id("grant.resource_id", &grant.resource_id)?;
        let subject = convert_subject(grant.subject)?;
        organization.grants.insert(
            (resource_id, subject),
            CurrentGrant {
                permissions: grant.permissions,
                no_access: grant.no_access,
                expire_time: grant.expire_time.map(timestamp_to_time),
            },
        );
    }

    Ok(Some(organization))
}

pub fn convert_organization(
    organization: proto::Organization,
) -> Result<CurrentOrganization, CliError> {
    let id = OrganizationId::parse("organization.id", &organization.id)
        .map_err(CliError::from_directory)?;
    let settings = convert_settings(organization.settings.unwrap_or_default());
    Ok(CurrentOrganization::new(
        id,
        organization.name,
        organization.display_name,
        settings,
    ))
}

pub fn convert_settings(settings: proto::OrganizationSettings) -> OrganizationSettings {
    let mut resource_type_defaults: Vec<ResourceTypeDefault> = settings
        .resource_type_defaults
        .into_iter()
        .map(|default| ResourceTypeDefault {
            resource_type: default.resource_type,
            base_level: Some(default.base_level).filter(|level| !level.is_empty()),
            administrators_get_highest_level: default.administrators_get_highest_level,
        })
        .collect();
    resource_type_defaults.sort_by(|left, right| left.resource_type.cmp(&right.resource_type));
    OrganizationSettings {
        leaders_manage_members: settings.leaders_manage_members,
        resource_type_defaults,
    }
}

pub fn settings_to_proto(settings: &OrganizationSettings) -> proto::OrganizationSettings {
    proto::OrganizationSettings {
        leaders_manage_members: settings.leaders_manage_members,
        resource_type_defaults: settings
            .resource_type_defaults
            .iter()
            .map(|default| proto::ResourceTypeDefault {
                resource_type: default.resource_type.clone(),
                base_level: default.base_level.clone().unwrap_or_default(),
                administrators_get_highest_level: default.administrators_get_highest_level,
            })
            .collect(),
    }
}

pub fn convert_user(user: proto::User) -> Result<CurrentUser, CliError> {
    Ok(CurrentUser {
        id: parse_user_id("user.id", &user.id)?,
        login: user.login,
        email: Some(user.email).filter(|email| !email.is_empty()),
        display_name: user.display_name,
    })
}

pub fn convert_role(role: i32) -> Result<MemberRole, CliError> {
    match proto::MemberRole::try_from(role) {
        Ok(proto::MemberRole::Owner) => Ok(MemberRole::Owner),
        Ok(proto::MemberRole::Administrator) => Ok(MemberRole::Administrator),
        Ok(proto::MemberRole::Collaborator) => Ok(MemberRole::Collaborator),
        Ok(proto::MemberRole::External) => Ok(MemberRole::External),
        Ok(proto::MemberRole::Unspecified) | Err(_) => Err(CliError::Protocol(format!(
            "the directory sent the unknown member role {role}"
        ))),
    }
}

pub fn role_to_proto(role: MemberRole) -> proto::MemberRole {
    match role {
        MemberRole::Owner => proto::MemberRole::Owner,
        MemberRole::Administrator => proto::MemberRole::Administrator,
        MemberRole::Collaborator => proto::MemberRole::Collaborator,
        MemberRole::External => proto::MemberRole::External,
    }
}

/// Unspecified reads as active, as the directory defaults it.
pub fn convert_status(status: i32) -> MemberStatus {
    match proto::MemberStatus::try_from(status) {
        Ok(proto::MemberStatus::Suspended) => MemberStatus::Suspended,
        _ => MemberStatus::Active,
    }
}

pub fn status_to_proto(status: MemberStatus) -> proto::MemberStatus {
    match status {
        MemberStatus::Active => proto::MemberStatus::Active,
        MemberStatus::Suspended => proto::MemberStatus::Suspended,
    }
}

pub fn convert_subject(subject: Option<proto::Subject>) -> Result<Subject, CliError> {
    match subject.and_then(|subject| subject.kind) {
        Some(proto::subject::Kind::TeamId(id)) => {
            Ok(Subject::Team(parse_team_id("grant.subject.team_id", &id)?))
        }
        Some(proto::subject::Kind::UserId(id)) => {
            Ok(Subject::User(parse_user_id("grant.subject.user_id", &id)?))
        }
        None => Err(CliError::Protocol(
            "the directory sent a grant without a subject".to_owned(),
        )),
    }
}

pub fn subject_to_proto(subject: Subject) -> proto::Subject {
    let kind = match subject {
        Subject::Team(id) => proto::subject::Kind::TeamId(id.to_string()),
        Subject::User(id) => proto::subject::Kind::UserId(id.to_string()),
    };
    proto::Subject { kind: Some(kind) }
}

pub fn timestamp_to_time(timestamp: prost_types::Timestamp) -> DateTime<Utc> {
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(0);
    DateTime::from_timestamp(timestamp.seconds, nanos).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn time_to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn optional<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, CliError>,
) -> Result<Option<T>, CliError> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

pub fn parse_user_id(field: &str, text: &str) -> Result<UserId, CliError> {
    UserId::parse(field, text).map_err(CliError::from_directory)
}

pub fn parse_team_id(field: &str, text: &str) -> Result<TeamId, CliError> {
    TeamId::parse(field, text).map_err(CliError::from_directory)
}

pub fn parse_resource_id(field: &str, text: &str) -> Result<ResourceId, CliError> {
    ResourceId::parse(field, text).map_err(CliError::from_directory)
}
