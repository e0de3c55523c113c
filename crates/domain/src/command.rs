//! Validated inputs of the directory's mutations.
//!
//! The gRPC layer builds these from requests (parsing ids, enums and
//! timestamps); [`validate`](NewOrganization::validate) methods check the text
//! rules and batch limits, naming fields in protobuf field-path form relative
//! to the request (`members[3].user_id`). The storage layer calls them again
//! before writing, so a command that skipped the gRPC layer is checked too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::{InvitationId, OrganizationId, ResourceId, TeamId, UserId};
use crate::model::{MemberRole, MemberStatus, OrganizationSettings, Subject};
use crate::text::{
    MAX_EXTERNAL_ID_CHARS, MAX_IDEMPOTENCY_KEY_CHARS, MAX_NAME_CHARS, check_color,
    check_description, check_email, check_identifier, check_login, check_name,
    check_optional_text,
};

/// Maximum number of items in one batch of users, members, team memberships
/// or resources.
pub const MAX_BATCH_ITEMS: usize = 1_000;
/// Maximum number of changes in one batch of grants.
pub const MAX_GRANT_CHANGES: usize = 10_000;
/// Maximum number of teams an invitation adds the invited person to.
pub const MAX_INVITATION_TEAMS: usize = 100;
/// Maximum nesting depth of teams: a top-level team is at depth 1, and a
/// team may have at most this many teams on its path to the top, itself
/// included. Deeper trees are rejected when a team is created or moved.
pub const MAX_TEAM_DEPTH: usize = 32;

/// The expected version of an entity, parsed from an etag.
///
/// The etag of an entity at version `n` is the text `"n"`, quotes included,
/// as in HTTP entity tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Etag(pub i64);

impl Etag {
    /// Returns the etag text of an entity at `version`.
    pub fn of_version(version: i64) -> String {
        format!("\"{version}\"")
    }

    /// Parses an etag; empty text means "no check" and returns `None`.
    pub fn parse(field: &str, text: &str) -> Result<Option<Self>, ValidationError> {
        if text.is_empty() {
            return Ok(None);
        }
        let version = text
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .and_then(|digits| digits.parse::<i64>().ok())
            .filter(|version| *version >= 0);
        version.map(|version| Some(Self(version))).ok_or_else(|| {
            ValidationError::new(
                field,
                text,
                "not an etag; pass the etag exactly as a directory response returned it",
            )
        })
    }

    /// Whether an entity at `version` matches this etag.
    pub fn matches(self, version: i64) -> bool {
        self.0 == version
    }
}

/// Checks an idempotency key: printable text of at most 128 characters.
pub fn check_idempotency_key(field: &str, key: &str) -> Result<(), ValidationError> {
    check_name(field, key, MAX_IDEMPOTENCY_KEY_CHARS)
}

fn check_batch_size(field: &str, count: usize, max: usize) -> Result<(), ValidationError> {
    if count > max {
        return Err(ValidationError::new(
            field,
            count.to_string(),
            format!("{count} items; at most {max} fit in one request, split the batch"),
        ));
    }
    Ok(())
}

fn check_not_empty(field: &str, count: usize) -> Result<(), ValidationError> {
    if count == 0 {
        return Err(ValidationError::new(field, "", "at least one item is required"));
    }
    Ok(())
}

/// Checks a resource's external id: required, single-line, at most 512
/// characters.
pub fn check_external_id(field: &str, external_id: &str) -> Result<(), ValidationError> {
    if external_id.is_empty() {
        return Err(ValidationError::new(field, external_id, "must not be empty"));
    }
    check_optional_text(field, external_id, MAX_EXTERNAL_ID_CHARS)
}

impl OrganizationSettings {
    /// Checks the text of the settings. The storage layer checks each
    /// default against the resource types in force.
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        for (index, default) in self.resource_type_defaults.iter().enumerate() {
            let entry = format!("{field}.resource_type_defaults[{index}]");
            check_identifier(&format!("{entry}.resource_type"), &default.resource_type)?;
            if let Some(level) = &default.base_level {
                check_identifier(&format!("{entry}.base_level"), level)?;
            }
            let repeated = self.resource_type_defaults[..index]
                .iter()
                .any(|earlier| earlier.resource_type == default.resource_type);
            if repeated {
                return Err(ValidationError::new(
                    format!("{entry}.resource_type"),
                    &default.resource_type,
                    "at most one default per resource type",
                ));
            }
        }
        Ok(())
    }
}

/// Creates an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrganization {
    /// Unique ignoring case.
    pub name: String,
    /// Empty takes the name.
    pub display_name: String,
    pub settings: OrganizationSettings,
    /// Made the first owner.
    pub owner_user_id: Option<UserId>,
}

impl NewOrganization {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_name("name", &self.name, MAX_NAME_CHARS)?;
        check_optional_text("display_name", &self.display_name, MAX_NAME_CHARS)?;
        self.settings.validate("settings")
    }
}

/// Looks an organization up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganizationLookup {
    Id(OrganizationId),
    /// Compared ignoring case.
    Name(String),
}

/// Changes an organization; `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationUpdate {
    pub id: OrganizationId,
    pub display_name: Option<String>,
    pub settings: Option<OrganizationSettings>,
    pub etag: Option<Etag>,
}

impl OrganizationUpdate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(display_name) = &self.display_name {
            check_optional_text("display_name", display_name, MAX_NAME_CHARS)?;
        }
        if let Some(settings) = &self.settings {
            settings.validate("settings")?;
        }
        Ok(())
    }
}

/// Creates a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Unique ignoring case, stored as given.
    pub login: String,
    /// Unique ignoring case when present.
    pub email: Option<String>,
    /// Empty takes the login.
    pub display_name: String,
}

impl NewUser {
    /// Checks the user; `prefix` is the path of the message (`users[2]`), or
    /// empty for a top-level request.
    pub fn validate(&self, prefix: &str) -> Result<(), ValidationError> {
        check_login(&join(prefix, "login"), &self.login)?;
        if let Some(email) = &self.email {
            check_email(&join(prefix, "email"), email)?;
        }
        check_optional_text(&join(prefix, "display_name"), &self.display_name, MAX_NAME_CHARS)
    }
}

/// Finds or creates many users by login; an existing login returns the
/// existing user unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCreateUsers {
    pub users: Vec<NewUser>,
}

impl BatchCreateUsers {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_not_empty("users", self.users.len())?;
        check_batch_size("users", self.users.len(), MAX_BATCH_ITEMS)?;
        for (index, user) in self.users.iter().enumerate() {
            user.validate(&format!("users[{index}]"))?;
        }
        Ok(())
    }
}

/// Looks a user up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserLookup {
    Id(UserId),
    /// Compared ignoring case.
    Login(String),
    /// Compared ignoring case.
    Email(String),
}

/// Changes a user; `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    pub id: UserId,
    pub login: Option<String>,
    /// `Some(None)` removes the e-mail address.
    pub email: Option<Option<String>>,
    pub display_name: Option<String>,
    pub etag: Option<Etag>,
}

impl UserUpdate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(login) = &self.login {
            check_login("login", login)?;
        }
        if let Some(Some(email)) = &self.email {
            check_email("email", email)?;
        }
        if let Some(display_name) = &self.display_name {
            check_optional_text("display_name", display_name, MAX_NAME_CHARS)?;
        }
        Ok(())
    }
}

/// A user to make a member of an organization, or whose role and status to
/// change when they already are one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub user_id: UserId,
    pub role: MemberRole,
    pub status: MemberStatus,
}

/// Adds one member; fails with "already exists" when the user is a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMember {
    pub organization_id: OrganizationId,
    pub member: MemberSpec,
}

/// Adds many members, or sets the role and status of existing ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAddMembers {
    pub organization_id: OrganizationId,
    pub members: Vec<MemberSpec>,
}

impl BatchAddMembers {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_not_empty("members", self.members.len())?;
        check_batch_size("members", self.members.len(), MAX_BATCH_ITEMS)?;
        for (index, member) in self.members.iter().enumerate() {
            let repeated = self.members[..index]
                .iter()
                .any(|earlier| earlier.user_id == member.user_id);
            if repeated {
                return Err(ValidationError::new(
                    format!("members[{index}].user_id"),
                    member.user_id.to_string(),
                    "the user appears twice in the batch",
                ));
            }
        }
        Ok(())
    }
}

/// Changes a member's role or status; `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUpdate {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub role: Option<MemberRole>,
    pub status: Option<MemberStatus>,
    pub etag: Option<Etag>,
}

/// A user to add to a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTeamMember {
    pub user_id: UserId,
    pub expire_time: Option<DateTime<Utc>>,
}

/// A grant given to a team as it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTeamGrant {
    pub resource_id: ResourceId,
    pub permissions: Vec<String>,
    pub expire_time: Option<DateTime<Utc>>,
}

/// Creates a team with its first members, leaders and grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTeam {
    pub organization_id: OrganizationId,
    /// Unique in the organization ignoring case.
    pub name: String,
    pub description: String,
    pub color: String,
    pub parent_team_id: Option<TeamId>,
    pub members: Vec<NewTeamMember>,
    /// Each leader must be among `members`.
    pub leader_user_ids: Vec<UserId>,
    pub grants: Vec<NewTeamGrant>,
    pub added_by: Option<UserId>,
}

impl NewTeam {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_name("name", &self.name, MAX_NAME_CHARS)?;
        check_description("description", &self.description)?;
        check_color("color", &self.color)?;
        check_batch_size("members", self.members.len(), MAX_BATCH_ITEMS)?;
        check_unique_users("members", self.members.iter().map(|member| member.user_id))?;
        check_batch_size("leader_user_ids", self.leader_user_ids.len(), MAX_BATCH_ITEMS)?;
        for (index, leader) in self.leader_user_ids.iter().enumerate() {
            if !self.members.iter().any(|member| member.user_id == *leader) {
                return Err(ValidationError::new(
                    format!("leader_user_ids[{index}]"),
                    leader.to_string(),
                    "every leader must also be listed in members",
                ));
            }
        }
        check_batch_size("grants", self.grants.len(), MAX_BATCH_ITEMS)?;
        for (index, grant) in self.grants.iter().enumerate() {
            let repeated = self.grants[..index]
                .iter()
                .any(|earlier| earlier.resource_id == grant.resource_id);
            if repeated {
                return Err(ValidationError::new(
                    format!("grants[{index}].resource_id"),
                    grant.resource_id.to_string(),
                    "the resource appears twice in the grants",
                ));
            }
            check_permissions_present(&format!("grants[{index}].permissions"), &grant.permissions)?;
        }
        Ok(())
    }
}

/// Changes a team's name, description or color; `None` fields stay as they
/// are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamUpdate {
    pub id: TeamId,
    pub name: Option<String>,
    pub description: Option<String>,
    pub color: Option<String>,
    pub etag: Option<Etag>,
}

impl TeamUpdate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(name) = &self.name {
            check_name("name", name, MAX_NAME_CHARS)?;
        }
        if let Some(description) = &self.description {
            check_description("description", description)?;
        }
        if let Some(color) = &self.color {
            check_color("color", color)?;
        }
        Ok(())
    }
}

/// Replaces a team's leaders; each must be a member of the team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTeamLeaders {
    pub team_id: TeamId,
    pub leader_user_ids: Vec<UserId>,
    pub etag: Option<Etag>,
}

impl SetTeamLeaders {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_batch_size("leader_user_ids", self.leader_user_ids.len(), MAX_BATCH_ITEMS)?;
        check_unique_users("leader_user_ids", self.leader_user_ids.iter().copied())
    }
}

/// Moves a team under another team of its organization, or to the top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTeamParent {
    pub team_id: TeamId,
    pub parent_team_id: Option<TeamId>,
    pub etag: Option<Etag>,
}

/// Gives a team an organization role, or takes it away with `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTeamRole {
    pub team_id: TeamId,
    pub role: Option<MemberRole>,
    pub etag: Option<Etag>,
}

impl SetTeamRole {
    /// Only administrator and collaborator can be given to a team: owners
    /// stay personal because each is a legal representative, and external
    /// is the role of people outside the organization.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self.role {
            None | Some(MemberRole::Administrator | MemberRole::Collaborator) => Ok(()),
            Some(MemberRole::Owner) => Err(ValidationError::new(
                "role",
                MemberRole::Owner.as_str(),
                "the owner role cannot be given to a team; make each owner a member with role owner",
            )),
            Some(MemberRole::External) => Err(ValidationError::new(
                "role",
                MemberRole::External.as_str(),
                "a team can be given administrator or collaborator, not external",
            )),
        }
    }
}

/// Adds users to a team, or updates the expiry of existing members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTeamMembers {
    pub team_id: TeamId,
    pub members: Vec<NewTeamMember>,
    pub added_by: Option<UserId>,
}

impl AddTeamMembers {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_not_empty("members", self.members.len())?;
        check_batch_size("members", self.members.len(), MAX_BATCH_ITEMS)?;
        check_unique_users("members", self.members.iter().map(|member| member.user_id))
    }
}

/// Removes users from a team; users that are not members are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveTeamMembers {
    pub team_id: TeamId,
    pub user_ids: Vec<UserId>,
}

impl RemoveTeamMembers {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_not_empty("user_ids", self.user_ids.len())?;
        check_batch_size("user_ids", self.user_ids.len(), MAX_BATCH_ITEMS)
    }
}

/// The parent of a new resource, by id or by external id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceParent {
    Id(ResourceId),
    /// The external id of a resource of the same type and organization,
    /// possibly created earlier in the same batch.
    ExternalId(String),
}

/// A resource to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewResource {
    pub resource_type: String,
    pub external_id: String,
    pub display_name: String,
    pub parent: Option<ResourceParent>,
    pub inherits: bool,
}

impl NewResource {
    /// Checks the resource; `prefix` is the path of the message
    /// (`resource` or `resources[4]`).
    pub fn validate(&self, prefix: &str) -> Result<(), ValidationError> {
        check_identifier(&join(prefix, "resource_type"), &self.resource_type)?;
        check_external_id(&join(prefix, "external_id"), &self.external_id)?;
        check_optional_text(&join(prefix, "display_name"), &self.display_name, MAX_NAME_CHARS)?;
        if let Some(ResourceParent::ExternalId(parent)) = &self.parent {
            check_external_id(&join(prefix, "parent_external_id"), parent)?;
        }
        Ok(())
    }
}

/// Creates resources of one organization; parents come before children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCreateResources {
    pub organization_id: OrganizationId,
    pub resources: Vec<NewResource>,
}

impl BatchCreateResources {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_not_empty("resources", self.resources.len())?;
        check_batch_size("resources", self.resources.len(), MAX_BATCH_ITEMS)?;
        for (index, resource) in self.resources.iter().enumerate() {
            resource.validate(&format!("resources[{index}]"))?;
        }
        Ok(())
    }
}

/// Looks a resource up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceLookup {
    Id(ResourceId),
    /// Compared ignoring case for types with case-insensitive external ids.
    Key {
        organization_id: OrganizationId,
        resource_type: String,
        external_id: String,
    },
}

/// Changes a resource; `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceUpdate {
    pub id: ResourceId,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    /// `Some(None)` makes the resource a root.
    pub parent_resource_id: Option<Option<ResourceId>>,
    pub inherits: Option<bool>,
    pub etag: Option<Etag>,
}

impl ResourceUpdate {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(display_name) = &self.display_name {
            check_optional_text("display_name", display_name, MAX_NAME_CHARS)?;
        }
        if let Some(external_id) = &self.external_id {
            check_external_id("external_id", external_id)?;
        }
        Ok(())
    }
}

/// Gives a subject access to a resource, replacing its earlier grant there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSpec {
    pub resource_id: ResourceId,
    pub subject: Subject,
    /// Empty exactly when `no_access` is set.
    pub permissions: Vec<String>,
    pub no_access: bool,
    pub expire_time: Option<DateTime<Utc>>,
    pub granted_by: Option<UserId>,
}

impl GrantSpec {
    /// Checks the shape of the grant; `prefix` is the path of the message
    /// (empty, or `changes[7]`). Permission names are checked against the
    /// resource's type by the storage layer.
    pub fn validate(&self, prefix: &str) -> Result<(), ValidationError> {
        let permissions_field = join(prefix, "permissions");
        if self.no_access {
            if let Subject::Team(team_id) = self.subject {
                return Err(ValidationError::new(
                    join(prefix, "no_access"),
                    team_id.to_string(),
                    "only a user may be given an explicit \"no access\"; revoke the team's grant instead",
                ));
            }
            if !self.permissions.is_empty() {
                return Err(ValidationError::new(
                    permissions_field,
                    self.permissions.join(","),
                    "a \"no access\" grant carries no permissions",
                ));
            }
            return Ok(());
        }
        check_permissions_present(&permissions_field, &self.permissions)
    }
}

/// One change of a grant batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantChange {
    Set(GrantSpec),
    Revoke {
        resource_id: ResourceId,
        subject: Subject,
    },
}

impl GrantChange {
    pub fn resource_id(&self) -> ResourceId {
        match self {
            Self::Set(spec) => spec.resource_id,
            Self::Revoke { resource_id, .. } => *resource_id,
        }
    }

    pub fn subject(&self) -> Subject {
        match self {
            Self::Set(spec) => spec.subject,
            Self::Revoke { subject, .. } => *subject,
        }
    }
}

/// Sets and revokes grants of one organization in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSetGrants {
    pub organization_id: OrganizationId,
    pub changes: Vec<GrantChange>,
}

impl BatchSetGrants {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_not_empty("changes", self.changes.len())?;
        check_batch_size("changes", self.changes.len(), MAX_GRANT_CHANGES)?;
        let mut seen = std::collections::HashSet::with_capacity(self.changes.len());
        for (index, change) in self.changes.iter().enumerate() {
            if let GrantChange::Set(spec) = change {
                spec.validate(&format!("changes[{index}]"))?;
            }
            if !seen.insert((change.resource_id(), change.subject())) {
                return Err(ValidationError::new(
                    format!("changes[{index}]"),
                    change.resource_id().to_string(),
                    "the same resource and subject appear twice in the batch; keep one change per grant",
                ));
            }
        }
        Ok(())
    }
}

/// Invites a person by e-mail into teams of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitation {
    pub organization_id: OrganizationId,
    pub email: String,
    pub team_ids: Vec<TeamId>,
    /// `None` takes the default of 30 days from now.
    pub expire_time: Option<DateTime<Utc>>,
    pub invited_by: Option<UserId>,
}

impl NewInvitation {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_email("email", &self.email)?;
        check_batch_size("team_ids", self.team_ids.len(), MAX_INVITATION_TEAMS)?;
        for (index, team_id) in self.team_ids.iter().enumerate() {
            if self.team_ids[..index].contains(team_id) {
                return Err(ValidationError::new(
                    format!("team_ids[{index}]"),
                    team_id.to_string(),
                    "the team appears twice",
                ));
            }
        }
        Ok(())
    }
}

/// Accepts an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptInvitation {
    pub id: InvitationId,
    /// Used only when no user has the invitation's e-mail address yet.
    pub login: Option<String>,
    pub display_name: String,
}

impl AcceptInvitation {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(login) = &self.login {
            check_login("login", login)?;
        }
        check_optional_text("display_name", &self.display_name, MAX_NAME_CHARS)
    }
}

fn check_permissions_present(field: &str, permissions: &[String]) -> Result<(), ValidationError> {
    if permissions.is_empty() {
        return Err(ValidationError::new(
            field,
            "",
            "at least one permission is required (only a user grant may be \"no access\")",
        ));
    }
    Ok(())
}

fn check_unique_users(
    field: &str,
    user_ids: impl Iterator<Item = UserId>,
) -> Result<(), ValidationError> {
    let mut seen = std::collections::HashSet::new();
    for (index, user_id) in user_ids.enumerate() {
        if !seen.insert(user_id) {
            let item = if field.ends_with("_ids") {
                format!("{field}[{index}]")
            } else {
                format!("{field}[{index}].user_id")
            };
            return Err(ValidationError::new(
                item,
                user_id.to_string(),
                "the user appears twice",
            ));
        }
    }
    Ok(())
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn etag_round_trips() {
        let text = Etag::of_version(7);
        assert_eq!(Etag::parse("etag", &text), Ok(Some(Etag(7))));
    }

    #[test]
    fn empty_etag_means_no_check() {
        assert_eq!(Etag::parse("etag", ""), Ok(None));
    }

    #[test]
    fn malformed_etag_is_rejected() {
        for text in ["7", "\"x\"", "\"-1\"", "\"7"] {
            assert!(Etag::parse("etag", text).is_err(), "{text}");
        }
    }

    #[test]
    fn team_leader_must_be_listed_member() {
        let team = NewTeam {
            organization_id: OrganizationId::generate(),
            name: "SIG Docs".to_owned(),
            description: String::new(),
            color: String::new(),
            parent_team_id: None,
            members: Vec::new(),
            leader_user_ids: vec![UserId::generate()],
            grants: Vec::new(),
            added_by: None,
        };
        let error = team.validate().unwrap_err();
        assert_eq!(error.field, "leader_user_ids[0]");
    }

    #[test]
    fn team_role_owner_is_rejected() {
        let command = SetTeamRole {
            team_id: TeamId::generate(),
            role: Some(MemberRole::Owner),
            etag: None,
        };
        let error = command.validate().unwrap_err();
        assert_eq!(error.field, "role");
    }

    #[test]
    fn team_role_external_is_rejected() {
        let command = SetTeamRole {
            team_id: TeamId::generate(),
            role: Some(MemberRole::External),
            etag: None,
        };
        assert!(command.validate().is_err());
    }

    #[test]
    fn team_role_administrator_is_valid() {
        let command = SetTeamRole {
            team_id: TeamId::generate(),
            role: Some(MemberRole::Administrator),
            etag: None,
        };
        assert_eq!(command.validate(), Ok(()));
    }

    #[test]
    fn team_no_access_is_rejected() {
        let spec = GrantSpec {
            resource_id: ResourceId::generate(),
            subject: Subject::Team(TeamId::generate()),
            permissions: Vec::new(),
            no_access: true,
            expire_time: None,
            granted_by: None,
        };
        let error = spec.validate("changes[2]").unwrap_err();
        assert_eq!(error.field, "changes[2].no_access");
    }

    #[test]
    fn batch_user_field_is_named() {
        let batch = BatchCreateUsers {
            users: vec![NewUser {
                login: "-bad".to_owned(),
                email: None,
                display_name: String::new(),
            }],
        };
        let error = batch.validate().unwrap_err();
        assert_eq!(error.field, "users[0].login");
    }
}
