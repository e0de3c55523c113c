//! `check`, `access` and `who`: questions to the authorization sidecar, with
//! the grants that decided each answer named in words.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use workteams_proto::authz::v1 as authz;

use crate::connect::{Endpoints, TokenTracker, call};
use crate::error::CliError;
use crate::output::{OutputFormat, Table, print_json, print_text};
use crate::resolve::{self, Directory, ResourceArg, organization_ref, resource_ref, user_ref};

/// Page size of effective-access listings.
const PAGE_SIZE: i32 = 1_000;

type Authz = crate::connect::AuthzClient;

/// One grant or rule behind a decision, with names instead of ids.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReasonView {
    /// `individual_grant`, `team_grant`, `organization_base_level` or
    /// `organization_administrator`.
    pub kind: &'static str,
    /// The type of the resource the grant is on.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// The external id of the resource the grant is on: the checked one or
    /// an ancestor it inherits from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The team the grant is given to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The team the user is a direct member of, when it is a child of `team`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_team: Option<String>,
    pub permissions: Vec<String>,
    pub no_access: bool,
}

impl ReasonView {
    /// Describes the reason in one phrase, such as "team sig-docs: write".
    pub fn text(&self, checked_resource: Option<&str>) -> String {
        let access = if self.no_access {
            "no access".to_owned()
        } else {
            self.permissions.join(", ")
        };
        let on = match (&self.resource_type, &self.resource) {
            (Some(resource_type), Some(resource))
                if Some(resource.as_str()) != checked_resource =>
            {
                format!(" on {resource_type} {resource} (inherited)")
            }
            _ => String::new(),
        };
        match self.kind {
            "individual_grant" => format!("individual grant{on}: {access}"),
            "team_grant" => {
                let team = self.team.as_deref().unwrap_or("?");
                match &self.via_team {
                    Some(via) if via != team => {
                        format!("team {team} through its child team {via}{on}: {access}")
                    }
                    _ => format!("team {team}{on}: {access}"),
                }
            }
            "organization_base_level" => format!("organization base level: {access}"),
            "organization_administrator" => {
                format!("organization owner or administrator: {access}")
            }
            _ => format!("unknown rule: {access}"),
        }
    }
}

/// Resolves team and resource ids of reasons into names, one call per id.
struct Namer {
    directory: Directory,
    teams: HashMap<String, String>,
    resources: HashMap<String, (String, String)>,
}

impl Namer {
    fn new(directory: Directory) -> Self {
        Self {
            directory,
            teams: HashMap::new(),
            resources: HashMap::new(),
        }
    }

    /// Loads every team name of an organization in one listing.
    async fn load_teams(&mut self, organization_id: &str) -> Result<(), CliError> {
        for team in resolve::list_teams(&self.directory, organization_id).await? {
            self.teams.insert(team.id, team.name);
        }
        Ok(())
    }

    async fn team(&mut self, id: &str) -> Result<Option<String>, CliError> {
        if id.is_empty() {
            return Ok(None);
        }
        if let Some(name) = self.teams.get(id) {
            return Ok(Some(name.clone()));
        }
        let name = match resolve::team(&self.directory, "", id).await {
            Ok(team) => team.name,
            Err(CliError::NotFound(_)) => id.to_owned(),
            Err(error) => return Err(error),
        };
        self.teams.insert(id.to_owned(), name.clone());
        Ok(Some(name))
    }

    async fn resource(&mut self, id: &str) -> Result<Option<(String, String)>, CliError> {
        if id.is_empty() {
            return Ok(None);
        }
        if let Some(found) = self.resources.get(id) {
            return Ok(Some(found.clone()));
        }
        let found = match resolve::resource_by_id(&self.directory, id).await {
            Ok(resource) => (resource.resource_type, resource.external_id),
            Err(CliError::NotFound(_)) => (String::new(), id.to_owned()),
            Err(error) => return Err(error),
        };
        self.resources.insert(id.to_owned(), found.clone());
        Ok(Some(found))
    }

    async fn reasons(&mut self, reasons: Vec<authz::Reason>) -> Result<Vec<ReasonView>, CliError> {
        let mut views = Vec::with_capacity(reasons.len());
        for reason in reasons {
            let authz::Reason {
                kind,
                resource_id,
                team_id,
                via_team_id,
                permissions,
                no_access,
            } = reason;
            let kind = match authz::ReasonKind::try_from(kind) {
                Ok(authz::ReasonKind::IndividualGrant) => "individual_grant",
                Ok(authz::ReasonKind::TeamGrant) => "team_grant",
                Ok(authz::ReasonKind::OrganizationBaseLevel) => "organization_base_level",
                Ok(authz::ReasonKind::OrganizationAdministrator) => "organization_administrator",
                Ok(authz::ReasonKind::Unspecified) | Err(_) => "unspecified",
            };
            let resource = self.resource(&resource_id).await?;
            views.push(ReasonView {
                kind,
                resource_type: resource
                    .as_ref()
                    .map(|(resource_type, _)| resource_type.clone()),
                resource: resource.map(|(_, external_id)| external_id),
                team: self.team(&team_id).await?,
                via_team: self.team(&via_team_id).await?,
                permissions,
                no_access,
            });
        }
        Ok(views)
    }
}

/// Sends a sidecar call at the freshness of the newest known write. A
/// stored token the sidecar rejects (from another installation) is dropped
/// and the call repeated fully consistent.
async fn authz_call<Request, T, F, Fut>(
    endpoints: &Endpoints,
    client: &Authz,
    action: &str,
    build: impl Fn(authz::Consistency) -> Request,
    method: F,
) -> Result<T, CliError>
where
    Request: Clone,
    F: Fn(Authz, tonic::Request<Request>) -> Fut + Clone,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let store = endpoints.token_store();
    let tokens = TokenTracker::starting_at(store.load());
    let first = call(client, action, build(tokens.consistency()), method.clone()).await;
    match first {
        Err(error)
            if tokens.token().is_some()
                && error.code() == Some(tonic::Code::InvalidArgument)
                && error.names_field("at_least_as_fresh") =>
        {
            tracing::warn!(%error, "the stored consistency token was rejected; reading fully consistent");
            store.clear()?;
            let fully_consistent = authz::Consistency {
                requirement: Some(authz::consistency::Requirement::FullyConsistent(true)),
            };
            call(client, action, build(fully_consistent), method).await
        }
        other => other,
    }
}

#[derive(Debug, Clone)]
pub struct CheckArgs {
    pub organization: String,
    pub user: String,
    pub resource: ResourceArg,
    pub permission: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub allowed: bool,
    pub level: Option<String>,
    pub permissions: Vec<String>,
    pub deny_reason: Option<&'static str>,
    pub reasons: Vec<ReasonView>,
    pub user: String,
    pub user_id: Option<String>,
    pub organization: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub resource: String,
    pub resource_id: Option<String>,
    pub permission: String,
    pub consistency_token: String,
}

/// Runs `check`; returns whether access is allowed.
pub async fn check(
    endpoints: &Endpoints,
    args: &CheckArgs,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<bool, CliError> {
    let client = endpoints.authz().await?;
    let response = authz_call(
        endpoints,
        &client,
        "checking access",
        |consistency| authz::CheckAccessRequest {
            user: Some(user_ref(&args.user)),
            resource: Some(resource_ref(&args.organization, &args.resource)),
            permission: args.permission.clone(),
            consistency: Some(consistency),
        },
        |mut client, request| async move { client.check_access(request).await },
    )
    .await?;

    let authz::CheckAccessResponse {
        allowed,
        level,
        permissions,
        reasons,
        deny_reason,
        consistency_token,
        revision: _,
        staleness: _,
        user_id,
        resource_id,
    } = response;

    let mut namer = Namer::new(endpoints.directory().await?);
    let reasons = namer.reasons(reasons).await?;
    let view = CheckView {
        allowed,
        level: Some(level).filter(|level| !level.is_empty()),
        permissions,
        deny_reason: (!allowed).then(|| deny_reason_name(deny_reason)),
        reasons,
        user: args.user.clone(),
        user_id: Some(user_id).filter(|id| !id.is_empty()),
        organization: args.organization.clone(),
        resource_type: args.resource.resource_type.clone(),
        resource: args.resource.external_id.clone(),
        resource_id: Some(resource_id).filter(|id| !id.is_empty()),
        permission: args.permission.clone(),
        consistency_token,
    };

    match format {
        OutputFormat::Json => print_json(out, &view)?,
        OutputFormat::Table => print_text(out, &check_text(&view))?,
    }
    Ok(allowed)
}

fn check_text(view: &CheckView) -> String {
    let mut text = if view.allowed {
        format!(
            "allowed: {} has {} on {} {} in {}\n",
            view.user, view.permission, view.resource_type, view.resource, view.organization
        )
    } else {
        format!(
            "denied: {} does not have {} on {} {} in {} ({})\n",
            view.user,
            view.permission,
            view.resource_type,
            view.resource,
            view.organization,
            deny_reason_text(view.deny_reason.unwrap_or("unspecified"))
        )
    };
    if let Some(level) = &view.level {
        text.push_str(&format!("level: {level}\n"));
    }
    if !view.permissions.is_empty() {
        text.push_str(&format!(
            "permissions held: {}\n",
            view.permissions.join(", ")
        ));
    }
    if !view.reasons.is_empty() {
        text.push_str("because of:\n");
        for reason in &view.reasons {
            text.push_str(&format!("  {}\n", reason.text(Some(&view.resource))));
        }
    }
    text
}

fn deny_reason_name(reason: i32) -> &'static str {
    match authz::DenyReason::try_from(reason) {
        Ok(authz::DenyReason::NoGrant) => "no_grant",
        Ok(authz::DenyReason::IndividualOverride) => "individual_override",
        Ok(authz::DenyReason::PermissionNotHeld) => "permission_not_held",
        Ok(authz::DenyReason::NotActiveMember) => "not_active_member",
        Ok(authz::DenyReason::UnknownUser) => "unknown_user",
        Ok(authz::DenyReason::UnknownResource) => "unknown_resource",
        Ok(authz::DenyReason::UnknownOrganization) => "unknown_organization",
        Ok(authz::DenyReason::Unspecified) | Err(_) => "unspecified",
    }
}

fn deny_reason_text(name: &str) -> &'static str {
    match name {
        "no_grant" => "no grant reaches the user",
        "individual_override" => "an individual grant overrides the team grants",
        "permission_not_held" => "the grants that reach the user do not include it",
        "not_active_member" => "the user is not an active member of the organization",
        "unknown_user" => "no such user",
        "unknown_resource" => "no such resource",
        "unknown_organization" => "no such organization",
        _ => "no reason given",
    }
}

/// One resource the user can use.
#[derive(Debug, Clone, Serialize)]
pub struct AccessView {
    /// The resource's external id.
    pub resource: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    /// For ordered types the highest level held; null otherwise.
    pub level: Option<String>,
    /// Every permission held, implied lower levels included, lowest first.
    pub permissions: Vec<String>,
    pub reasons: Vec<ReasonView>,
    pub resource_id: String,
}

/// Runs `access`: the resources the user can use in the organization.
pub async fn access(
    endpoints: &Endpoints,
    organization: &str,
    user: &str,
    resource_type: Option<&str>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<Vec<AccessView>, CliError> {
    let client = endpoints.authz().await?;
    let directory = endpoints.directory().await?;
    let entries = list_effective_access(
        endpoints,
        &client,
        authz::list_effective_access_request::Target::User(user_ref(user)),
        Some(organization_ref(organization)),
        resource_type.unwrap_or_default(),
    )
    .await?;

    let mut namer = Namer::new(directory.clone());
    let organization_id = resolve::organization(&directory, organization).await?.id;
    namer.load_teams(&organization_id).await?;

    let mut views = Vec::new();
    for entry in entries {
        if entry.permissions.is_empty() {
            continue;
        }
        namer.resources.insert(
            entry.resource_id.clone(),
            (entry.resource_type.clone(), entry.external_id.clone()),
        );
        views.push(AccessView {
            resource: entry.external_id,
            resource_type: entry.resource_type,
            level: Some(entry.level).filter(|level| !level.is_empty()),
            permissions: entry.permissions,
            reasons: namer.reasons(entry.reasons).await?,
            resource_id: entry.resource_id,
        });
    }
    views.sort_by(|left, right| {
        (&left.resource_type, &left.resource).cmp(&(&right.resource_type, &right.resource))
    });

    match format {
        OutputFormat::Json => print_json(out, &views)?,
        OutputFormat::Table => {
            let mut table = Table::new(&["TYPE", "RESOURCE", "LEVEL", "PERMISSIONS", "BECAUSE OF"]);
            for view in &views {
                table.push(vec![
                    view.resource_type.clone(),
                    view.resource.clone(),
                    view.level.clone().unwrap_or_else(|| "-".to_owned()),
                    view.permissions.join(","),
                    reasons_text(&view.reasons, Some(&view.resource)),
                ]);
            }
            if table.is_empty() {
                print_text(out, &format!("{user} has no access in {organization}\n"))?;
            } else {
                print_text(out, &table.render())?;
            }
        }
    }
    Ok(views)
}

/// One user who can use the resource.
#[derive(Debug, Clone, Serialize)]
pub struct WhoView {
    /// The user's login.
    pub user: String,
    pub user_id: String,
    pub level: Option<String>,
    pub permissions: Vec<String>,
    pub reasons: Vec<ReasonView>,
}

/// Runs `who`: the users who can use the resource, and why.
pub async fn who(
    endpoints: &Endpoints,
    organization: &str,
    resource: &ResourceArg,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<Vec<WhoView>, CliError> {
    let client = endpoints.authz().await?;
    let directory = endpoints.directory().await?;
    let entries = list_effective_access(
        endpoints,
        &client,
        authz::list_effective_access_request::Target::Resource(resource_ref(
            organization,
            resource,
        )),
        None,
        "",
    )
    .await?;

    let mut namer = Namer::new(directory.clone());
    let organization_id = resolve::organization(&directory, organization).await?.id;
    namer.load_teams(&organization_id).await?;

    let mut views = Vec::new();
    for entry in entries {
        if entry.permissions.is_empty() {
            continue;
        }
        views.push(WhoView {
            user: entry.user_login,
            user_id: entry.user_id,
            level: Some(entry.level).filter(|level| !level.is_empty()),
            permissions: entry.permissions,
            reasons: namer.reasons(entry.reasons).await?,
        });
    }
    views.sort_by_key(|view| view.user.to_lowercase());

    match format {
        OutputFormat::Json => print_json(out, &views)?,
        OutputFormat::Table => {
            let mut table = Table::new(&["USER", "LEVEL", "PERMISSIONS", "BECAUSE OF"]);
            for view in &views {
                table.push(vec![
                    view.user.clone(),
                    view.level.clone().unwrap_or_else(|| "-".to_owned()),
                    view.permissions.join(","),
                    reasons_text(&view.reasons, Some(&resource.external_id)),
                ]);
            }
            if table.is_empty() {
                print_text(
                    out,
                    &format!("nobody has access to {resource} in {organization}\n"),
                )?;
            } else {
                print_text(out, &table.render())?;
            }
        }
    }
    Ok(views)
}

fn reasons_text(reasons: &[ReasonView], checked_resource: Option<&str>) -> String {
    reasons
        .iter()
        .map(|reason| reason.text(checked_resource))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn list_effective_access(
    endpoints: &Endpoints,
    client: &Authz,
    target: authz::list_effective_access_request::Target,
    organization: Option<authz::OrganizationRef>,
    resource_type: &str,
) -> Result<Vec<authz::AccessEntry>, CliError> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let response = authz_call(
            endpoints,
            client,
            "listing effective access",
            |consistency| authz::ListEffectiveAccessRequest {
                target: Some(target.clone()),
                organization: organization.clone(),
                resource_type: resource_type.to_owned(),
                page_size: PAGE_SIZE,
                page_token: page_token.clone(),
                consistency: Some(consistency),
            },
            |mut client, request| async move { client.list_effective_access(request).await },
        )
        .await?;
        entries.extend(response.entries);
        if response.next_page_token.is_empty() {
            return Ok(entries);
        }
        page_token = response.next_page_token;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn reason(kind: &'static str) -> ReasonView {
        ReasonView {
            kind,
            resource_type: Some("kdrive.folder".to_owned()),
            resource: Some("10".to_owned()),
            team: Some("Finance".to_owned()),
            via_team: Some("Payroll".to_owned()),
            permissions: vec!["view".to_owned(), "modify".to_owned()],
            no_access: false,
        }
    }

    #[test]
    fn team_reason_names_child_team() {
        let text = reason("team_grant").text(Some("10"));
        assert_eq!(
            text,
            "team Finance through its child team Payroll: view, modify"
        );
    }

    #[test]
    fn inherited_reason_names_ancestor() {
        let text = reason("individual_grant").text(Some("11"));
        assert_eq!(
            text,
            "individual grant on kdrive.folder 10 (inherited): view, modify"
        );
    }
}
