//! Turning what a person types into directory entities: organizations by
//! name or id, users by login, e-mail address or id, teams by name or id,
//! resources as `TYPE:EXTERNAL_ID`.

use std::str::FromStr;

use workteams_domain::{OrganizationId, TeamId, UserId};
use workteams_proto::authz::v1 as authz;
use workteams_proto::directory::v1 as proto;

use crate::connect::call;
use crate::desired::team_key;
use crate::error::CliError;

/// Page size of list calls.
const PAGE_SIZE: i32 = 1_000;

pub type Directory = crate::connect::DirectoryClient;

/// A resource named on the command line as `TYPE:EXTERNAL_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceArg {
    pub resource_type: String,
    pub external_id: String,
}

impl FromStr for ResourceArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Type names have no ':', so the first one ends the type; external
        // ids may contain more.
        match text.split_once(':') {
            Some((resource_type, external_id))
                if !resource_type.is_empty() && !external_id.is_empty() =>
            {
                Ok(Self {
                    resource_type: resource_type.to_owned(),
                    external_id: external_id.to_owned(),
                })
            }
            _ => Err(format!(
                "expected TYPE:EXTERNAL_ID such as git.repository:kubernetes, not {text:?}"
            )),
        }
    }
}

impl std::fmt::Display for ResourceArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.resource_type, self.external_id)
    }
}

/// Builds the sidecar's reference to an organization: an id when the text
/// is one, a name otherwise.
pub fn organization_ref(text: &str) -> authz::OrganizationRef {
    let kind = if OrganizationId::parse("organization", text).is_ok() {
        authz::organization_ref::Kind::Id(text.to_owned())
    } else {
        authz::organization_ref::Kind::Name(text.to_owned())
    };
    authz::OrganizationRef { kind: Some(kind) }
}

/// Builds the sidecar's reference to a user: an id, an e-mail address (with
/// '@') or a login.
pub fn user_ref(text: &str) -> authz::UserRef {
    let kind = if UserId::parse("user", text).is_ok() {
        authz::user_ref::Kind::Id(text.to_owned())
    } else if text.contains('@') {
        authz::user_ref::Kind::Email(text.to_owned())
    } else {
        authz::user_ref::Kind::Login(text.to_owned())
    };
    authz::UserRef { kind: Some(kind) }
}

pub fn resource_ref(organization: &str, resource: &ResourceArg) -> authz::ResourceRef {
    authz::ResourceRef {
        kind: Some(authz::resource_ref::Kind::Key(authz::ResourceKey {
            organization: Some(organization_ref(organization)),
            resource_type: resource.resource_type.clone(),
            external_id: resource.external_id.clone(),
        })),
    }
}

/// Maps "not found" to a message naming what was looked up.
fn not_found(error: CliError, what: String) -> CliError {
    if error.code() == Some(tonic::Code::NotFound) {
        CliError::NotFound(format!("{what} not found"))
    } else {
        error
    }
}

pub async fn organization(
    directory: &Directory,
    text: &str,
) -> Result<proto::Organization, CliError> {
    let lookup = if OrganizationId::parse("organization", text).is_ok() {
        proto::get_organization_request::Lookup::Id(text.to_owned())
    } else {
        proto::get_organization_request::Lookup::Name(text.to_owned())
    };
    let request = proto::GetOrganizationRequest {
        lookup: Some(lookup),
    };
    let response = call(
        directory,
        "reading the organization",
        request,
        |mut client, request| async move { client.get_organization(request).await },
    )
    .await
    .map_err(|error| not_found(error, format!("organization {text}")))?;
    response
        .organization
        .ok_or_else(|| CliError::NotFound(format!("organization {text} not found")))
}

pub async fn user(directory: &Directory, text: &str) -> Result<proto::User, CliError> {
    let lookup = if UserId::parse("user", text).is_ok() {
        proto::get_user_request::Lookup::Id(text.to_owned())
    } else if text.contains('@') {
        proto::get_user_request::Lookup::Email(text.to_owned())
    } else {
        proto::get_user_request::Lookup::Login(text.to_owned())
    };
    let request = proto::GetUserRequest {
        lookup: Some(lookup),
    };
    let response = call(
        directory,
        "reading the user",
        request,
        |mut client, request| async move { client.get_user(request).await },
    )
    .await
    .map_err(|error| not_found(error, format!("user {text}")))?;
    response
        .user
        .ok_or_else(|| CliError::NotFound(format!("user {text} not found")))
}

/// Finds a team of the organization by id, or by name ignoring case.
pub async fn team(
    directory: &Directory,
    organization_id: &str,
    text: &str,
) -> Result<proto::Team, CliError> {
    if TeamId::parse("team", text).is_ok() {
        let request = proto::GetTeamRequest {
            id: text.to_owned(),
        };
        let response = call(
            directory,
            "reading the team",
            request,
            |mut client, request| async move { client.get_team(request).await },
        )
        .await
        .map_err(|error| not_found(error, format!("team {text}")))?;
        return response
            .team
            .ok_or_else(|| CliError::NotFound(format!("team {text} not found")));
    }

    let wanted = team_key(text);
    list_teams(directory, organization_id)
        .await?
        .into_iter()
        .find(|team| team_key(&team.name) == wanted)
        .ok_or_else(|| CliError::NotFound(format!("team {text} not found in the organization")))
}

pub async fn resource(
    directory: &Directory,
    organization_id: &str,
    resource: &ResourceArg,
) -> Result<proto::Resource, CliError> {
    let request = proto::GetResourceRequest {
        lookup: Some(proto::get_resource_request::Lookup::Key(
            proto::ResourceKey {
                organization_id: organization_id.to_owned(),
                resource_type: resource.resource_type.clone(),
                external_id: resource.external_id.clone(),
            },
        )),
    };
    let response = call(
        directory,
        "reading the resource",
        request,
        |mut client, request| async move { client.get_resource(request).await },
    )
    .await
    .map_err(|error| not_found(error, format!("resource {resource}")))?;
    response
        .resource
        .ok_or_else(|| CliError::NotFound(format!("resource {resource} not found")))
}

pub async fn resource_by_id(directory: &Directory, id: &str) -> Result<proto::Resource, CliError> {
    let request = proto::GetResourceRequest {
        lookup: Some(proto::get_resource_request::Lookup::Id(id.to_owned())),
    };
    let response = call(
        directory,
        "reading a resource",
        request,
        |mut client, request| async move { client.get_resource(request).await },
    )
    .await?;
    response
        .resource
        .ok_or_else(|| CliError::NotFound(format!("resource {id} not found")))
}

pub async fn list_teams(
    directory: &Directory,
    organization_id: &str,
) -> Result<Vec<proto::Team>, CliError> {
    let mut teams = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListTeamsRequest {
            organization_id: organization_id.to_owned(),
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
            parent_team_id: String::new(),
        };
        let response = call(
            directory,
            "listing teams",
            request,
            |mut client, request| async move { client.list_teams(request).await },
        )
        .await?;
        teams.extend(response.teams);
        if response.next_page_token.is_empty() {
            return Ok(teams);
        }
        page_token = response.next_page_token;
    }
}

pub async fn list_members(
    directory: &Directory,
    organization_id: &str,
) -> Result<Vec<proto::OrganizationMember>, CliError> {
    let mut members = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListOrganizationMembersRequest {
            organization_id: organization_id.to_owned(),
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
        };
        let response = call(
            directory,
            "listing members",
            request,
            |mut client, request| async move { client.list_organization_members(request).await },
        )
        .await?;
        members.extend(response.members);
        if response.next_page_token.is_empty() {
            return Ok(members);
        }
        page_token = response.next_page_token;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn resource_argument_splits_at_first_colon() {
        let parsed: ResourceArg = "kdrive.folder:a:b".parse().unwrap();
        assert_eq!(parsed.resource_type, "kdrive.folder");
        assert_eq!(parsed.external_id, "a:b");
    }

    #[test]
    fn resource_argument_needs_both_parts() {
        assert!("git.repository".parse::<ResourceArg>().is_err());
        assert!(":x".parse::<ResourceArg>().is_err());
        assert!("x:".parse::<ResourceArg>().is_err());
    }

    #[test]
    fn user_reference_kinds() {
        let id = UserId::generate().to_string();
        assert!(matches!(
            user_ref(&id).kind,
            Some(authz::user_ref::Kind::Id(_))
        ));
        assert!(matches!(
            user_ref("a@b.example").kind,
            Some(authz::user_ref::Kind::Email(_))
        ));
        assert!(matches!(
            user_ref("dev0001").kind,
            Some(authz::user_ref::Kind::Login(_))
        ));
    }
}
