//! Loading a dataset into a running directory through its batch RPCs.
//!
//! The directory assigns its own ids, so the import returns the directory's
//! id of every user, team and resource by dataset position. The directory
//! rejects expiry instants in the past; a membership or grant the dataset
//! marks as already expired is sent with an expiry a few seconds ahead
//! instead, and [`Imported::expired_by`] tells when all of those have
//! passed, after which the directory holds the same answers as the dataset.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tonic::transport::Channel;
use workteams_domain::{MemberRole, MemberStatus, Subject};
use workteams_proto::directory::v1 as proto;
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;

use crate::graph::Graph;

/// Items per call: the directory's limits.
const USERS_PER_CALL: usize = 1_000;
const MEMBERS_PER_CALL: usize = 1_000;
const TEAM_MEMBERS_PER_CALL: usize = 1_000;
const RESOURCES_PER_CALL: usize = 1_000;
const GRANTS_PER_CALL: usize = 10_000;

/// How far ahead an already expired edge's stand-in expiry is placed: long
/// enough for a call of up to 10,000 grants to pass the directory's check on
/// arrival on a busy machine.
const EXPIRED_STAND_IN_DELAY: chrono::Duration = chrono::Duration::seconds(10);

/// The directory's ids by dataset position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    pub organization: String,
    pub users: Vec<String>,
    pub teams: Vec<String>,
    pub resources: Vec<String>,
}

/// The result and cost of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub ids: IdMap,
    pub elapsed: Duration,
    pub calls: usize,
    /// The instant after which every stand-in expiry has passed.
    pub expired_by: Option<DateTime<Utc>>,
    /// The consistency token of the last write.
    pub consistency_token: String,
}

/// Connects a directory client to `url`.
pub async fn connect(url: &str) -> anyhow::Result<DirectoryServiceClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to the directory at {url}"))?;
    Ok(DirectoryServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

fn timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: instant.timestamp_subsec_nanos() as i32,
    }
}

/// Tracks the stand-in expiries of edges that are already expired.
struct Expiries {
    dataset_now: DateTime<Utc>,
    latest_stand_in: Option<DateTime<Utc>>,
}

impl Expiries {
    /// Chooses the expiry to send for an edge expiring at `expire_time`.
    fn send(&mut self, expire_time: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
        let expire_time = expire_time?;
        if expire_time > self.dataset_now && expire_time > Utc::now() {
            return Some(timestamp(expire_time));
        }
        let stand_in = Utc::now() + EXPIRED_STAND_IN_DELAY;
        self.latest_stand_in = Some(
            self.latest_stand_in
                .map_or(stand_in, |latest| latest.max(stand_in)),
        );
        Some(timestamp(stand_in))
    }
}

fn role(role: MemberRole) -> i32 {
    match role {
        MemberRole::Owner => proto::MemberRole::Owner as i32,
        MemberRole::Administrator => proto::MemberRole::Administrator as i32,
        MemberRole::Collaborator => proto::MemberRole::Collaborator as i32,
        MemberRole::External => proto::MemberRole::External as i32,
    }
}

fn status(status: MemberStatus) -> i32 {
    match status {
        MemberStatus::Active => proto::MemberStatus::Active as i32,
        MemberStatus::Suspended => proto::MemberStatus::Suspended as i32,
    }
}

/// Imports the whole dataset into the directory at `url`.
pub async fn import(graph: &Graph<'_>, url: &str) -> anyhow::Result<Imported> {
    let mut client = connect(url).await?;
    let dataset = graph.dataset;
    let started = Instant::now();
    let mut calls = 0;
    let mut expiries = Expiries {
        dataset_now: dataset.generated_at,
        latest_stand_in: None,
    };
    let mut ids = IdMap::default();

    let settings = &dataset.organization.settings;
    let organization = client
        .create_organization(proto::CreateOrganizationRequest {
            name: dataset.organization.name.clone(),
            display_name: dataset.organization.display_name.clone(),
            settings: Some(proto::OrganizationSettings {
                leaders_manage_members: settings.leaders_manage_members,
                resource_type_defaults: settings
                    .resource_type_defaults
                    .iter()
                    .map(|defaults| proto::ResourceTypeDefault {
                        resource_type: defaults.resource_type.clone(),
                        base_level: defaults.base_level.clone().unwrap_or_default(),
                        administrators_get_highest_level: defaults.administrators_get_highest_level,
                    })
                    .collect(),
            }),
            owner_user_id: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .context("CreateOrganization failed")?
        .into_inner();
    calls += 1;
    ids.organization = organization
        .organization
        .context("CreateOrganization returned no organization")?
        .id;

    for chunk in dataset.users.chunks(USERS_PER_CALL) {
        let response = client
            .batch_create_users(proto::BatchCreateUsersRequest {
                users: chunk
                    .iter()
                    .map(|user| proto::NewUser {
                        login: user.login.clone(),
                        email: user.email.clone().unwrap_or_default(),
                        display_name: user.display_name.clone(),
                    })
                    .collect(),
                idempotency_key: String::new(),
            })
            .await
            .context("BatchCreateUsers failed")?
            .into_inner();
        calls += 1;
        anyhow::ensure!(
            response.users.len() == chunk.len(),
            "BatchCreateUsers returned {} users for {}",
            response.users.len(),
            chunk.len()
        );
        ids.users
            .extend(response.users.into_iter().map(|user| user.id));
    }

    let mut token = String::new();
    for chunk in dataset.members.chunks(MEMBERS_PER_CALL) {
        let members = chunk
            .iter()
            .map(|member| proto::NewOrganizationMember {
                user_id: ids.users[graph.user_positions[&member.user_id]].clone(),
                role: role(member.role),
                status: status(member.status),
            })
            .collect();
        token = client
            .batch_add_organization_members(proto::BatchAddOrganizationMembersRequest {
                organization_id: ids.organization.clone(),
                members,
                idempotency_key: String::new(),
            })
            .await
            .context("BatchAddOrganizationMembers failed")?
            .into_inner()
            .consistency_token;
        calls += 1;
    }

    // Expiries are converted as each call is built, because at the larger
    // sizes a stand-in chosen up front is already past when its call is sent.
    let mut members_by_team: Vec<Vec<(String, Option<DateTime<Utc>>)>> =
        vec![Vec::new(); dataset.teams.len()];
    for membership in &dataset.memberships {
        let user = graph.user_positions[&membership.user_id];
        let team = graph.team_positions[&membership.team_id];
        members_by_team[team].push((ids.users[user].clone(), membership.expire_time));
    }
    for (position, team) in dataset.teams.iter().enumerate() {
        let mut pending = std::mem::take(&mut members_by_team[position]);
        let rest = if pending.len() > TEAM_MEMBERS_PER_CALL {
            pending.split_off(TEAM_MEMBERS_PER_CALL)
        } else {
            Vec::new()
        };
        let members = new_team_members(&mut expiries, &pending);
        let parent_team_id = graph.team_parents[position]
            .map(|parent| ids.teams[parent].clone())
            .unwrap_or_default();
        let response = client
            .create_team(proto::CreateTeamRequest {
                organization_id: ids.organization.clone(),
                name: team.name.clone(),
                description: team.description.clone(),
                color: team.color.clone(),
                parent_team_id,
                members,
                leader_user_ids: Vec::new(),
                grants: Vec::new(),
                idempotency_key: String::new(),
            })
            .await
            .with_context(|| format!("CreateTeam {} failed", team.name))?
            .into_inner();
        calls += 1;
        let team_id = response.team.context("CreateTeam returned no team")?.id;
        token = response.consistency_token;
        for chunk in rest.chunks(TEAM_MEMBERS_PER_CALL) {
            token = client
                .add_team_members(proto::AddTeamMembersRequest {
                    team_id: team_id.clone(),
                    members: new_team_members(&mut expiries, chunk),
                    idempotency_key: String::new(),
                })
                .await
                .with_context(|| format!("AddTeamMembers to {} failed", team.name))?
                .into_inner()
                .consistency_token;
            calls += 1;
        }
        ids.teams.push(team_id);
    }

    let mut created: HashMap<usize, String> = HashMap::with_capacity(dataset.resources.len());
    for (chunk_index, chunk) in dataset.resources.chunks(RESOURCES_PER_CALL).enumerate() {
        let chunk_start = chunk_index * RESOURCES_PER_CALL;
        let resources = chunk
            .iter()
            .enumerate()
            .map(|(offset, resource)| {
                let parent = graph.resource_parents[chunk_start + offset];
                let (parent_resource_id, parent_external_id) = match parent {
                    Some(parent) if parent < chunk_start => (
                        created.get(&parent).cloned().unwrap_or_default(),
                        String::new(),
                    ),
                    Some(parent) => (String::new(), dataset.resources[parent].external_id.clone()),
                    None => (String::new(), String::new()),
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
        let response = client
            .batch_create_resources(proto::BatchCreateResourcesRequest {
                organization_id: ids.organization.clone(),
                resources,
                idempotency_key: String::new(),
            })
            .await
            .context("BatchCreateResources failed")?
            .into_inner();
        calls += 1;
        anyhow::ensure!(
            response.resources.len() == chunk.len(),
            "BatchCreateResources returned {} resources for {}",
            response.resources.len(),
            chunk.len()
        );
        for (offset, resource) in response.resources.into_iter().enumerate() {
            created.insert(chunk_start + offset, resource.id.clone());
            ids.resources.push(resource.id);
        }
        token = response.consistency_token;
    }

    for chunk in dataset.grants.chunks(GRANTS_PER_CALL) {
        let changes: Vec<proto::GrantChange> = chunk
            .iter()
            .map(|grant| {
                let subject = match grant.subject {
                    Subject::Team(id) => {
                        proto::subject::Kind::TeamId(ids.teams[graph.team_positions[&id]].clone())
                    }
                    Subject::User(id) => {
                        proto::subject::Kind::UserId(ids.users[graph.user_positions[&id]].clone())
                    }
                };
                proto::GrantChange {
                    resource_id: ids.resources[graph.resource_positions[&grant.resource_id]]
                        .clone(),
                    subject: Some(proto::Subject {
                        kind: Some(subject),
                    }),
                    permissions: grant.permissions.clone(),
                    no_access: grant.no_access,
                    expire_time: expiries.send(grant.expire_time),
                    revoke: false,
                }
            })
            .collect();
        token = client
            .batch_set_grants(proto::BatchSetGrantsRequest {
                organization_id: ids.organization.clone(),
                changes,
                idempotency_key: String::new(),
            })
            .await
            .context("BatchSetGrants failed")?
            .into_inner()
            .consistency_token;
        calls += 1;
    }

    Ok(Imported {
        ids,
        elapsed: started.elapsed(),
        calls,
        expired_by: expiries.latest_stand_in,
        consistency_token: token,
    })
}

/// Builds the members of one call, choosing each expiry as the call is sent.
fn new_team_members(
    expiries: &mut Expiries,
    members: &[(String, Option<DateTime<Utc>>)],
) -> Vec<proto::NewTeamMember> {
    members
        .iter()
        .map(|(user_id, expire_time)| proto::NewTeamMember {
            user_id: user_id.clone(),
            expire_time: expiries.send(*expire_time),
        })
        .collect()
}

/// Waits until every stand-in expiry of `imported` has passed.
pub async fn wait_for_stand_in_expiries(imported: &Imported) {
    if let Some(expired_by) = imported.expired_by {
        let remaining = (expired_by - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(remaining + Duration::from_millis(100)).await;
    }
}
