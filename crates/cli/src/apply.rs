//! Applies a plan through the directory's gRPC API, in an order that keeps
//! every call valid. Users come first. Then, per organization: the
//! organization itself, members, resources (parents first), teams (parents
//! first, each created with its members, leaders and grants), memberships of
//! existing teams, leaders, grants, and last the removals.
//!
//! Many entities go in one call where the API has a batch form, so a large
//! import is about a thousand transactions rather than ten thousand. Teams
//! are the exception, with one `CreateTeam` call each. Every call
//! carries an idempotency key (the run's id and the call's number), so a
//! call repeated after a transport failure is applied once. The plan is not
//! applied atomically: after a failure, running the command again computes
//! a plan for what is still missing.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use indicatif::ProgressBar;
use workteams_domain::command::{MAX_BATCH_ITEMS, MAX_GRANT_CHANGES};
use workteams_domain::{
    MemberRole, OrganizationId, ResourceId, ResourceTypeRegistry, Subject, TeamId, UserId,
};
use workteams_proto::directory::v1 as proto;
use crate::connect::DirectoryClient;

use crate::connect::{TokenTracker, call};
use crate::current::{
    CurrentState, convert_user, parse_resource_id, parse_team_id, role_to_proto, settings_to_proto,
    status_to_proto, subject_to_proto, time_to_timestamp,
};
use crate::desired::{ResourceKey, SubjectName, login_key, team_key};
use crate::error::CliError;
use crate::plan::{GrantValue, OrganizationPlan, Plan, TeamAdd};

/// How many `CreateTeam` calls are in flight at once. Each is its own
/// transaction; overlapping them hides the round trips.
const CONCURRENT_TEAM_CREATIONS: usize = 8;

/// Applies `plan`. Returns the newest consistency token of the writes that
/// were made, also when a later call failed, and the outcome.
pub async fn apply_plan(
    directory: DirectoryClient,
    plan: &Plan,
    current: &CurrentState,
    registry: &ResourceTypeRegistry,
    progress: &ProgressBar,
) -> (TokenTracker, Result<(), CliError>) {
    let mut applier = Applier {
        directory,
        registry,
        run_id: uuid::Uuid::now_v7().simple().to_string(),
        call_number: 0,
        tokens: TokenTracker::default(),
        progress,
        users: current
            .users
            .iter()
            .map(|(key, user)| (key.clone(), user.id))
            .collect(),
        prune: plan.options.prune,
    };

    let outcome = applier.apply_all(plan).await;
    (applier.tokens, outcome)
}

struct Applier<'a> {
    directory: DirectoryClient,
    registry: &'a ResourceTypeRegistry,
    run_id: String,
    call_number: u64,
    tokens: TokenTracker,
    progress: &'a ProgressBar,
    /// User ids by folded login, existing and created.
    users: HashMap<String, UserId>,
    prune: bool,
}

/// Ids of one organization's teams and resources, existing and created.
struct OrganizationIds {
    id: OrganizationId,
    teams: HashMap<String, TeamId>,
    resources: HashMap<ResourceKey, ResourceId>,
}

impl Applier<'_> {
    fn idempotency_key(&mut self) -> String {
        self.call_number += 1;
        format!("workteams-apply-{}-{}", self.run_id, self.call_number)
    }

    async fn apply_all(&mut self, plan: &Plan) -> Result<(), CliError> {
        self.apply_users(plan).await?;
        for organization in &plan.organizations {
            self.apply_organization(organization).await?;
        }
        Ok(())
    }

    fn user_id(&self, login: &str) -> Result<UserId, CliError> {
        self.users.get(&login_key(login)).copied().ok_or_else(|| {
            CliError::Protocol(format!("user {login} was neither found nor created"))
        })
    }

    async fn apply_users(&mut self, plan: &Plan) -> Result<(), CliError> {
        let started = std::time::Instant::now();
        for chunk in plan.users_created.chunks(MAX_BATCH_ITEMS) {
            let request = proto::BatchCreateUsersRequest {
                users: chunk
                    .iter()
                    .map(|user| proto::NewUser {
                        login: user.login.clone(),
                        email: user.email.clone().unwrap_or_default(),
                        display_name: user.display_name.clone().unwrap_or_default(),
                    })
                    .collect(),
                idempotency_key: self.idempotency_key(),
            };
            let response = call(
                &self.directory,
                "creating users",
                request,
                |mut client, request| async move { client.batch_create_users(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            for user in response.users {
                let user = convert_user(user)?;
                self.users.insert(login_key(&user.login), user.id);
            }
            self.progress.inc(chunk.len() as u64);
        }

        for change in &plan.users_changed {
            let mut paths = Vec::new();
            if change.email.is_some() {
                paths.push("email".to_owned());
            }
            if change.display_name.is_some() {
                paths.push("display_name".to_owned());
            }
            let request = proto::UpdateUserRequest {
                id: change.id.to_string(),
                update_mask: Some(prost_types::FieldMask { paths }),
                login: String::new(),
                email: change
                    .email
                    .as_ref()
                    .and_then(|email| email.to.clone())
                    .unwrap_or_default(),
                display_name: change
                    .display_name
                    .as_ref()
                    .map(|name| name.to.clone())
                    .unwrap_or_default(),
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("updating user {}", change.login);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.update_user(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(1);
        }
        tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "users applied");
        Ok(())
    }

    async fn apply_organization(&mut self, plan: &OrganizationPlan) -> Result<(), CliError> {
        let id = self.apply_organization_record(plan).await?;
        let mut ids = OrganizationIds {
            id,
            teams: plan.team_ids.clone(),
            resources: plan.resource_ids.clone(),
        };

        let started = std::time::Instant::now();
        self.apply_members(plan, &ids).await?;
        let members_done = started.elapsed();
        self.apply_resources(plan, &mut ids).await?;
        let resources_done = started.elapsed();
        let new_teams = self.apply_teams(plan, &mut ids).await?;
        let teams_done = started.elapsed();
        self.apply_memberships(plan, &ids).await?;
        let memberships_done = started.elapsed();
        self.apply_grants(plan, &ids, &new_teams).await?;
        let grants_done = started.elapsed();
        if self.prune {
            self.apply_removals(plan, &ids).await?;
        }
        tracing::debug!(
            organization = %plan.name,
            members_ms = members_done.as_millis(),
            resources_ms = (resources_done - members_done).as_millis(),
            teams_ms = (teams_done - resources_done).as_millis(),
            memberships_ms = (memberships_done - teams_done).as_millis(),
            grants_ms = (grants_done - memberships_done).as_millis(),
            removals_ms = (started.elapsed() - grants_done).as_millis(),
            "organization applied"
        );
        Ok(())
    }

    async fn apply_organization_record(
        &mut self,
        plan: &OrganizationPlan,
    ) -> Result<OrganizationId, CliError> {
        let Some(id) = plan.id else {
            let request = proto::CreateOrganizationRequest {
                name: plan.name.clone(),
                display_name: plan.new_display_name.clone(),
                settings: Some(settings_to_proto(&plan.new_settings)),
                owner_user_id: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("creating organization {}", plan.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.create_organization(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(1);
            let organization = response.organization.ok_or_else(|| {
                CliError::Protocol(format!("{action}: the response has no organization"))
            })?;
            return OrganizationId::parse("organization.id", &organization.id)
                .map_err(CliError::from_directory);
        };

        if plan.display_name.is_some() || plan.settings.is_some() {
            let mut paths = Vec::new();
            if plan.display_name.is_some() {
                paths.push("display_name".to_owned());
            }
            if plan.settings.is_some() {
                paths.push("settings".to_owned());
            }
            let request = proto::UpdateOrganizationRequest {
                id: id.to_string(),
                update_mask: Some(prost_types::FieldMask { paths }),
                display_name: plan.new_display_name.clone(),
                settings: Some(settings_to_proto(&plan.new_settings)),
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("updating organization {}", plan.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.update_organization(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress
                .inc(u64::from(plan.display_name.is_some()) + u64::from(plan.settings.is_some()));
        }
        Ok(id)
    }

    async fn apply_members(
        &mut self,
        plan: &OrganizationPlan,
        ids: &OrganizationIds,
    ) -> Result<(), CliError> {
        let mut members = Vec::with_capacity(plan.members.added.len() + plan.members.changed.len());
        for member in &plan.members.added {
            members.push(proto::NewOrganizationMember {
                user_id: self.user_id(&member.login)?.to_string(),
                role: role_to_proto(member.role).into(),
                status: status_to_proto(member.status).into(),
            });
        }
        for member in &plan.members.changed {
            members.push(proto::NewOrganizationMember {
                user_id: member.user_id.to_string(),
                role: role_to_proto(member.role.to).into(),
                status: status_to_proto(member.status.to).into(),
            });
        }

        for chunk in members.chunks(MAX_BATCH_ITEMS) {
            let request = proto::BatchAddOrganizationMembersRequest {
                organization_id: ids.id.to_string(),
                members: chunk.to_vec(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("adding members to {}", plan.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move {
                    client.batch_add_organization_members(request).await
                },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(chunk.len() as u64);
        }
        Ok(())
    }

    async fn apply_resources(
        &mut self,
        plan: &OrganizationPlan,
        ids: &mut OrganizationIds,
    ) -> Result<(), CliError> {
        for chunk in plan.resources.added.chunks(MAX_BATCH_ITEMS) {
            let resources = chunk
                .iter()
                .map(|resource| {
                    let (parent_resource_id, parent_external_id) = match &resource.parent {
                        None => (String::new(), String::new()),
                        Some(parent) => {
                            let key =
                                ResourceKey::lookup(self.registry, &resource.resource_type, parent);
                            match ids.resources.get(&key) {
                                Some(id) => (id.to_string(), String::new()),
                                // Created earlier in this batch.
                                None => (String::new(), parent.clone()),
                            }
                        }
                    };
                    proto::NewResource {
                        resource_type: resource.resource_type.clone(),
                        external_id: resource.external_id.clone(),
                        display_name: resource.display_name.clone(),
                        parent_resource_id,
                        parent_external_id,
                        inherits: Some(resource.inherits),
                    }
                })
                .collect();
            let request = proto::BatchCreateResourcesRequest {
                organization_id: ids.id.to_string(),
                resources,
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("creating resources in {}", plan.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.batch_create_resources(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            for resource in response.resources {
                let id = parse_resource_id("resource.id", &resource.id)?;
                let key = ResourceKey::lookup(
                    self.registry,
                    &resource.resource_type,
                    &resource.external_id,
                );
                ids.resources.insert(key, id);
            }
            self.progress.inc(chunk.len() as u64);
        }

        for change in &plan.resources.changed {
            let mut paths = Vec::new();
            let mut request = proto::UpdateResourceRequest {
                id: change.id.to_string(),
                update_mask: None,
                display_name: String::new(),
                parent_resource_id: String::new(),
                inherits: false,
                external_id: String::new(),
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            if let Some(rename) = &change.rename {
                paths.push("external_id".to_owned());
                request.external_id = rename.to.clone();
            }
            if let Some(name) = &change.display_name {
                paths.push("display_name".to_owned());
                request.display_name = name.to.clone();
            }
            if let Some(parent) = &change.parent {
                paths.push("parent_resource_id".to_owned());
                if let Some(parent) = &parent.to {
                    let key = ResourceKey::lookup(self.registry, &change.resource_type, parent);
                    let id = ids.resources.get(&key).ok_or_else(|| {
                        CliError::Protocol(format!(
                            "parent resource {parent} was neither found nor created"
                        ))
                    })?;
                    request.parent_resource_id = id.to_string();
                }
            }
            if let Some(inherits) = &change.inherits {
                paths.push("inherits".to_owned());
                request.inherits = inherits.to;
            }
            request.update_mask = Some(prost_types::FieldMask { paths });

            let action = format!("updating {} {}", change.resource_type, change.external_id);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.update_resource(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(1);
        }
        Ok(())
    }

    /// Updates and creates teams. Returns the keys of new teams, whose
    /// members and grants went into their `CreateTeam` call.
    async fn apply_teams(
        &mut self,
        plan: &OrganizationPlan,
        ids: &mut OrganizationIds,
    ) -> Result<HashSet<String>, CliError> {
        // Renames come first, so a new team may take a former name.
        for change in &plan.teams.changed {
            let mut paths = Vec::new();
            if change.rename.is_some() {
                paths.push("name".to_owned());
            }
            if change.description.is_some() {
                paths.push("description".to_owned());
            }
            if change.color.is_some() {
                paths.push("color".to_owned());
            }
            if paths.is_empty() {
                continue;
            }
            let request = proto::UpdateTeamRequest {
                id: change.id.to_string(),
                update_mask: Some(prost_types::FieldMask { paths }),
                name: change.name.clone(),
                description: change
                    .description
                    .as_ref()
                    .map(|description| description.to.clone())
                    .unwrap_or_default(),
                color: change
                    .color
                    .as_ref()
                    .map(|color| color.to.clone())
                    .unwrap_or_default(),
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("updating team {}", change.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.update_team(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
        }

        let mut new_team_members: HashMap<String, Vec<proto::NewTeamMember>> = HashMap::new();
        let new_keys: HashSet<String> = plan
            .teams
            .added
            .iter()
            .map(|team| team_key(&team.name))
            .collect();
        for membership in &plan.memberships.added {
            let key = team_key(&membership.team);
            if new_keys.contains(&key) {
                new_team_members
                    .entry(key)
                    .or_default()
                    .push(proto::NewTeamMember {
                        user_id: self.user_id(&membership.login)?.to_string(),
                        expire_time: membership.expire_time.map(time_to_timestamp),
                    });
            }
        }
        let mut new_team_grants: HashMap<String, Vec<proto::NewTeamGrant>> = HashMap::new();
        for grant in &plan.grants.added {
            let SubjectName::Team(name) = &grant.subject else {
                continue;
            };
            let key = team_key(name);
            if new_keys.contains(&key) {
                new_team_grants
                    .entry(key)
                    .or_default()
                    .push(proto::NewTeamGrant {
                        resource_id: resource_id(
                            ids,
                            self.registry,
                            &grant.resource_type,
                            &grant.external_id,
                        )?
                        .to_string(),
                        permissions: grant.value.permissions.clone(),
                        expire_time: grant.value.expire_time.map(time_to_timestamp),
                    });
            }
        }

        // Teams whose parents exist are independent of each other, so each
        // level of the new trees is created with several calls in flight.
        for level in creation_levels(plan, ids) {
            let mut requests = Vec::with_capacity(level.len());
            for team in level {
                let key = team_key(&team.name);
                let parent_team_id = match &team.parent {
                    Some(parent) => team_id(ids, parent)?.to_string(),
                    None => String::new(),
                };
                let members = new_team_members.remove(&key).unwrap_or_default();
                let grants = new_team_grants.remove(&key).unwrap_or_default();
                let leader_user_ids = team
                    .leaders
                    .iter()
                    .map(|login| self.user_id(login).map(|id| id.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                let items = 1 + members.len() + grants.len();
                let request = proto::CreateTeamRequest {
                    organization_id: ids.id.to_string(),
                    name: team.name.clone(),
                    description: team.description.clone(),
                    color: team.color.clone(),
                    parent_team_id,
                    members,
                    leader_user_ids,
                    grants,
                    idempotency_key: self.idempotency_key(),
                };
                let role = team
                    .organization_role
                    .map(|role| (role, self.idempotency_key()));
                requests.push((key, items, request, role));
            }

            let directory = &self.directory;
            let mut created = futures::stream::iter(requests.into_iter().map(
                |(key, items, request, role)| async move {
                    create_team(directory, key, items, request, role).await
                },
            ))
            .buffer_unordered(CONCURRENT_TEAM_CREATIONS);
            while let Some(result) = created.next().await {
                let (key, id, items, token) = result?;
                self.tokens.observe(&token);
                ids.teams.insert(key, id);
                self.progress.inc(items as u64);
            }
        }

        for change in &plan.teams.changed {
            let Some(role) = &change.organization_role else {
                continue;
            };
            let request = proto::SetTeamRoleRequest {
                team_id: change.id.to_string(),
                role: role
                    .to
                    .map_or(proto::MemberRole::Unspecified, role_to_proto)
                    .into(),
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("setting the organization role of team {}", change.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.set_team_role(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
        }

        // Parents are set top-down, so no intermediate state has a cycle.
        for change in &plan.teams.changed {
            let Some(parent) = &change.parent else {
                continue;
            };
            let parent_team_id = match &parent.to {
                Some(name) => team_id(ids, name)?.to_string(),
                None => String::new(),
            };
            let request = proto::SetTeamParentRequest {
                team_id: change.id.to_string(),
                parent_team_id,
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("moving team {}", change.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.set_team_parent(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
        }
        Ok(new_keys)
    }

    async fn apply_memberships(
        &mut self,
        plan: &OrganizationPlan,
        ids: &OrganizationIds,
    ) -> Result<(), CliError> {
        let new_keys: HashSet<String> = plan
            .teams
            .added
            .iter()
            .map(|team| team_key(&team.name))
            .collect();

        let mut additions: Vec<(String, Vec<proto::NewTeamMember>)> = Vec::new();
        let mut positions: HashMap<String, usize> = HashMap::new();
        let mut push = |team: &str, member: proto::NewTeamMember| {
            let key = team_key(team);
            let position = *positions.entry(key.clone()).or_insert_with(|| {
                additions.push((key, Vec::new()));
                additions.len() - 1
            });
            additions[position].1.push(member);
        };
        for membership in &plan.memberships.added {
            if new_keys.contains(&team_key(&membership.team)) {
                continue;
            }
            push(
                &membership.team,
                proto::NewTeamMember {
                    user_id: self.user_id(&membership.login)?.to_string(),
                    expire_time: membership.expire_time.map(time_to_timestamp),
                },
            );
        }
        for membership in &plan.memberships.changed {
            push(
                &membership.team,
                proto::NewTeamMember {
                    user_id: self.user_id(&membership.login)?.to_string(),
                    expire_time: membership.expire_time.to.map(time_to_timestamp),
                },
            );
        }

        for (key, members) in additions {
            let team = team_id(ids, &key)?;
            for chunk in members.chunks(MAX_BATCH_ITEMS) {
                let request = proto::AddTeamMembersRequest {
                    team_id: team.to_string(),
                    members: chunk.to_vec(),
                    idempotency_key: self.idempotency_key(),
                };
                let action = format!("adding members to team {key}");
                let response = call(
                    &self.directory,
                    &action,
                    request,
                    |mut client, request| async move { client.add_team_members(request).await },
                )
                .await?;
                self.tokens.observe(&response.consistency_token);
                self.progress.inc(chunk.len() as u64);
            }
        }

        // Leaders after members: every leader must already be a member.
        for change in &plan.teams.changed {
            let Some(leaders) = &change.leaders else {
                self.progress.inc(1);
                continue;
            };
            let leader_user_ids = leaders
                .to
                .iter()
                .map(|login| self.user_id(login).map(|id| id.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let request = proto::SetTeamLeadersRequest {
                team_id: change.id.to_string(),
                leader_user_ids,
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("setting the leaders of team {}", change.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.set_team_leaders(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(1);
        }

        if self.prune {
            let mut removals: Vec<(TeamId, String, Vec<String>)> = Vec::new();
            for membership in &plan.memberships.removed {
                match removals
                    .iter_mut()
                    .find(|(id, _, _)| *id == membership.team_id)
                {
                    Some((_, _, users)) => users.push(membership.user_id.to_string()),
                    None => removals.push((
                        membership.team_id,
                        membership.team.clone(),
                        vec![membership.user_id.to_string()],
                    )),
                }
            }
            for (team, name, users) in removals {
                for chunk in users.chunks(MAX_BATCH_ITEMS) {
                    let request = proto::RemoveTeamMembersRequest {
                        team_id: team.to_string(),
                        user_ids: chunk.to_vec(),
                        idempotency_key: self.idempotency_key(),
                    };
                    let action = format!("removing members from team {name}");
                    let response =
                        call(
                            &self.directory,
                            &action,
                            request,
                            |mut client, request| async move {
                                client.remove_team_members(request).await
                            },
                        )
                        .await?;
                    self.tokens.observe(&response.consistency_token);
                    self.progress.inc(chunk.len() as u64);
                }
            }
        }
        Ok(())
    }

    async fn apply_grants(
        &mut self,
        plan: &OrganizationPlan,
        ids: &OrganizationIds,
        new_teams: &HashSet<String>,
    ) -> Result<(), CliError> {
        let mut changes = Vec::new();
        for grant in &plan.grants.added {
            if let SubjectName::Team(name) = &grant.subject
                && new_teams.contains(&team_key(name))
            {
                continue;
            }
            changes.push(self.grant_change(
                ids,
                &grant.resource_type,
                &grant.external_id,
                &grant.subject,
                &grant.value,
            )?);
        }
        for grant in &plan.grants.changed {
            changes.push(self.grant_change(
                ids,
                &grant.resource_type,
                &grant.external_id,
                &grant.subject,
                &grant.value.to,
            )?);
        }
        if self.prune {
            for grant in &plan.grants.removed {
                changes.push(proto::GrantChange {
                    resource_id: grant.resource_id.to_string(),
                    subject: Some(subject_to_proto(grant.subject)),
                    permissions: Vec::new(),
                    no_access: false,
                    expire_time: None,
                    revoke: true,
                });
            }
        }

        for chunk in changes.chunks(MAX_GRANT_CHANGES) {
            let request = proto::BatchSetGrantsRequest {
                organization_id: ids.id.to_string(),
                changes: chunk.to_vec(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("setting grants in {}", plan.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.batch_set_grants(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(chunk.len() as u64);
        }
        Ok(())
    }

    fn grant_change(
        &self,
        ids: &OrganizationIds,
        resource_type: &str,
        external_id: &str,
        subject: &SubjectName,
        value: &GrantValue,
    ) -> Result<proto::GrantChange, CliError> {
        let subject = match subject {
            SubjectName::Team(name) => Subject::Team(team_id(ids, name)?),
            SubjectName::User(login) => Subject::User(self.user_id(login)?),
        };
        Ok(proto::GrantChange {
            resource_id: resource_id(ids, self.registry, resource_type, external_id)?.to_string(),
            subject: Some(subject_to_proto(subject)),
            permissions: value.permissions.clone(),
            no_access: value.no_access,
            expire_time: value.expire_time.map(time_to_timestamp),
            revoke: false,
        })
    }

    async fn apply_removals(
        &mut self,
        plan: &OrganizationPlan,
        ids: &OrganizationIds,
    ) -> Result<(), CliError> {
        for team in &plan.teams.removed {
            let request = proto::DeleteTeamRequest {
                id: team.id.to_string(),
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("removing team {}", team.name);
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.delete_team(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(1);
        }
        for resource in &plan.resources.removed {
            let request = proto::DeleteResourceRequest {
                id: resource.id.to_string(),
                etag: String::new(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!(
                "removing {} {}",
                resource.resource_type, resource.external_id
            );
            let response = call(
                &self.directory,
                &action,
                request,
                |mut client, request| async move { client.delete_resource(request).await },
            )
            .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(1);
        }
        for member in &plan.members.removed {
            let request = proto::RemoveOrganizationMemberRequest {
                organization_id: ids.id.to_string(),
                user_id: member.user_id.to_string(),
                idempotency_key: self.idempotency_key(),
            };
            let action = format!("removing member {} from {}", member.login, plan.name);
            let response =
                call(
                    &self.directory,
                    &action,
                    request,
                    |mut client, request| async move {
                        client.remove_organization_member(request).await
                    },
                )
                .await?;
            self.tokens.observe(&response.consistency_token);
            self.progress.inc(1);
        }
        Ok(())
    }
}

/// Creates one team, then gives it its organization role, which
/// `CreateTeam` does not take. Returns the team's key and id, the number of
/// plan items the call applied, and the consistency token of the last write.
async fn create_team(
    directory: &DirectoryClient,
    key: String,
    items: usize,
    request: proto::CreateTeamRequest,
    role: Option<(MemberRole, String)>,
) -> Result<(String, TeamId, usize, String), CliError> {
    let action = format!("creating team {}", request.name);
    let name = request.name.clone();
    let response = call(
        directory,
        &action,
        request,
        |mut client, request| async move { client.create_team(request).await },
    )
    .await?;
    let team = response
        .team
        .ok_or_else(|| CliError::Protocol(format!("{action}: the response has no team")))?;
    let id = parse_team_id("team.id", &team.id)?;
    let mut token = response.consistency_token;

    if let Some((role, idempotency_key)) = role {
        let request = proto::SetTeamRoleRequest {
            team_id: team.id.clone(),
            role: role_to_proto(role).into(),
            etag: String::new(),
            idempotency_key,
        };
        let action = format!("setting the organization role of team {name}");
        let response = call(
            directory,
            &action,
            request,
            |mut client, request| async move { client.set_team_role(request).await },
        )
        .await?;
        token = response.consistency_token;
    }
    Ok((key, id, items, token))
}

/// Groups the teams to create in levels, so every team's parent exists
/// before its level is created.
fn creation_levels<'p>(plan: &'p OrganizationPlan, ids: &OrganizationIds) -> Vec<Vec<&'p TeamAdd>> {
    let mut depth: HashMap<String, usize> = HashMap::new();
    let mut levels: Vec<Vec<&TeamAdd>> = Vec::new();
    // `teams.added` lists parents before children.
    for team in &plan.teams.added {
        let level = match &team.parent {
            Some(parent) if !ids.teams.contains_key(&team_key(parent)) => depth
                .get(&team_key(parent))
                .map_or(0, |parent_level| parent_level + 1),
            _ => 0,
        };
        depth.insert(team_key(&team.name), level);
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(team);
    }
    levels
}

fn team_id(ids: &OrganizationIds, name: &str) -> Result<TeamId, CliError> {
    ids.teams
        .get(&team_key(name))
        .copied()
        .ok_or_else(|| CliError::Protocol(format!("team {name} was neither found nor created")))
}

fn resource_id(
    ids: &OrganizationIds,
    registry: &ResourceTypeRegistry,
    resource_type: &str,
    external_id: &str,
) -> Result<ResourceId, CliError> {
    ids.resources
        .get(&ResourceKey::lookup(registry, resource_type, external_id))
        .copied()
        .ok_or_else(|| {
            CliError::Protocol(format!(
                "{resource_type} {external_id} was neither found nor created"
            ))
        })
}
