//! Everyday administration through the directory: organizations, users,
//! members, teams, team members, resources and grants, plus the status of
//! both services.
//!
//! Every write stores its consistency token in the data folder, so a
//! following `check`, `access` or `who` reads at least that revision.

use std::collections::HashMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use workteams_domain::MemberRole;
use workteams_proto::authz::v1 as authz;
use workteams_proto::directory::v1 as proto;

use crate::connect::{Endpoints, call};
use crate::current::{
    convert_role, convert_status, role_to_proto, time_to_timestamp, timestamp_to_time,
};
use crate::error::CliError;
use crate::output::{OutputFormat, Table, or_dash, print_json, print_text};
use crate::render::time_text;
use crate::resolve::{self, Directory, ResourceArg};

const PAGE_SIZE: i32 = 1_000;

/// Stores the token of a write and prints what was done.
fn finish_write(
    endpoints: &Endpoints,
    token: &str,
    message: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if !token.is_empty() {
        endpoints.token_store().save(token)?;
    }
    print_text(out, &format!("{message}\n"))
}

fn idempotency_key() -> String {
    format!("workteams-cli-{}", uuid::Uuid::now_v7().simple())
}

#[derive(Debug, Clone, Serialize)]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub leaders_manage_members: bool,
    pub defaults: Vec<DefaultView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DefaultView {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub base_level: Option<String>,
    pub administrators_get_highest_level: bool,
}

fn organization_view(organization: proto::Organization) -> OrganizationView {
    let settings = organization.settings.unwrap_or_default();
    OrganizationView {
        id: organization.id,
        name: organization.name,
        display_name: organization.display_name,
        leaders_manage_members: settings.leaders_manage_members,
        defaults: settings
            .resource_type_defaults
            .into_iter()
            .map(|default| DefaultView {
                resource_type: default.resource_type,
                base_level: Some(default.base_level).filter(|level| !level.is_empty()),
                administrators_get_highest_level: default.administrators_get_highest_level,
            })
            .collect(),
    }
}

pub async fn organizations_list(
    endpoints: &Endpoints,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let mut organizations = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListOrganizationsRequest {
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
        };
        let response = call(
            &directory,
            "listing organizations",
            request,
            |mut client, request| async move { client.list_organizations(request).await },
        )
        .await?;
        organizations.extend(response.organizations.into_iter().map(organization_view));
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }

    match format {
        OutputFormat::Json => print_json(out, &organizations),
        OutputFormat::Table => {
            let mut table = Table::new(&["NAME", "DISPLAY NAME", "ID"]);
            for organization in &organizations {
                table.push(vec![
                    organization.name.clone(),
                    organization.display_name.clone(),
                    organization.id.clone(),
                ]);
            }
            print_text(out, &table.render())
        }
    }
}

pub async fn organizations_show(
    endpoints: &Endpoints,
    organization: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let view = organization_view(resolve::organization(&directory, organization).await?);
    match format {
        OutputFormat::Json => print_json(out, &view),
        OutputFormat::Table => {
            let mut text = format!(
                "name: {}\ndisplay name: {}\nid: {}\nleaders manage members: {}\n",
                view.name,
                view.display_name,
                view.id,
                if view.leaders_manage_members {
                    "yes"
                } else {
                    "no"
                }
            );
            for default in &view.defaults {
                text.push_str(&format!(
                    "default on {}: base level {}{}\n",
                    default.resource_type,
                    default.base_level.as_deref().unwrap_or("none"),
                    if default.administrators_get_highest_level {
                        ", owners and administrators hold the highest level"
                    } else {
                        ""
                    }
                ));
            }
            print_text(out, &text)
        }
    }
}

pub async fn organizations_create(
    endpoints: &Endpoints,
    name: &str,
    display_name: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let request = proto::CreateOrganizationRequest {
        name: name.to_owned(),
        display_name: display_name.unwrap_or(name).to_owned(),
        settings: None,
        owner_user_id: String::new(),
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "creating the organization",
        request,
        |mut client, request| async move { client.create_organization(request).await },
    )
    .await?;
    let id = response
        .organization
        .map(|organization| organization.id)
        .unwrap_or_default();
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!("created organization {name} ({id})"),
        out,
    )
}

pub async fn organizations_add_member(
    endpoints: &Endpoints,
    organization: &str,
    user: &str,
    role: MemberRole,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let user = resolve::user(&directory, user).await?;
    let request = proto::BatchAddOrganizationMembersRequest {
        organization_id: organization.id.clone(),
        members: vec![proto::NewOrganizationMember {
            user_id: user.id.clone(),
            role: role_to_proto(role).into(),
            status: proto::MemberStatus::Active.into(),
        }],
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "adding the member",
        request,
        |mut client, request| async move { client.batch_add_organization_members(request).await },
    )
    .await?;
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!(
            "{} is a member of {} as {}",
            user.login,
            organization.name,
            role.as_str()
        ),
        out,
    )
}

pub async fn organizations_remove_member(
    endpoints: &Endpoints,
    organization: &str,
    user: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let user = resolve::user(&directory, user).await?;
    let request = proto::RemoveOrganizationMemberRequest {
        organization_id: organization.id.clone(),
        user_id: user.id.clone(),
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "removing the member",
        request,
        |mut client, request| async move { client.remove_organization_member(request).await },
    )
    .await?;
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!(
            "removed {} from {} with their team memberships and grants",
            user.login, organization.name
        ),
        out,
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: String,
    pub login: String,
    pub email: Option<String>,
    pub display_name: String,
    /// Set when listing an organization's members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

fn user_view(user: proto::User) -> UserView {
    UserView {
        id: user.id,
        login: user.login,
        email: Some(user.email).filter(|email| !email.is_empty()),
        display_name: user.display_name,
        role: None,
        status: None,
    }
}

/// Lists every user, or the members of one organization with their role.
pub async fn users_list(
    endpoints: &Endpoints,
    organization: Option<&str>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let mut users = Vec::new();
    match organization {
        Some(organization) => {
            let organization = resolve::organization(&directory, organization).await?;
            for member in resolve::list_members(&directory, &organization.id).await? {
                let role = convert_role(member.role)?;
                let status = convert_status(member.status);
                let mut view = user_view(member.user.unwrap_or_else(|| proto::User {
                    id: member.user_id.clone(),
                    ..proto::User::default()
                }));
                view.role = Some(role.as_str());
                view.status = Some(status.as_str());
                users.push(view);
            }
        }
        None => {
            let mut page_token = String::new();
            loop {
                let request = proto::ListUsersRequest {
                    page_size: PAGE_SIZE,
                    page_token: page_token.clone(),
                };
                let response = call(
                    &directory,
                    "listing users",
                    request,
                    |mut client, request| async move { client.list_users(request).await },
                )
                .await?;
                users.extend(response.users.into_iter().map(user_view));
                if response.next_page_token.is_empty() {
                    break;
                }
                page_token = response.next_page_token;
            }
        }
    }
    users.sort_by_key(|user| user.login.to_lowercase());

    match format {
        OutputFormat::Json => print_json(out, &users),
        OutputFormat::Table => {
            let with_roles = organization.is_some();
            let mut table = if with_roles {
                Table::new(&["LOGIN", "ROLE", "STATUS", "E-MAIL", "DISPLAY NAME"])
            } else {
                Table::new(&["LOGIN", "E-MAIL", "DISPLAY NAME", "ID"])
            };
            for user in &users {
                let email = or_dash(user.email.as_deref().unwrap_or_default());
                if with_roles {
                    table.push(vec![
                        user.login.clone(),
                        user.role.unwrap_or("-").to_owned(),
                        user.status.unwrap_or("-").to_owned(),
                        email,
                        or_dash(&user.display_name),
                    ]);
                } else {
                    table.push(vec![
                        user.login.clone(),
                        email,
                        or_dash(&user.display_name),
                        user.id.clone(),
                    ]);
                }
            }
            print_text(out, &table.render())
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UserDetailView {
    #[serde(flatten)]
    pub user: UserView,
    pub teams: Vec<UserTeamView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserTeamView {
    pub organization_id: String,
    pub team: String,
    pub team_id: String,
    pub expires: Option<String>,
}

pub async fn users_show(
    endpoints: &Endpoints,
    user: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let user = resolve::user(&directory, user).await?;
    let mut teams = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListUserTeamsRequest {
            user_id: user.id.clone(),
            organization_id: String::new(),
            include_expired: false,
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
        };
        let response = call(
            &directory,
            "listing the user's teams",
            request,
            |mut client, request| async move { client.list_user_teams(request).await },
        )
        .await?;
        for (team, membership) in response.teams.into_iter().zip(response.memberships) {
            teams.push(UserTeamView {
                organization_id: team.organization_id,
                team: team.name,
                team_id: team.id,
                expires: membership
                    .expire_time
                    .map(|time| time_text(timestamp_to_time(time))),
            });
        }
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }

    let view = UserDetailView {
        user: user_view(user),
        teams,
    };
    match format {
        OutputFormat::Json => print_json(out, &view),
        OutputFormat::Table => {
            let mut text = format!(
                "login: {}\ne-mail: {}\ndisplay name: {}\nid: {}\n",
                view.user.login,
                view.user.email.as_deref().unwrap_or("-"),
                or_dash(&view.user.display_name),
                view.user.id
            );
            if view.teams.is_empty() {
                text.push_str("teams: none\n");
            } else {
                text.push_str("teams:\n");
                let names = organization_names(
                    &directory,
                    view.teams.iter().map(|team| team.organization_id.as_str()),
                )
                .await?;
                for team in &view.teams {
                    let organization = names
                        .get(&team.organization_id)
                        .cloned()
                        .unwrap_or_default();
                    match &team.expires {
                        Some(expiry) => text.push_str(&format!(
                            "  {organization}/{} (until {expiry})\n",
                            team.team
                        )),
                        None => text.push_str(&format!("  {organization}/{}\n", team.team)),
                    }
                }
            }
            print_text(out, &text)
        }
    }
}

async fn organization_names<'a>(
    directory: &Directory,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, String>, CliError> {
    let mut names = HashMap::new();
    for id in ids {
        if !names.contains_key(id) {
            let organization = resolve::organization(directory, id).await?;
            names.insert(id.to_owned(), organization.name);
        }
    }
    Ok(names)
}

pub async fn users_create(
    endpoints: &Endpoints,
    login: &str,
    email: Option<&str>,
    display_name: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let request = proto::CreateUserRequest {
        login: login.to_owned(),
        email: email.unwrap_or_default().to_owned(),
        display_name: display_name.unwrap_or_default().to_owned(),
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "creating the user",
        request,
        |mut client, request| async move { client.create_user(request).await },
    )
    .await?;
    let id = response.user.map(|user| user.id).unwrap_or_default();
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!("created user {login} ({id})"),
        out,
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub color: Option<String>,
    pub parent: Option<String>,
    pub leaders: Vec<String>,
    /// The organization role the team gives its members.
    pub organization_role: Option<&'static str>,
}

async fn team_views(
    directory: &Directory,
    organization_id: &str,
) -> Result<Vec<TeamView>, CliError> {
    let teams = resolve::list_teams(directory, organization_id).await?;
    let logins = member_logins(directory, organization_id).await?;
    let names: HashMap<String, String> = teams
        .iter()
        .map(|team| (team.id.clone(), team.name.clone()))
        .collect();
    let mut views: Vec<TeamView> = teams
        .into_iter()
        .map(|team| TeamView {
            organization_role: match team.organization_role {
                0 => None,
                role => convert_role(role).ok().map(MemberRole::as_str),
            },
            parent: Some(team.parent_team_id)
                .filter(|id| !id.is_empty())
                .map(|id| names.get(&id).cloned().unwrap_or(id)),
            leaders: team
                .leader_user_ids
                .iter()
                .map(|id| logins.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect(),
            id: team.id,
            name: team.name,
            description: team.description,
            color: Some(team.color).filter(|color| !color.is_empty()),
        })
        .collect();
    views.sort_by_key(|view| view.name.to_lowercase());
    Ok(views)
}

async fn member_logins(
    directory: &Directory,
    organization_id: &str,
) -> Result<HashMap<String, String>, CliError> {
    Ok(resolve::list_members(directory, organization_id)
        .await?
        .into_iter()
        .map(|member| {
            let login = member
                .user
                .map(|user| user.login)
                .unwrap_or_else(|| member.user_id.clone());
            (member.user_id, login)
        })
        .collect())
}

pub async fn teams_list(
    endpoints: &Endpoints,
    organization: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let views = team_views(&directory, &organization.id).await?;
    match format {
        OutputFormat::Json => print_json(out, &views),
        OutputFormat::Table => {
            let mut table = Table::new(&["NAME", "PARENT", "LEADERS", "DESCRIPTION"]);
            for team in &views {
                table.push(vec![
                    team.name.clone(),
                    or_dash(team.parent.as_deref().unwrap_or_default()),
                    or_dash(&team.leaders.join(",")),
                    team.description
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                ]);
            }
            print_text(out, &table.render())
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamDetailView {
    #[serde(flatten)]
    pub team: TeamView,
    pub members: Vec<TeamMemberView>,
    pub grants: Vec<TeamGrantView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamMemberView {
    pub login: String,
    pub user_id: String,
    pub leader: bool,
    pub expires: Option<String>,
    /// The descendant team the user is a direct member of, when listed with
    /// descendants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_team: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamGrantView {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub resource: String,
    pub permissions: Vec<String>,
    pub expires: Option<String>,
}

pub async fn teams_show(
    endpoints: &Endpoints,
    organization: &str,
    team: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let team = resolve::team(&directory, &organization.id, team).await?;
    let views = team_views(&directory, &organization.id).await?;
    let Some(view) = views.into_iter().find(|view| view.id == team.id) else {
        return Err(CliError::NotFound(format!("team {} not found", team.name)));
    };
    let members = team_members(&directory, &team, false).await?;
    let grants = team_grants(&directory, &organization.id, &team.id).await?;
    let detail = TeamDetailView {
        team: view,
        members,
        grants,
    };

    match format {
        OutputFormat::Json => print_json(out, &detail),
        OutputFormat::Table => {
            let mut text = format!(
                "team: {}\nid: {}\nparent: {}\norganization role: {}\ncolor: {}\ndescription: {}\n",
                detail.team.name,
                detail.team.id,
                detail.team.parent.as_deref().unwrap_or("none"),
                detail.team.organization_role.unwrap_or("none"),
                detail.team.color.as_deref().unwrap_or("none"),
                or_dash(&detail.team.description)
            );
            text.push_str(&format!("members ({}):\n", detail.members.len()));
            for member in &detail.members {
                let mut line = format!("  {}", member.login);
                if member.leader {
                    line.push_str(" (leader)");
                }
                if let Some(expiry) = &member.expires {
                    line.push_str(&format!(" until {expiry}"));
                }
                text.push_str(&line);
                text.push('\n');
            }
            text.push_str(&format!("grants ({}):\n", detail.grants.len()));
            for grant in &detail.grants {
                let mut line = format!(
                    "  {} {}: {}",
                    grant.resource_type,
                    grant.resource,
                    grant.permissions.join(", ")
                );
                if let Some(expiry) = &grant.expires {
                    line.push_str(&format!(" until {expiry}"));
                }
                text.push_str(&line);
                text.push('\n');
            }
            print_text(out, &text)
        }
    }
}

async fn team_members(
    directory: &Directory,
    team: &proto::Team,
    include_descendants: bool,
) -> Result<Vec<TeamMemberView>, CliError> {
    let mut members = Vec::new();
    let mut page_token = String::new();
    let mut team_names: Option<HashMap<String, String>> = None;
    loop {
        let request = proto::ListTeamMembersRequest {
            team_id: team.id.clone(),
            include_descendants,
            include_expired: false,
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
        };
        let response = call(
            directory,
            "listing team members",
            request,
            |mut client, request| async move { client.list_team_members(request).await },
        )
        .await?;
        for membership in response.memberships {
            let via_team = if membership.via_team_id.is_empty() || membership.via_team_id == team.id
            {
                None
            } else {
                if team_names.is_none() {
                    let teams = resolve::list_teams(directory, &team.organization_id).await?;
                    team_names = Some(teams.into_iter().map(|team| (team.id, team.name)).collect());
                }
                team_names
                    .as_ref()
                    .and_then(|names| names.get(&membership.via_team_id).cloned())
                    .or(Some(membership.via_team_id.clone()))
            };
            members.push(TeamMemberView {
                login: membership
                    .user
                    .map(|user| user.login)
                    .unwrap_or_else(|| membership.user_id.clone()),
                leader: team.leader_user_ids.contains(&membership.user_id),
                user_id: membership.user_id,
                expires: membership
                    .expire_time
                    .map(|time| time_text(timestamp_to_time(time))),
                via_team,
            });
        }
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }
    members.sort_by_key(|member| member.login.to_lowercase());
    Ok(members)
}

async fn team_grants(
    directory: &Directory,
    organization_id: &str,
    team_id: &str,
) -> Result<Vec<TeamGrantView>, CliError> {
    let mut grants = Vec::new();
    let mut page_token = String::new();
    let mut resources: HashMap<String, (String, String)> = HashMap::new();
    loop {
        let request = proto::ListGrantsRequest {
            organization_id: organization_id.to_owned(),
            resource_id: String::new(),
            subject: Some(proto::Subject {
                kind: Some(proto::subject::Kind::TeamId(team_id.to_owned())),
            }),
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
        };
        let response = call(
            directory,
            "listing grants",
            request,
            |mut client, request| async move { client.list_grants(request).await },
        )
        .await?;
        for grant in response.grants {
            if !resources.contains_key(&grant.resource_id) {
                let resource = resolve::resource_by_id(directory, &grant.resource_id).await?;
                resources.insert(
                    grant.resource_id.clone(),
                    (resource.resource_type, resource.external_id),
                );
            }
            let (resource_type, external_id) = resources[&grant.resource_id].clone();
            grants.push(TeamGrantView {
                resource_type,
                resource: external_id,
                permissions: grant.permissions,
                expires: grant
                    .expire_time
                    .map(|time| time_text(timestamp_to_time(time))),
            });
        }
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }
    grants.sort_by(|left, right| {
        (&left.resource_type, &left.resource).cmp(&(&right.resource_type, &right.resource))
    });
    Ok(grants)
}

pub struct NewTeam<'a> {
    pub organization: &'a str,
    pub name: &'a str,
    pub parent: Option<&'a str>,
    pub description: Option<&'a str>,
    pub color: Option<&'a str>,
}

pub async fn teams_create(
    endpoints: &Endpoints,
    team: NewTeam<'_>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, team.organization).await?;
    let parent_team_id = match team.parent {
        Some(parent) => {
            resolve::team(&directory, &organization.id, parent)
                .await?
                .id
        }
        None => String::new(),
    };
    let request = proto::CreateTeamRequest {
        organization_id: organization.id.clone(),
        name: team.name.to_owned(),
        description: team.description.unwrap_or_default().to_owned(),
        color: team.color.unwrap_or_default().to_owned(),
        parent_team_id,
        members: Vec::new(),
        leader_user_ids: Vec::new(),
        grants: Vec::new(),
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "creating the team",
        request,
        |mut client, request| async move { client.create_team(request).await },
    )
    .await?;
    let id = response.team.map(|team| team.id).unwrap_or_default();
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!("created team {} in {} ({id})", team.name, organization.name),
        out,
    )
}

pub async fn teams_delete(
    endpoints: &Endpoints,
    organization: &str,
    team: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let team = resolve::team(&directory, &organization.id, team).await?;
    let request = proto::DeleteTeamRequest {
        id: team.id.clone(),
        etag: String::new(),
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "removing the team",
        request,
        |mut client, request| async move { client.delete_team(request).await },
    )
    .await?;
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!("removed team {} with its memberships and grants", team.name),
        out,
    )
}

pub async fn members_list(
    endpoints: &Endpoints,
    organization: &str,
    team: &str,
    include_descendants: bool,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let team = resolve::team(&directory, &organization.id, team).await?;
    let members = team_members(&directory, &team, include_descendants).await?;
    match format {
        OutputFormat::Json => print_json(out, &members),
        OutputFormat::Table => {
            let mut table = Table::new(&["LOGIN", "LEADER", "EXPIRES", "THROUGH"]);
            for member in &members {
                table.push(vec![
                    member.login.clone(),
                    if member.leader { "yes" } else { "no" }.to_owned(),
                    or_dash(member.expires.as_deref().unwrap_or_default()),
                    or_dash(member.via_team.as_deref().unwrap_or_default()),
                ]);
            }
            print_text(out, &table.render())
        }
    }
}

pub async fn members_add(
    endpoints: &Endpoints,
    organization: &str,
    team: &str,
    users: &[String],
    expires: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let team = resolve::team(&directory, &organization.id, team).await?;
    let mut members = Vec::with_capacity(users.len());
    let mut logins = Vec::with_capacity(users.len());
    for user in users {
        let user = resolve::user(&directory, user).await?;
        members.push(proto::NewTeamMember {
            user_id: user.id,
            expire_time: expires.map(time_to_timestamp),
        });
        logins.push(user.login);
    }
    let request = proto::AddTeamMembersRequest {
        team_id: team.id.clone(),
        members,
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "adding team members",
        request,
        |mut client, request| async move { client.add_team_members(request).await },
    )
    .await?;
    let until = expires
        .map(|time| format!(" until {}", time_text(time)))
        .unwrap_or_default();
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!("added {} to team {}{until}", logins.join(", "), team.name),
        out,
    )
}

pub async fn members_remove(
    endpoints: &Endpoints,
    organization: &str,
    team: &str,
    users: &[String],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let team = resolve::team(&directory, &organization.id, team).await?;
    let mut user_ids = Vec::with_capacity(users.len());
    let mut logins = Vec::with_capacity(users.len());
    for user in users {
        let user = resolve::user(&directory, user).await?;
        user_ids.push(user.id);
        logins.push(user.login);
    }
    let request = proto::RemoveTeamMembersRequest {
        team_id: team.id.clone(),
        user_ids,
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "removing team members",
        request,
        |mut client, request| async move { client.remove_team_members(request).await },
    )
    .await?;
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!("removed {} from team {}", logins.join(", "), team.name),
        out,
    )
}

/// The team or user a `grant` or `revoke` is for.
#[derive(Debug, Clone)]
pub enum SubjectArg {
    Team(String),
    User(String),
}

async fn subject(
    directory: &Directory,
    organization_id: &str,
    subject: &SubjectArg,
) -> Result<(proto::Subject, String), CliError> {
    match subject {
        SubjectArg::Team(team) => {
            let team = resolve::team(directory, organization_id, team).await?;
            let kind = proto::subject::Kind::TeamId(team.id);
            Ok((
                proto::Subject { kind: Some(kind) },
                format!("team {}", team.name),
            ))
        }
        SubjectArg::User(user) => {
            let user = resolve::user(directory, user).await?;
            let kind = proto::subject::Kind::UserId(user.id);
            Ok((
                proto::Subject { kind: Some(kind) },
                format!("user {}", user.login),
            ))
        }
    }
}

pub struct GrantArgs<'a> {
    pub organization: &'a str,
    pub resource: &'a ResourceArg,
    pub subject: &'a SubjectArg,
    pub permissions: &'a [String],
    pub no_access: bool,
    pub expires: Option<DateTime<Utc>>,
}

pub async fn grant(
    endpoints: &Endpoints,
    args: GrantArgs<'_>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, args.organization).await?;
    let resource = resolve::resource(&directory, &organization.id, args.resource).await?;
    let (subject, subject_name) = subject(&directory, &organization.id, args.subject).await?;
    let request = proto::GrantAccessRequest {
        resource_id: resource.id.clone(),
        subject: Some(subject),
        permissions: args.permissions.to_vec(),
        no_access: args.no_access,
        expire_time: args.expires.map(time_to_timestamp),
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "granting access",
        request,
        |mut client, request| async move { client.grant_access(request).await },
    )
    .await?;
    let access = if args.no_access {
        "no access".to_owned()
    } else {
        args.permissions.join(", ")
    };
    let until = args
        .expires
        .map(|time| format!(" until {}", time_text(time)))
        .unwrap_or_default();
    finish_write(
        endpoints,
        &response.consistency_token,
        &format!("{subject_name} has {access} on {}{until}", args.resource),
        out,
    )
}

pub async fn revoke(
    endpoints: &Endpoints,
    organization: &str,
    resource: &ResourceArg,
    subject_arg: &SubjectArg,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let found = resolve::resource(&directory, &organization.id, resource).await?;
    let (subject, subject_name) = subject(&directory, &organization.id, subject_arg).await?;
    let request = proto::RevokeAccessRequest {
        resource_id: found.id.clone(),
        subject: Some(subject),
        idempotency_key: idempotency_key(),
    };
    let response = call(
        &directory,
        "revoking access",
        request,
        |mut client, request| async move { client.revoke_access(request).await },
    )
    .await?;
    let message = if response.revoked {
        format!("revoked the grant of {subject_name} on {resource}")
    } else {
        format!("{subject_name} had no grant on {resource}; nothing to revoke")
    };
    finish_write(endpoints, &response.consistency_token, &message, out)
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceView {
    pub id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub external_id: String,
    pub display_name: String,
    pub parent: Option<String>,
    pub inherits: bool,
}

pub async fn resources_list(
    endpoints: &Endpoints,
    organization: &str,
    resource_type: Option<&str>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let mut resources = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListResourcesRequest {
            organization_id: organization.id.clone(),
            resource_type: resource_type.unwrap_or_default().to_owned(),
            parent_resource_id: String::new(),
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
        };
        let response = call(
            &directory,
            "listing resources",
            request,
            |mut client, request| async move { client.list_resources(request).await },
        )
        .await?;
        resources.extend(response.resources);
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }

    let external_ids: HashMap<String, String> = resources
        .iter()
        .map(|resource| (resource.id.clone(), resource.external_id.clone()))
        .collect();
    let mut views: Vec<ResourceView> = resources
        .into_iter()
        .map(|resource| ResourceView {
            parent: Some(resource.parent_resource_id)
                .filter(|id| !id.is_empty())
                .map(|id| external_ids.get(&id).cloned().unwrap_or(id)),
            id: resource.id,
            resource_type: resource.resource_type,
            external_id: resource.external_id,
            display_name: resource.display_name,
            inherits: resource.inherits,
        })
        .collect();
    views.sort_by(|left, right| {
        (&left.resource_type, &left.external_id).cmp(&(&right.resource_type, &right.external_id))
    });

    match format {
        OutputFormat::Json => print_json(out, &views),
        OutputFormat::Table => {
            let mut table =
                Table::new(&["TYPE", "EXTERNAL ID", "DISPLAY NAME", "PARENT", "INHERITS"]);
            for resource in &views {
                table.push(vec![
                    resource.resource_type.clone(),
                    resource.external_id.clone(),
                    resource.display_name.clone(),
                    or_dash(resource.parent.as_deref().unwrap_or_default()),
                    if resource.inherits { "yes" } else { "no" }.to_owned(),
                ]);
            }
            print_text(out, &table.render())
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub directory_revision: i64,
    pub sidecar_ready: bool,
    pub sidecar_connected: bool,
    pub sidecar_revision: i64,
    /// Seconds since the index was last confirmed up to date.
    pub sidecar_staleness_seconds: f64,
    pub organizations: i64,
    pub users: i64,
    pub teams: i64,
    pub memberships: i64,
    pub resources: i64,
    pub grants: i64,
}

pub async fn status(
    endpoints: &Endpoints,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let revision = call(
        &directory,
        "reading the directory revision",
        proto::GetRevisionRequest {},
        |mut client, request| async move { client.get_revision(request).await },
    )
    .await?;
    let sidecar = endpoints.authz().await?;
    let index = call(
        &sidecar,
        "reading the sidecar status",
        authz::GetIndexStatusRequest {},
        |mut client, request| async move { client.get_index_status(request).await },
    )
    .await?;
    let staleness = index
        .staleness
        .map(|duration| duration.seconds as f64 + f64::from(duration.nanos) / 1e9)
        .unwrap_or_default();
    let view = StatusView {
        directory_revision: revision.revision,
        sidecar_ready: index.ready,
        sidecar_connected: index.connected,
        sidecar_revision: index.revision,
        sidecar_staleness_seconds: staleness,
        organizations: index.organizations,
        users: index.users,
        teams: index.teams,
        memberships: index.memberships,
        resources: index.resources,
        grants: index.grants,
    };
    match format {
        OutputFormat::Json => print_json(out, &view),
        OutputFormat::Table => print_text(
            out,
            &format!(
                "directory revision: {}\nsidecar: {}, {}, revision {}, confirmed {:.1} s ago\n\
                 index: {} organizations, {} users, {} teams, {} memberships, {} resources, {} grants\n",
                view.directory_revision,
                if view.sidecar_ready {
                    "ready"
                } else {
                    "not ready"
                },
                if view.sidecar_connected {
                    "connected"
                } else {
                    "disconnected"
                },
                view.sidecar_revision,
                view.sidecar_staleness_seconds,
                view.organizations,
                view.users,
                view.teams,
                view.memberships,
                view.resources,
                view.grants
            ),
        ),
    }
}

/// One audited change of one entity.
#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub revision: i64,
    pub time: Option<String>,
    pub actor: String,
    /// The RPC method's name, such as `CreateTeam`.
    pub method: String,
    pub kind: &'static str,
    /// The entity's id, in the form `ListAuditEvents` filters by.
    pub entity: String,
    /// `created`, `updated` or `removed`.
    pub change: &'static str,
}

/// Lists an organization's audit events, newest first, at most `limit`.
pub async fn audit(
    endpoints: &Endpoints,
    organization: &str,
    actor: Option<&str>,
    limit: usize,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let directory = endpoints.directory().await?;
    let organization = resolve::organization(&directory, organization).await?;
    let mut events = Vec::new();
    let mut page_token = String::new();
    while events.len() < limit {
        let page_size =
            i32::try_from((limit - events.len()).min(PAGE_SIZE as usize)).unwrap_or(PAGE_SIZE);
        let request = proto::ListAuditEventsRequest {
            organization_id: organization.id.clone(),
            actor: actor.unwrap_or_default().to_owned(),
            entity_kind: proto::AuditEntityKind::Unspecified.into(),
            entity_id: String::new(),
            start_time: None,
            end_time: None,
            method: String::new(),
            oldest_first: false,
            page_size,
            page_token: page_token.clone(),
        };
        let response = call(
            &directory,
            "listing audit events",
            request,
            |mut client, request| async move { client.list_audit_events(request).await },
        )
        .await?;
        events.extend(response.audit_events.into_iter().map(audit_view));
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }
    events.truncate(limit);

    match format {
        OutputFormat::Json => print_json(out, &events),
        OutputFormat::Table => {
            let mut table = Table::new(&[
                "REVISION", "TIME", "ACTOR", "METHOD", "CHANGE", "KIND", "ENTITY",
            ]);
            for event in &events {
                table.push(vec![
                    event.revision.to_string(),
                    or_dash(event.time.as_deref().unwrap_or_default()),
                    or_dash(&event.actor),
                    event.method.clone(),
                    event.change.to_owned(),
                    event.kind.to_owned(),
                    event.entity.clone(),
                ]);
            }
            print_text(out, &table.render())
        }
    }
}

fn audit_view(event: proto::AuditEvent) -> AuditView {
    let kind = match proto::AuditEntityKind::try_from(event.entity_kind) {
        Ok(proto::AuditEntityKind::Organization) => "organization",
        Ok(proto::AuditEntityKind::User) => "user",
        Ok(proto::AuditEntityKind::Member) => "member",
        Ok(proto::AuditEntityKind::Team) => "team",
        Ok(proto::AuditEntityKind::Membership) => "membership",
        Ok(proto::AuditEntityKind::Resource) => "resource",
        Ok(proto::AuditEntityKind::Grant) => "grant",
        Ok(proto::AuditEntityKind::Invitation) => "invitation",
        Ok(proto::AuditEntityKind::ResourceType) => "resource type",
        Ok(proto::AuditEntityKind::Unspecified) | Err(_) => "unknown",
    };
    let change = match (&event.before, &event.after) {
        (None, Some(_)) => "created",
        (Some(_), None) => "removed",
        _ => "updated",
    };
    let method = event
        .method
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    AuditView {
        revision: event.revision,
        time: event.time.map(|time| time_text(timestamp_to_time(time))),
        actor: event.actor,
        method,
        kind,
        entity: event
            .entity_key
            .and_then(|key| key.kind)
            .map(entity_key_text)
            .unwrap_or_default(),
        change,
    }
}

fn entity_key_text(key: proto::entity_key::Kind) -> String {
    let subject_text =
        |subject: Option<proto::Subject>| match subject.and_then(|subject| subject.kind) {
            Some(proto::subject::Kind::TeamId(id)) => format!("team:{id}"),
            Some(proto::subject::Kind::UserId(id)) => format!("user:{id}"),
            None => String::new(),
        };
    match key {
        proto::entity_key::Kind::OrganizationId(id)
        | proto::entity_key::Kind::UserId(id)
        | proto::entity_key::Kind::TeamId(id)
        | proto::entity_key::Kind::ResourceId(id)
        | proto::entity_key::Kind::InvitationId(id)
        | proto::entity_key::Kind::ResourceType(id) => id,
        proto::entity_key::Kind::Member(member) => {
            format!("{}/{}", member.organization_id, member.user_id)
        }
        proto::entity_key::Kind::Membership(membership) => {
            format!("{}/{}", membership.team_id, membership.user_id)
        }
        proto::entity_key::Kind::Grant(grant) => {
            format!("{}/{}", grant.resource_id, subject_text(grant.subject))
        }
    }
}
