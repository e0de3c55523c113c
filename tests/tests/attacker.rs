//! The directory under attack by its own users: members without the right
//! role trying admin calls, ids of another organization slipped into every
//! RPC that takes ids, escalation through team membership, and the last
//! owner. Every caller sends a real HS256 bearer token to a real directory
//! on 127.0.0.1, on SQLite and, with `WORKTEAMS_TEST_DATABASE_URL`, on
//! PostgreSQL.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;

use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use workteams_proto::directory::v1 as proto;
use workteams_tests::testing::TestDatabase;
use workteams_tests::{
    Authz, DirectoryClient, RunningDirectory, RunningSidecar, TEST_ADMIN_ACCOUNT,
    TEST_SIDECAR_ACCOUNT, directory_client, test_auth,
};

type Client = DirectoryClient;

/// A directory that requires tokens, and a way to call it as anyone.
struct Harness {
    directory: RunningDirectory,
    channel: Channel,
}

impl Harness {
    async fn start(database: &TestDatabase) -> Self {
        let directory = RunningDirectory::start(database.url()).await;
        // Waits until the server accepts connections.
        let _ = directory.client().await;
        let channel = Channel::from_shared(directory.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self { directory, channel }
    }

    /// Connects a client whose calls carry a valid token for `subject`:
    /// `user:<id>` or a service account name.
    fn client_as(&self, subject: &str) -> Client {
        directory_client(self.channel.clone(), &test_auth().token(subject))
    }

    fn user(&self, user: &proto::User) -> Client {
        self.client_as(&format!("user:{}", user.id))
    }

    /// Connects a client as the service account with scope `admin`.
    fn setup(&self) -> Client {
        self.client_as(TEST_ADMIN_ACCOUNT)
    }

    async fn stop(self) {
        self.directory.stop().await;
    }
}

/// Two organizations built by the admin service account. In acme, team
/// leaders manage members.
struct World {
    acme: proto::Organization,
    globex: proto::Organization,
    owner: proto::User,
    admin: proto::User,
    collaborator: proto::User,
    external: proto::User,
    /// A collaborator who leads `docs`.
    leader: proto::User,
    /// A collaborator who is an administrator through the `it` team.
    it_admin: proto::User,
    newcomer: proto::User,
    /// A user of no organization.
    stranger: proto::User,
    globex_owner: proto::User,
    /// Members: leader, collaborator, external.
    docs: proto::Team,
    /// Carries the administrator role.
    it: proto::Team,
    sales: proto::Team,
    acme_mailbox: proto::Resource,
    globex_mailbox: proto::Resource,
    acme_invitation: proto::Invitation,
    globex_invitation: proto::Invitation,
}

async fn organization(
    client: &Client,
    name: &str,
    leaders_manage_members: bool,
) -> proto::Organization {
    client
        .clone()
        .create_organization(proto::CreateOrganizationRequest {
            name: name.to_owned(),
            settings: Some(proto::OrganizationSettings {
                leaders_manage_members,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("CreateOrganization")
        .into_inner()
        .organization
        .unwrap()
}

async fn user(client: &Client, login: &str) -> proto::User {
    client
        .clone()
        .create_user(proto::CreateUserRequest {
            login: login.to_owned(),
            email: format!("{login}@example.com"),
            ..Default::default()
        })
        .await
        .expect("CreateUser")
        .into_inner()
        .user
        .unwrap()
}

async fn member(
    client: &Client,
    organization: &proto::Organization,
    user: &proto::User,
    role: proto::MemberRole,
) {
    client
        .clone()
        .add_organization_member(proto::AddOrganizationMemberRequest {
            organization_id: organization.id.clone(),
            user_id: user.id.clone(),
            role: role.into(),
            status: proto::MemberStatus::Active.into(),
            ..Default::default()
        })
        .await
        .expect("AddOrganizationMember");
}

async fn team(
    client: &Client,
    organization: &proto::Organization,
    name: &str,
    members: &[&proto::User],
    leaders: &[&proto::User],
) -> proto::Team {
    client
        .clone()
        .create_team(proto::CreateTeamRequest {
            organization_id: organization.id.clone(),
            name: name.to_owned(),
            members: members
                .iter()
                .map(|user| proto::NewTeamMember {
                    user_id: user.id.clone(),
                    expire_time: None,
                })
                .collect(),
            leader_user_ids: leaders.iter().map(|user| user.id.clone()).collect(),
            ..Default::default()
        })
        .await
        .expect("CreateTeam")
        .into_inner()
        .team
        .unwrap()
}

async fn set_team_role(client: &Client, team: &proto::Team, role: proto::MemberRole) {
    client
        .clone()
        .set_team_role(proto::SetTeamRoleRequest {
            team_id: team.id.clone(),
            role: role.into(),
            ..Default::default()
        })
        .await
        .expect("SetTeamRole");
}

async fn mailbox(
    client: &Client,
    organization: &proto::Organization,
    address: &str,
) -> proto::Resource {
    client
        .clone()
        .create_resource(proto::CreateResourceRequest {
            organization_id: organization.id.clone(),
            resource: Some(new_mailbox(address)),
            ..Default::default()
        })
        .await
        .expect("CreateResource")
        .into_inner()
        .resource
        .unwrap()
}

fn new_mailbox(address: &str) -> proto::NewResource {
    proto::NewResource {
        resource_type: "mail.mailbox".to_owned(),
        external_id: address.to_owned(),
        inherits: Some(true),
        ..Default::default()
    }
}

async fn invitation(
    client: &Client,
    organization: &proto::Organization,
    email: &str,
    team: &proto::Team,
) -> proto::Invitation {
    client
        .clone()
        .create_invitation(proto::CreateInvitationRequest {
            organization_id: organization.id.clone(),
            email: email.to_owned(),
            team_ids: vec![team.id.clone()],
            ..Default::default()
        })
        .await
        .expect("CreateInvitation")
        .into_inner()
        .invitation
        .unwrap()
}

async fn world(harness: &Harness) -> World {
    let setup = harness.setup();
    let acme = organization(&setup, "acme", true).await;
    let globex = organization(&setup, "globex", false).await;

    let owner = user(&setup, "owner").await;
    let admin = user(&setup, "admin").await;
    let collaborator = user(&setup, "collaborator").await;
    let external = user(&setup, "external").await;
    let leader = user(&setup, "leader").await;
    let it_admin = user(&setup, "it-admin").await;
    let newcomer = user(&setup, "newcomer").await;
    let stranger = user(&setup, "stranger").await;
    let globex_owner = user(&setup, "globex-owner").await;

    member(&setup, &acme, &owner, proto::MemberRole::Owner).await;
    member(&setup, &acme, &admin, proto::MemberRole::Administrator).await;
    member(
        &setup,
        &acme,
        &collaborator,
        proto::MemberRole::Collaborator,
    )
    .await;
    member(&setup, &acme, &external, proto::MemberRole::External).await;
    member(&setup, &acme, &leader, proto::MemberRole::Collaborator).await;
    member(&setup, &acme, &it_admin, proto::MemberRole::Collaborator).await;
    member(&setup, &acme, &newcomer, proto::MemberRole::Collaborator).await;
    member(&setup, &globex, &globex_owner, proto::MemberRole::Owner).await;

    let docs = team(
        &setup,
        &acme,
        "docs",
        &[&leader, &collaborator, &external],
        &[&leader],
    )
    .await;
    let it = team(&setup, &acme, "it", &[&it_admin], &[]).await;
    set_team_role(&setup, &it, proto::MemberRole::Administrator).await;
    let sales = team(&setup, &globex, "sales", &[&globex_owner], &[]).await;

    let acme_mailbox = mailbox(&setup, &acme, "info@acme.example").await;
    let globex_mailbox = mailbox(&setup, &globex, "info@globex.example").await;
    let acme_invitation = invitation(&setup, &acme, "guest@acme.example", &docs).await;
    let globex_invitation = invitation(&setup, &globex, "guest@globex.example", &sales).await;

    World {
        acme,
        globex,
        owner,
        admin,
        collaborator,
        external,
        leader,
        it_admin,
        newcomer,
        stranger,
        globex_owner,
        docs,
        it,
        sales,
        acme_mailbox,
        globex_mailbox,
        acme_invitation,
        globex_invitation,
    }
}

/// Runs `scenario` against a fresh directory and world per test database.
async fn for_each_database<F, Fut>(scenario: F)
where
    F: Fn(Harness, World) -> Fut,
    Fut: Future<Output = Harness>,
{
    workteams_tests::init_logging();
    for database in TestDatabase::all().await {
        let harness = Harness::start(&database).await;
        let world = world(&harness).await;
        let harness = scenario(harness, world).await;
        harness.stop().await;
        database.cleanup().await;
    }
}

/// One directory call, so tables of attacks can list requests as data.
#[derive(Debug, Clone)]
enum Rpc {
    CreateOrganization(proto::CreateOrganizationRequest),
    GetOrganization(proto::GetOrganizationRequest),
    UpdateOrganization(proto::UpdateOrganizationRequest),
    CreateUser(proto::CreateUserRequest),
    GetUser(proto::GetUserRequest),
    UpdateUser(proto::UpdateUserRequest),
    ListUsers(proto::ListUsersRequest),
    BatchCreateUsers(proto::BatchCreateUsersRequest),
    AddOrganizationMember(proto::AddOrganizationMemberRequest),
    GetOrganizationMember(proto::GetOrganizationMemberRequest),
    UpdateOrganizationMember(proto::UpdateOrganizationMemberRequest),
    RemoveOrganizationMember(proto::RemoveOrganizationMemberRequest),
    ListOrganizationMembers(proto::ListOrganizationMembersRequest),
    BatchAddOrganizationMembers(proto::BatchAddOrganizationMembersRequest),
    CreateTeam(proto::CreateTeamRequest),
    GetTeam(proto::GetTeamRequest),
    ListTeams(proto::ListTeamsRequest),
    UpdateTeam(proto::UpdateTeamRequest),
    DeleteTeam(proto::DeleteTeamRequest),
    SetTeamLeaders(proto::SetTeamLeadersRequest),
    SetTeamParent(proto::SetTeamParentRequest),
    SetTeamRole(proto::SetTeamRoleRequest),
    AddTeamMembers(proto::AddTeamMembersRequest),
    RemoveTeamMembers(proto::RemoveTeamMembersRequest),
    ListTeamMembers(proto::ListTeamMembersRequest),
    ListUserTeams(proto::ListUserTeamsRequest),
    CreateResource(proto::CreateResourceRequest),
    BatchCreateResources(proto::BatchCreateResourcesRequest),
    GetResource(proto::GetResourceRequest),
    UpdateResource(proto::UpdateResourceRequest),
    DeleteResource(proto::DeleteResourceRequest),
    ListResources(proto::ListResourcesRequest),
    GrantAccess(proto::GrantAccessRequest),
    RevokeAccess(proto::RevokeAccessRequest),
    BatchSetGrants(proto::BatchSetGrantsRequest),
    ListGrants(proto::ListGrantsRequest),
    CreateInvitation(proto::CreateInvitationRequest),
    GetInvitation(proto::GetInvitationRequest),
    AcceptInvitation(proto::AcceptInvitationRequest),
    RevokeInvitation(proto::RevokeInvitationRequest),
    ListInvitations(proto::ListInvitationsRequest),
    ListAuditEvents(proto::ListAuditEventsRequest),
    Watch(proto::WatchRequest),
    ExportSnapshot(proto::ExportSnapshotRequest),
}

impl Rpc {
    /// Sends the call and keeps only its status.
    async fn send(self, client: &Client) -> Result<(), Status> {
        let mut client = client.clone();
        match self {
            Self::CreateOrganization(request) => {
                client.create_organization(request).await.map(drop)
            }
            Self::GetOrganization(request) => client.get_organization(request).await.map(drop),
            Self::UpdateOrganization(request) => {
                client.update_organization(request).await.map(drop)
            }
            Self::CreateUser(request) => client.create_user(request).await.map(drop),
            Self::GetUser(request) => client.get_user(request).await.map(drop),
            Self::UpdateUser(request) => client.update_user(request).await.map(drop),
            Self::ListUsers(request) => client.list_users(request).await.map(drop),
            Self::BatchCreateUsers(request) => client.batch_create_users(request).await.map(drop),
            Self::AddOrganizationMember(request) => {
                client.add_organization_member(request).await.map(drop)
            }
            Self::GetOrganizationMember(request) => {
                client.get_organization_member(request).await.map(drop)
            }
            Self::UpdateOrganizationMember(request) => {
                client.update_organization_member(request).await.map(drop)
            }
            Self::RemoveOrganizationMember(request) => {
                client.remove_organization_member(request).await.map(drop)
            }
            Self::ListOrganizationMembers(request) => {
                client.list_organization_members(request).await.map(drop)
            }
            Self::BatchAddOrganizationMembers(request) => client
                .batch_add_organization_members(request)
                .await
                .map(drop),
            Self::CreateTeam(request) => client.create_team(request).await.map(drop),
            Self::GetTeam(request) => client.get_team(request).await.map(drop),
            Self::ListTeams(request) => client.list_teams(request).await.map(drop),
            Self::UpdateTeam(request) => client.update_team(request).await.map(drop),
            Self::DeleteTeam(request) => client.delete_team(request).await.map(drop),
            Self::SetTeamLeaders(request) => client.set_team_leaders(request).await.map(drop),
            Self::SetTeamParent(request) => client.set_team_parent(request).await.map(drop),
            Self::SetTeamRole(request) => client.set_team_role(request).await.map(drop),
            Self::AddTeamMembers(request) => client.add_team_members(request).await.map(drop),
            Self::RemoveTeamMembers(request) => client.remove_team_members(request).await.map(drop),
            Self::ListTeamMembers(request) => client.list_team_members(request).await.map(drop),
            Self::ListUserTeams(request) => client.list_user_teams(request).await.map(drop),
            Self::CreateResource(request) => client.create_resource(request).await.map(drop),
            Self::BatchCreateResources(request) => {
                client.batch_create_resources(request).await.map(drop)
            }
            Self::GetResource(request) => client.get_resource(request).await.map(drop),
            Self::UpdateResource(request) => client.update_resource(request).await.map(drop),
            Self::DeleteResource(request) => client.delete_resource(request).await.map(drop),
            Self::ListResources(request) => client.list_resources(request).await.map(drop),
            Self::GrantAccess(request) => client.grant_access(request).await.map(drop),
            Self::RevokeAccess(request) => client.revoke_access(request).await.map(drop),
            Self::BatchSetGrants(request) => client.batch_set_grants(request).await.map(drop),
            Self::ListGrants(request) => client.list_grants(request).await.map(drop),
            Self::CreateInvitation(request) => client.create_invitation(request).await.map(drop),
            Self::GetInvitation(request) => client.get_invitation(request).await.map(drop),
            Self::AcceptInvitation(request) => client.accept_invitation(request).await.map(drop),
            Self::RevokeInvitation(request) => client.revoke_invitation(request).await.map(drop),
            Self::ListInvitations(request) => client.list_invitations(request).await.map(drop),
            Self::ListAuditEvents(request) => client.list_audit_events(request).await.map(drop),
            Self::Watch(request) => client.watch(request).await.map(drop),
            Self::ExportSnapshot(request) => client.export_snapshot(request).await.map(drop),
        }
    }
}

fn team_subject(team: &proto::Team) -> Option<proto::Subject> {
    Some(proto::Subject {
        kind: Some(proto::subject::Kind::TeamId(team.id.clone())),
    })
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

/// Builds every call that changes acme, or reads what only its owners and
/// administrators read, with valid acme ids.
fn admin_calls(world: &World) -> Vec<(&'static str, Rpc)> {
    let acme = world.acme.id.clone();
    vec![
        (
            "CreateOrganization",
            Rpc::CreateOrganization(proto::CreateOrganizationRequest {
                name: "initech".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "UpdateOrganization",
            Rpc::UpdateOrganization(proto::UpdateOrganizationRequest {
                id: acme.clone(),
                update_mask: mask(&["display_name"]),
                display_name: "Hacked".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "CreateUser",
            Rpc::CreateUser(proto::CreateUserRequest {
                login: "mallory".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "UpdateUser",
            Rpc::UpdateUser(proto::UpdateUserRequest {
                id: world.owner.id.clone(),
                update_mask: mask(&["email"]),
                email: "mallory@example.com".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "ListUsers",
            Rpc::ListUsers(proto::ListUsersRequest::default()),
        ),
        (
            "BatchCreateUsers",
            Rpc::BatchCreateUsers(proto::BatchCreateUsersRequest {
                users: vec![proto::NewUser {
                    login: "mallory".to_owned(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ),
        (
            "AddOrganizationMember",
            Rpc::AddOrganizationMember(proto::AddOrganizationMemberRequest {
                organization_id: acme.clone(),
                user_id: world.globex_owner.id.clone(),
                role: proto::MemberRole::Administrator.into(),
                status: proto::MemberStatus::Active.into(),
                ..Default::default()
            }),
        ),
        (
            "UpdateOrganizationMember",
            Rpc::UpdateOrganizationMember(proto::UpdateOrganizationMemberRequest {
                organization_id: acme.clone(),
                user_id: world.collaborator.id.clone(),
                update_mask: mask(&["role"]),
                role: proto::MemberRole::Administrator.into(),
                ..Default::default()
            }),
        ),
        (
            "RemoveOrganizationMember",
            Rpc::RemoveOrganizationMember(proto::RemoveOrganizationMemberRequest {
                organization_id: acme.clone(),
                user_id: world.admin.id.clone(),
                ..Default::default()
            }),
        ),
        (
            "ListOrganizationMembers",
            Rpc::ListOrganizationMembers(proto::ListOrganizationMembersRequest {
                organization_id: acme.clone(),
                ..Default::default()
            }),
        ),
        (
            "BatchAddOrganizationMembers",
            Rpc::BatchAddOrganizationMembers(proto::BatchAddOrganizationMembersRequest {
                organization_id: acme.clone(),
                members: vec![proto::NewOrganizationMember {
                    user_id: world.stranger.id.clone(),
                    role: proto::MemberRole::Collaborator.into(),
                    status: proto::MemberStatus::Active.into(),
                }],
                ..Default::default()
            }),
        ),
        (
            "CreateTeam",
            Rpc::CreateTeam(proto::CreateTeamRequest {
                organization_id: acme.clone(),
                name: "shadow".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "ListTeams",
            Rpc::ListTeams(proto::ListTeamsRequest {
                organization_id: acme.clone(),
                ..Default::default()
            }),
        ),
        (
            "UpdateTeam",
            Rpc::UpdateTeam(proto::UpdateTeamRequest {
                id: world.docs.id.clone(),
                update_mask: mask(&["name"]),
                name: "renamed".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "DeleteTeam",
            Rpc::DeleteTeam(proto::DeleteTeamRequest {
                id: world.docs.id.clone(),
                ..Default::default()
            }),
        ),
        (
            "SetTeamLeaders",
            Rpc::SetTeamLeaders(proto::SetTeamLeadersRequest {
                team_id: world.docs.id.clone(),
                leader_user_ids: vec![world.collaborator.id.clone()],
                ..Default::default()
            }),
        ),
        (
            "SetTeamParent",
            Rpc::SetTeamParent(proto::SetTeamParentRequest {
                team_id: world.docs.id.clone(),
                parent_team_id: world.it.id.clone(),
                ..Default::default()
            }),
        ),
        (
            "SetTeamRole",
            Rpc::SetTeamRole(proto::SetTeamRoleRequest {
                team_id: world.docs.id.clone(),
                role: proto::MemberRole::Administrator.into(),
                ..Default::default()
            }),
        ),
        (
            "AddTeamMembers",
            Rpc::AddTeamMembers(proto::AddTeamMembersRequest {
                team_id: world.it.id.clone(),
                members: vec![proto::NewTeamMember {
                    user_id: world.collaborator.id.clone(),
                    expire_time: None,
                }],
                ..Default::default()
            }),
        ),
        (
            "RemoveTeamMembers",
            Rpc::RemoveTeamMembers(proto::RemoveTeamMembersRequest {
                team_id: world.it.id.clone(),
                user_ids: vec![world.it_admin.id.clone()],
                ..Default::default()
            }),
        ),
        (
            "CreateResource",
            Rpc::CreateResource(proto::CreateResourceRequest {
                organization_id: acme.clone(),
                resource: Some(new_mailbox("evil@acme.example")),
                ..Default::default()
            }),
        ),
        (
            "BatchCreateResources",
            Rpc::BatchCreateResources(proto::BatchCreateResourcesRequest {
                organization_id: acme.clone(),
                resources: vec![new_mailbox("evil-batch@acme.example")],
                ..Default::default()
            }),
        ),
        (
            "GetResource",
            Rpc::GetResource(proto::GetResourceRequest {
                lookup: Some(proto::get_resource_request::Lookup::Id(
                    world.acme_mailbox.id.clone(),
                )),
            }),
        ),
        (
            "UpdateResource",
            Rpc::UpdateResource(proto::UpdateResourceRequest {
                id: world.acme_mailbox.id.clone(),
                update_mask: mask(&["display_name"]),
                display_name: "renamed".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "DeleteResource",
            Rpc::DeleteResource(proto::DeleteResourceRequest {
                id: world.acme_mailbox.id.clone(),
                ..Default::default()
            }),
        ),
        (
            "ListResources",
            Rpc::ListResources(proto::ListResourcesRequest {
                organization_id: acme.clone(),
                ..Default::default()
            }),
        ),
        (
            "GrantAccess",
            Rpc::GrantAccess(proto::GrantAccessRequest {
                resource_id: world.acme_mailbox.id.clone(),
                subject: team_subject(&world.docs),
                permissions: vec!["read".to_owned()],
                ..Default::default()
            }),
        ),
        (
            "RevokeAccess",
            Rpc::RevokeAccess(proto::RevokeAccessRequest {
                resource_id: world.acme_mailbox.id.clone(),
                subject: team_subject(&world.docs),
                ..Default::default()
            }),
        ),
        (
            "BatchSetGrants",
            Rpc::BatchSetGrants(proto::BatchSetGrantsRequest {
                organization_id: acme.clone(),
                changes: vec![proto::GrantChange {
                    resource_id: world.acme_mailbox.id.clone(),
                    subject: team_subject(&world.docs),
                    permissions: vec!["read".to_owned()],
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ),
        (
            "ListGrants",
            Rpc::ListGrants(proto::ListGrantsRequest {
                organization_id: acme.clone(),
                ..Default::default()
            }),
        ),
        (
            "CreateInvitation",
            Rpc::CreateInvitation(proto::CreateInvitationRequest {
                organization_id: acme.clone(),
                email: "friend@example.com".to_owned(),
                team_ids: vec![world.it.id.clone()],
                ..Default::default()
            }),
        ),
        (
            "GetInvitation",
            Rpc::GetInvitation(proto::GetInvitationRequest {
                id: world.acme_invitation.id.clone(),
            }),
        ),
        (
            "AcceptInvitation",
            Rpc::AcceptInvitation(proto::AcceptInvitationRequest {
                id: world.acme_invitation.id.clone(),
                login: "guest".to_owned(),
                ..Default::default()
            }),
        ),
        (
            "RevokeInvitation",
            Rpc::RevokeInvitation(proto::RevokeInvitationRequest {
                id: world.acme_invitation.id.clone(),
                ..Default::default()
            }),
        ),
        (
            "ListInvitations",
            Rpc::ListInvitations(proto::ListInvitationsRequest {
                organization_id: acme.clone(),
                ..Default::default()
            }),
        ),
        (
            "ListAuditEvents",
            Rpc::ListAuditEvents(proto::ListAuditEventsRequest {
                organization_id: acme.clone(),
                ..Default::default()
            }),
        ),
        ("Watch", Rpc::Watch(proto::WatchRequest::default())),
        (
            "ExportSnapshot",
            Rpc::ExportSnapshot(proto::ExportSnapshotRequest {
                organization_id: acme,
            }),
        ),
    ]
}

/// Builds every RPC that takes ids, once per id field, for an acme
/// administrator to call with that one id taken from globex. The third
/// column is the field the denial must name.
fn cross_organization_calls(world: &World) -> Vec<(&'static str, Rpc, &'static str)> {
    let acme = world.acme.id.clone();
    let globex = world.globex.id.clone();
    let globex_mailbox = world.globex_mailbox.id.clone();
    let sales = world.sales.id.clone();
    vec![
        (
            "GetOrganization.id",
            Rpc::GetOrganization(proto::GetOrganizationRequest {
                lookup: Some(proto::get_organization_request::Lookup::Id(globex.clone())),
            }),
            "id",
        ),
        (
            "UpdateOrganization.id",
            Rpc::UpdateOrganization(proto::UpdateOrganizationRequest {
                id: globex.clone(),
                update_mask: mask(&["display_name"]),
                display_name: "Hacked".to_owned(),
                ..Default::default()
            }),
            "id",
        ),
        (
            "GetUser.id",
            Rpc::GetUser(proto::GetUserRequest {
                lookup: Some(proto::get_user_request::Lookup::Id(
                    world.globex_owner.id.clone(),
                )),
            }),
            "id",
        ),
        (
            "AddOrganizationMember.organization_id",
            Rpc::AddOrganizationMember(proto::AddOrganizationMemberRequest {
                organization_id: globex.clone(),
                user_id: world.admin.id.clone(),
                role: proto::MemberRole::Owner.into(),
                status: proto::MemberStatus::Active.into(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "GetOrganizationMember.organization_id",
            Rpc::GetOrganizationMember(proto::GetOrganizationMemberRequest {
                organization_id: globex.clone(),
                user_id: world.globex_owner.id.clone(),
            }),
            "organization_id",
        ),
        (
            "UpdateOrganizationMember.organization_id",
            Rpc::UpdateOrganizationMember(proto::UpdateOrganizationMemberRequest {
                organization_id: globex.clone(),
                user_id: world.globex_owner.id.clone(),
                update_mask: mask(&["status"]),
                status: proto::MemberStatus::Suspended.into(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "RemoveOrganizationMember.organization_id",
            Rpc::RemoveOrganizationMember(proto::RemoveOrganizationMemberRequest {
                organization_id: globex.clone(),
                user_id: world.globex_owner.id.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "ListOrganizationMembers.organization_id",
            Rpc::ListOrganizationMembers(proto::ListOrganizationMembersRequest {
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "BatchAddOrganizationMembers.organization_id",
            Rpc::BatchAddOrganizationMembers(proto::BatchAddOrganizationMembersRequest {
                organization_id: globex.clone(),
                members: vec![proto::NewOrganizationMember {
                    user_id: world.admin.id.clone(),
                    role: proto::MemberRole::Collaborator.into(),
                    status: proto::MemberStatus::Active.into(),
                }],
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "CreateTeam.organization_id",
            Rpc::CreateTeam(proto::CreateTeamRequest {
                organization_id: globex.clone(),
                name: "shadow".to_owned(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "CreateTeam.parent_team_id",
            Rpc::CreateTeam(proto::CreateTeamRequest {
                organization_id: acme.clone(),
                name: "shadow".to_owned(),
                parent_team_id: sales.clone(),
                ..Default::default()
            }),
            "parent_team_id",
        ),
        (
            "CreateTeam.grants.resource_id",
            Rpc::CreateTeam(proto::CreateTeamRequest {
                organization_id: acme.clone(),
                name: "shadow".to_owned(),
                grants: vec![proto::NewTeamGrant {
                    resource_id: globex_mailbox.clone(),
                    permissions: vec!["read".to_owned()],
                    expire_time: None,
                }],
                ..Default::default()
            }),
            "grants[0].resource_id",
        ),
        (
            "GetTeam.id",
            Rpc::GetTeam(proto::GetTeamRequest { id: sales.clone() }),
            "id",
        ),
        (
            "ListTeams.organization_id",
            Rpc::ListTeams(proto::ListTeamsRequest {
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "ListTeams.parent_team_id",
            Rpc::ListTeams(proto::ListTeamsRequest {
                organization_id: acme.clone(),
                parent_team_id: sales.clone(),
                ..Default::default()
            }),
            "parent_team_id",
        ),
        (
            "UpdateTeam.id",
            Rpc::UpdateTeam(proto::UpdateTeamRequest {
                id: sales.clone(),
                update_mask: mask(&["name"]),
                name: "renamed".to_owned(),
                ..Default::default()
            }),
            "id",
        ),
        (
            "DeleteTeam.id",
            Rpc::DeleteTeam(proto::DeleteTeamRequest {
                id: sales.clone(),
                ..Default::default()
            }),
            "id",
        ),
        (
            "SetTeamLeaders.team_id",
            Rpc::SetTeamLeaders(proto::SetTeamLeadersRequest {
                team_id: sales.clone(),
                leader_user_ids: vec![world.globex_owner.id.clone()],
                ..Default::default()
            }),
            "team_id",
        ),
        (
            "SetTeamParent.team_id",
            Rpc::SetTeamParent(proto::SetTeamParentRequest {
                team_id: sales.clone(),
                parent_team_id: world.docs.id.clone(),
                ..Default::default()
            }),
            "parent_team_id",
        ),
        (
            "SetTeamParent.parent_team_id",
            Rpc::SetTeamParent(proto::SetTeamParentRequest {
                team_id: world.docs.id.clone(),
                parent_team_id: sales.clone(),
                ..Default::default()
            }),
            "parent_team_id",
        ),
        (
            "SetTeamRole.team_id",
            Rpc::SetTeamRole(proto::SetTeamRoleRequest {
                team_id: sales.clone(),
                role: proto::MemberRole::Administrator.into(),
                ..Default::default()
            }),
            "team_id",
        ),
        (
            "AddTeamMembers.team_id",
            Rpc::AddTeamMembers(proto::AddTeamMembersRequest {
                team_id: sales.clone(),
                members: vec![proto::NewTeamMember {
                    user_id: world.admin.id.clone(),
                    expire_time: None,
                }],
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "RemoveTeamMembers.team_id",
            Rpc::RemoveTeamMembers(proto::RemoveTeamMembersRequest {
                team_id: sales.clone(),
                user_ids: vec![world.globex_owner.id.clone()],
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "ListTeamMembers.team_id",
            Rpc::ListTeamMembers(proto::ListTeamMembersRequest {
                team_id: sales.clone(),
                ..Default::default()
            }),
            "team_id",
        ),
        (
            "ListUserTeams.organization_id",
            Rpc::ListUserTeams(proto::ListUserTeamsRequest {
                user_id: world.globex_owner.id.clone(),
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "CreateResource.organization_id",
            Rpc::CreateResource(proto::CreateResourceRequest {
                organization_id: globex.clone(),
                resource: Some(new_mailbox("evil@globex.example")),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "BatchCreateResources.organization_id",
            Rpc::BatchCreateResources(proto::BatchCreateResourcesRequest {
                organization_id: globex.clone(),
                resources: vec![new_mailbox("evil@globex.example")],
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "GetResource.id",
            Rpc::GetResource(proto::GetResourceRequest {
                lookup: Some(proto::get_resource_request::Lookup::Id(
                    globex_mailbox.clone(),
                )),
            }),
            "id",
        ),
        (
            "GetResource.key.organization_id",
            Rpc::GetResource(proto::GetResourceRequest {
                lookup: Some(proto::get_resource_request::Lookup::Key(
                    proto::ResourceKey {
                        organization_id: globex.clone(),
                        resource_type: "mail.mailbox".to_owned(),
                        external_id: "info@globex.example".to_owned(),
                    },
                )),
            }),
            "key.organization_id",
        ),
        (
            "UpdateResource.id",
            Rpc::UpdateResource(proto::UpdateResourceRequest {
                id: globex_mailbox.clone(),
                update_mask: mask(&["display_name"]),
                display_name: "renamed".to_owned(),
                ..Default::default()
            }),
            "id",
        ),
        (
            "DeleteResource.id",
            Rpc::DeleteResource(proto::DeleteResourceRequest {
                id: globex_mailbox.clone(),
                ..Default::default()
            }),
            "id",
        ),
        (
            "ListResources.organization_id",
            Rpc::ListResources(proto::ListResourcesRequest {
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "ListResources.parent_resource_id",
            Rpc::ListResources(proto::ListResourcesRequest {
                organization_id: acme.clone(),
                parent_resource_id: globex_mailbox.clone(),
                ..Default::default()
            }),
            "parent_resource_id",
        ),
        (
            "GrantAccess.resource_id",
            Rpc::GrantAccess(proto::GrantAccessRequest {
                resource_id: globex_mailbox.clone(),
                subject: team_subject(&world.docs),
                permissions: vec!["read".to_owned()],
                ..Default::default()
            }),
            "subject.team_id",
        ),
        (
            "GrantAccess.subject.team_id",
            Rpc::GrantAccess(proto::GrantAccessRequest {
                resource_id: world.acme_mailbox.id.clone(),
                subject: team_subject(&world.sales),
                permissions: vec!["read".to_owned()],
                ..Default::default()
            }),
            "subject.team_id",
        ),
        (
            "RevokeAccess.resource_id",
            Rpc::RevokeAccess(proto::RevokeAccessRequest {
                resource_id: globex_mailbox.clone(),
                subject: team_subject(&world.docs),
                ..Default::default()
            }),
            "subject.team_id",
        ),
        (
            "RevokeAccess.subject.team_id",
            Rpc::RevokeAccess(proto::RevokeAccessRequest {
                resource_id: world.acme_mailbox.id.clone(),
                subject: team_subject(&world.sales),
                ..Default::default()
            }),
            "subject.team_id",
        ),
        (
            "BatchSetGrants.organization_id",
            Rpc::BatchSetGrants(proto::BatchSetGrantsRequest {
                organization_id: globex.clone(),
                changes: vec![proto::GrantChange {
                    resource_id: world.acme_mailbox.id.clone(),
                    subject: team_subject(&world.docs),
                    permissions: vec!["read".to_owned()],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            "changes[0].resource_id",
        ),
        (
            "BatchSetGrants.changes.resource_id",
            Rpc::BatchSetGrants(proto::BatchSetGrantsRequest {
                organization_id: acme.clone(),
                changes: vec![proto::GrantChange {
                    resource_id: globex_mailbox.clone(),
                    subject: team_subject(&world.docs),
                    permissions: vec!["read".to_owned()],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            "changes[0].resource_id",
        ),
        (
            "BatchSetGrants.changes.subject.team_id",
            Rpc::BatchSetGrants(proto::BatchSetGrantsRequest {
                organization_id: acme.clone(),
                changes: vec![proto::GrantChange {
                    resource_id: world.acme_mailbox.id.clone(),
                    subject: team_subject(&world.sales),
                    permissions: vec!["read".to_owned()],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            "changes[0].subject.team_id",
        ),
        (
            "ListGrants.organization_id",
            Rpc::ListGrants(proto::ListGrantsRequest {
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "ListGrants.resource_id",
            Rpc::ListGrants(proto::ListGrantsRequest {
                organization_id: acme.clone(),
                resource_id: globex_mailbox.clone(),
                ..Default::default()
            }),
            "resource_id",
        ),
        (
            "ListGrants.subject.team_id",
            Rpc::ListGrants(proto::ListGrantsRequest {
                organization_id: acme.clone(),
                subject: team_subject(&world.sales),
                ..Default::default()
            }),
            "subject.team_id",
        ),
        (
            "CreateInvitation.organization_id",
            Rpc::CreateInvitation(proto::CreateInvitationRequest {
                organization_id: globex.clone(),
                email: "friend@example.com".to_owned(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "CreateInvitation.team_ids",
            Rpc::CreateInvitation(proto::CreateInvitationRequest {
                organization_id: acme.clone(),
                email: "friend@example.com".to_owned(),
                team_ids: vec![sales.clone()],
                ..Default::default()
            }),
            "team_ids[0]",
        ),
        (
            "GetInvitation.id",
            Rpc::GetInvitation(proto::GetInvitationRequest {
                id: world.globex_invitation.id.clone(),
            }),
            "id",
        ),
        (
            "AcceptInvitation.id",
            Rpc::AcceptInvitation(proto::AcceptInvitationRequest {
                id: world.globex_invitation.id.clone(),
                ..Default::default()
            }),
            "id",
        ),
        (
            "RevokeInvitation.id",
            Rpc::RevokeInvitation(proto::RevokeInvitationRequest {
                id: world.globex_invitation.id.clone(),
                ..Default::default()
            }),
            "id",
        ),
        (
            "ListInvitations.organization_id",
            Rpc::ListInvitations(proto::ListInvitationsRequest {
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "ListAuditEvents.organization_id",
            Rpc::ListAuditEvents(proto::ListAuditEventsRequest {
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "organization_id",
        ),
        (
            "Watch.organization_id",
            Rpc::Watch(proto::WatchRequest {
                organization_id: globex.clone(),
                ..Default::default()
            }),
            "",
        ),
        (
            "ExportSnapshot.organization_id",
            Rpc::ExportSnapshot(proto::ExportSnapshotRequest {
                organization_id: globex,
            }),
            "",
        ),
    ]
}

/// Returns the field a PERMISSION_DENIED status names in its `ErrorInfo`.
fn denied_field(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("field").cloned())
        .unwrap_or_default()
}

#[track_caller]
fn assert_denied(result: Result<(), Status>, case: &str) -> Status {
    match result {
        Err(status) if status.code() == Code::PermissionDenied => status,
        Err(status) => panic!(
            "{case}: expected PERMISSION_DENIED, got {:?}: {}",
            status.code(),
            status.message()
        ),
        Ok(()) => panic!("{case}: expected PERMISSION_DENIED, but the call succeeded"),
    }
}

#[track_caller]
fn assert_allowed(result: Result<(), Status>, case: &str) {
    if let Err(status) = result {
        panic!(
            "{case}: expected success, got {:?}: {}",
            status.code(),
            status.message()
        );
    }
}

/// Lists every audit event of an organization, read by the admin service
/// account.
async fn audit_events(
    harness: &Harness,
    organization: &proto::Organization,
) -> Vec<proto::AuditEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = harness
            .setup()
            .list_audit_events(proto::ListAuditEventsRequest {
                organization_id: organization.id.clone(),
                page_size: 1_000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListAuditEvents")
            .into_inner();
        events.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// Counts the audit events of both organizations, to compare before and
/// after.
async fn audit_counts(harness: &Harness, world: &World) -> (usize, usize) {
    let acme = audit_events(harness, &world.acme).await.len();
    let globex = audit_events(harness, &world.globex).await.len();
    (acme, globex)
}

#[tokio::test]
async fn non_admins_denied_every_admin_call() {
    for_each_database(|harness, world| async move {
        let before = audit_counts(&harness, &world).await;

        for (name, user) in [
            ("collaborator", &world.collaborator),
            ("leader", &world.leader),
            ("external", &world.external),
            ("globex owner", &world.globex_owner),
        ] {
            let client = harness.user(user);
            for (rpc, request) in admin_calls(&world) {
                assert_denied(request.send(&client).await, &format!("{name} {rpc}"));
            }
        }

        assert_eq!(
            audit_counts(&harness, &world).await,
            before,
            "denied calls left audit events"
        );
        harness
    })
    .await;
}

#[tokio::test]
async fn administrators_allowed_organization_calls() {
    for_each_database(|harness, world| async move {
        let service_only = [
            "CreateOrganization",
            "CreateUser",
            "UpdateUser",
            "ListUsers",
            "BatchCreateUsers",
            "Watch",
            "ExportSnapshot",
        ];
        let client = harness.user(&world.it_admin);
        for (rpc, request) in admin_calls(&world) {
            // These calls need the entities that later rows delete.
            if [
                "DeleteTeam",
                "DeleteResource",
                "RevokeInvitation",
                "AcceptInvitation",
                "RemoveTeamMembers",
            ]
            .contains(&rpc)
            {
                continue;
            }
            let result = request.send(&client).await;
            if service_only.contains(&rpc) {
                assert_denied(result, rpc);
            } else {
                assert_allowed(result, rpc);
            }
        }
        harness
    })
    .await;
}

#[tokio::test]
async fn cross_organization_ids_denied() {
    for_each_database(|harness, world| async move {
        let before = audit_counts(&harness, &world).await;

        let client = harness.user(&world.admin);
        let mut wrong_fields = Vec::new();
        for (case, request, field) in cross_organization_calls(&world) {
            let status = assert_denied(request.send(&client).await, case);
            let denied = denied_field(&status);
            if !field.is_empty() && denied != field {
                wrong_fields.push(format!("{case}: expected {field}, got {denied}"));
            }
        }
        assert!(wrong_fields.is_empty(), "denials named other fields:\n{}", wrong_fields.join("\n"));

        assert_eq!(
            audit_counts(&harness, &world).await,
            before,
            "denied calls left audit events"
        );
        harness
    })
    .await;
}

#[tokio::test]
async fn unknown_ids_denied_like_foreign_ones() {
    for_each_database(|harness, world| async move {
        let client = harness.user(&world.admin);
        let unknown = uuid::Uuid::now_v7().to_string();

        let result = Rpc::GetTeam(proto::GetTeamRequest {
            id: unknown.clone(),
        })
        .send(&client)
        .await;
        assert_denied(result, "GetTeam unknown id");
        let result = Rpc::GetOrganization(proto::GetOrganizationRequest {
            lookup: Some(proto::get_organization_request::Lookup::Name(
                "no-such-organization".to_owned(),
            )),
        })
        .send(&client)
        .await;
        assert_denied(result, "GetOrganization unknown name");

        let setup = harness.setup();
        let status = Rpc::GetTeam(proto::GetTeamRequest { id: unknown })
            .send(&setup)
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::NotFound,
            "admin service account: {}",
            status.message()
        );
        harness
    })
    .await;
}

#[tokio::test]
async fn leader_manages_led_team_only() {
    for_each_database(|harness, world| async move {
        let leader = harness.user(&world.leader);
        let add_newcomer = |team: &proto::Team| {
            Rpc::AddTeamMembers(proto::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: vec![proto::NewTeamMember {
                    user_id: world.newcomer.id.clone(),
                    expire_time: None,
                }],
                ..Default::default()
            })
        };
        let remove_newcomer = Rpc::RemoveTeamMembers(proto::RemoveTeamMembersRequest {
            team_id: world.docs.id.clone(),
            user_ids: vec![world.newcomer.id.clone()],
            ..Default::default()
        });

        assert_allowed(
            add_newcomer(&world.docs).send(&leader).await,
            "add to led team",
        );
        assert_allowed(
            remove_newcomer.clone().send(&leader).await,
            "remove from led team",
        );
        assert_denied(
            add_newcomer(&world.it).send(&leader).await,
            "add to another team",
        );

        harness
            .setup()
            .update_organization(proto::UpdateOrganizationRequest {
                id: world.acme.id.clone(),
                update_mask: mask(&["settings"]),
                settings: Some(proto::OrganizationSettings {
                    leaders_manage_members: false,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("UpdateOrganization");
        assert_denied(
            add_newcomer(&world.docs).send(&leader).await,
            "add with the setting off",
        );
        harness
    })
    .await;
}

#[tokio::test]
async fn membership_escalation_denied() {
    for_each_database(|harness, world| async move {
        let before = audit_counts(&harness, &world).await;
        let add_self = |user: &proto::User, team: &proto::Team| {
            Rpc::AddTeamMembers(proto::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: vec![proto::NewTeamMember {
                    user_id: user.id.clone(),
                    expire_time: None,
                }],
                ..Default::default()
            })
        };

        let collaborator = harness.user(&world.collaborator);
        assert_denied(
            add_self(&world.collaborator, &world.it)
                .send(&collaborator)
                .await,
            "collaborator joins admins",
        );
        let leader = harness.user(&world.leader);
        assert_denied(
            add_self(&world.leader, &world.it).send(&leader).await,
            "leader joins admins",
        );

        // A led team that carries a role: the leader may no longer add
        // anyone, themselves included.
        set_team_role(
            &harness.setup(),
            &world.docs,
            proto::MemberRole::Collaborator,
        )
        .await;
        let before = (before.0 + 1, before.1);
        let status = assert_denied(
            add_self(&world.newcomer, &world.docs).send(&leader).await,
            "leader adds to role team",
        );
        assert_eq!(denied_field(&status), "team_id");

        let admin = harness.user(&world.admin);
        let make_owner = Rpc::AddOrganizationMember(proto::AddOrganizationMemberRequest {
            organization_id: world.acme.id.clone(),
            user_id: world.globex_owner.id.clone(),
            role: proto::MemberRole::Owner.into(),
            status: proto::MemberStatus::Active.into(),
            ..Default::default()
        });
        assert_denied(
            make_owner.clone().send(&admin).await,
            "administrator adds an owner",
        );
        let promote_self = Rpc::UpdateOrganizationMember(proto::UpdateOrganizationMemberRequest {
            organization_id: world.acme.id.clone(),
            user_id: world.admin.id.clone(),
            update_mask: mask(&["role"]),
            role: proto::MemberRole::Owner.into(),
            ..Default::default()
        });
        assert_denied(
            promote_self.send(&admin).await,
            "administrator promotes self",
        );
        let remove_owner = Rpc::RemoveOrganizationMember(proto::RemoveOrganizationMemberRequest {
            organization_id: world.acme.id.clone(),
            user_id: world.owner.id.clone(),
            ..Default::default()
        });
        assert_denied(
            remove_owner.send(&admin).await,
            "administrator removes the owner",
        );

        assert_eq!(
            audit_counts(&harness, &world).await,
            before,
            "denied calls left audit events"
        );

        let owner = harness.user(&world.owner);
        assert_allowed(make_owner.send(&owner).await, "owner adds an owner");
        harness
    })
    .await;
}

#[tokio::test]
async fn removed_admin_loses_power_next_call() {
    for_each_database(|harness, world| async move {
        let it_admin = harness.user(&world.it_admin);
        let create_team = |name: &str| {
            Rpc::CreateTeam(proto::CreateTeamRequest {
                organization_id: world.acme.id.clone(),
                name: name.to_owned(),
                ..Default::default()
            })
        };
        assert_allowed(
            create_team("first").send(&it_admin).await,
            "while in the it team",
        );

        harness
            .setup()
            .remove_team_members(proto::RemoveTeamMembersRequest {
                team_id: world.it.id.clone(),
                user_ids: vec![world.it_admin.id.clone()],
                ..Default::default()
            })
            .await
            .expect("RemoveTeamMembers");

        assert_denied(create_team("second").send(&it_admin).await, "after removal");
        harness
    })
    .await;
}

#[tokio::test]
async fn last_owner_cannot_leave() {
    for_each_database(|harness, world| async move {
        let owner = harness.user(&world.owner);
        let leave = Rpc::RemoveOrganizationMember(proto::RemoveOrganizationMemberRequest {
            organization_id: world.acme.id.clone(),
            user_id: world.owner.id.clone(),
            ..Default::default()
        });
        let status = leave.send(&owner).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{}",
            status.message()
        );

        let demote = Rpc::UpdateOrganizationMember(proto::UpdateOrganizationMemberRequest {
            organization_id: world.acme.id.clone(),
            user_id: world.owner.id.clone(),
            update_mask: mask(&["role"]),
            role: proto::MemberRole::Administrator.into(),
            ..Default::default()
        });
        let status = demote.send(&owner).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{}",
            status.message()
        );
        harness
    })
    .await;
}

#[tokio::test]
async fn audit_records_each_change_once() {
    for_each_database(|harness, world| async move {
        let admin = harness.user(&world.admin);
        let team = admin
            .clone()
            .create_team(proto::CreateTeamRequest {
                organization_id: world.acme.id.clone(),
                name: "audited".to_owned(),
                members: vec![proto::NewTeamMember {
                    user_id: world.collaborator.id.clone(),
                    expire_time: None,
                }],
                ..Default::default()
            })
            .await
            .expect("CreateTeam")
            .into_inner()
            .team
            .unwrap();
        let collaborator = harness.user(&world.collaborator);
        let rename = Rpc::UpdateTeam(proto::UpdateTeamRequest {
            id: team.id.clone(),
            update_mask: mask(&["name"]),
            name: "renamed".to_owned(),
            ..Default::default()
        });
        assert_denied(rename.send(&collaborator).await, "collaborator renames");

        let events = audit_events(&harness, &world.acme).await;
        let actor = format!("user:{}", world.admin.id);
        let mut per_entity: HashMap<(i32, String), usize> = HashMap::new();
        for event in events.iter().filter(|event| event.actor == actor) {
            let key = (event.entity_kind, format!("{:?}", event.entity_key));
            *per_entity.entry(key).or_default() += 1;
        }
        assert_eq!(
            per_entity.len(),
            2,
            "the team and the membership: {per_entity:?}"
        );
        assert!(
            per_entity.values().all(|count| *count == 1),
            "{per_entity:?}"
        );
        let collaborator_actor = format!("user:{}", world.collaborator.id);
        assert!(events.iter().all(|event| event.actor != collaborator_actor));

        let admin_read = Rpc::ListAuditEvents(proto::ListAuditEventsRequest {
            organization_id: world.acme.id.clone(),
            ..Default::default()
        });
        assert_allowed(
            admin_read.clone().send(&admin).await,
            "administrator reads the audit log",
        );
        assert_denied(
            admin_read.send(&collaborator).await,
            "collaborator reads the audit log",
        );
        harness
    })
    .await;
}

#[tokio::test]
async fn change_stream_needs_reading_service() {
    for_each_database(|harness, world| async move {
        let watch = Rpc::Watch(proto::WatchRequest::default());
        let snapshot = Rpc::ExportSnapshot(proto::ExportSnapshotRequest::default());

        let owner = harness.user(&world.owner);
        assert_denied(watch.clone().send(&owner).await, "owner watches");
        assert_denied(snapshot.clone().send(&owner).await, "owner exports");

        let sidecar = harness.client_as(TEST_SIDECAR_ACCOUNT);
        assert_allowed(watch.send(&sidecar).await, "sidecar watches");
        assert_allowed(snapshot.send(&sidecar).await, "sidecar exports");
        harness
    })
    .await;
}

#[tokio::test]
async fn members_see_only_own_teams() {
    for_each_database(|harness, world| async move {
        let external = harness.user(&world.external);
        let get_team = |team: &proto::Team| {
            Rpc::GetTeam(proto::GetTeamRequest {
                id: team.id.clone(),
            })
        };
        assert_allowed(
            get_team(&world.docs).send(&external).await,
            "external reads own team",
        );
        assert_denied(
            get_team(&world.it).send(&external).await,
            "external reads another team",
        );
        let list_members = Rpc::ListTeamMembers(proto::ListTeamMembersRequest {
            team_id: world.docs.id.clone(),
            ..Default::default()
        });
        assert_denied(
            list_members.clone().send(&external).await,
            "external lists members",
        );

        let collaborator = harness.user(&world.collaborator);
        assert_allowed(
            list_members.send(&collaborator).await,
            "collaborator lists own team",
        );
        let own_teams = Rpc::ListUserTeams(proto::ListUserTeamsRequest {
            user_id: world.collaborator.id.clone(),
            ..Default::default()
        });
        assert_allowed(
            own_teams.send(&collaborator).await,
            "collaborator lists own teams",
        );

        let organizations = collaborator
            .clone()
            .list_organizations(proto::ListOrganizationsRequest::default())
            .await
            .expect("ListOrganizations")
            .into_inner()
            .organizations;
        let names: Vec<&str> = organizations
            .iter()
            .map(|organization| organization.name.as_str())
            .collect();
        assert_eq!(names, vec!["acme"]);
        harness
    })
    .await;
}

/// The directory's role check (a storage query) and the sidecar's
/// evaluation index must agree on who is an administrator. The sidecar
/// shows it through the organization default that gives owners and
/// administrators the highest kChat level. Roles come from teams and
/// parent teams.
#[tokio::test]
async fn directory_and_sidecar_agree_on_administrators() {
    for_each_database(|harness, world| async move {
        let setup = harness.setup();
        let settings = proto::OrganizationSettings {
            leaders_manage_members: true,
            resource_type_defaults: vec![proto::ResourceTypeDefault {
                resource_type: "kchat.channel".to_owned(),
                base_level: String::new(),
                administrators_get_highest_level: true,
            }],
        };
        setup
            .clone()
            .update_organization(proto::UpdateOrganizationRequest {
                id: world.acme.id.clone(),
                update_mask: mask(&["settings"]),
                settings: Some(settings),
                ..Default::default()
            })
            .await
            .expect("UpdateOrganization");
        let helpdesk_member = user(&setup, "helpdesk-member").await;
        member(
            &setup,
            &world.acme,
            &helpdesk_member,
            proto::MemberRole::Collaborator,
        )
        .await;
        let helpdesk = team(&setup, &world.acme, "helpdesk", &[&helpdesk_member], &[]).await;
        setup
            .clone()
            .set_team_parent(proto::SetTeamParentRequest {
                team_id: helpdesk.id.clone(),
                parent_team_id: world.it.id.clone(),
                ..Default::default()
            })
            .await
            .expect("SetTeamParent");
        let channel = setup
            .clone()
            .create_resource(proto::CreateResourceRequest {
                organization_id: world.acme.id.clone(),
                resource: Some(proto::NewResource {
                    resource_type: "kchat.channel".to_owned(),
                    external_id: "general".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("CreateResource")
            .into_inner();
        let token = channel.consistency_token;
        let channel = channel.resource.unwrap();

        let sidecar = RunningSidecar::start(&harness.directory.url()).await;
        let authz = Authz::new(sidecar.client().await);
        let users = [
            &world.owner,
            &world.admin,
            &world.collaborator,
            &world.external,
            &world.leader,
            &world.it_admin,
            &helpdesk_member,
            &world.globex_owner,
        ];
        for user in users {
            let read_members =
                Rpc::ListOrganizationMembers(proto::ListOrganizationMembersRequest {
                    organization_id: world.acme.id.clone(),
                    ..Default::default()
                });
            let directory_says_admin = read_members.send(&harness.user(user)).await.is_ok();
            let sidecar_says_admin = authz.allowed(&user.id, &channel.id, "admin", &token).await;
            assert_eq!(directory_says_admin, sidecar_says_admin, "{}", user.login);
        }
        let admins = [
            &world.owner,
            &world.admin,
            &world.it_admin,
            &helpdesk_member,
        ];
        for user in admins {
            assert!(
                authz.allowed(&user.id, &channel.id, "admin", &token).await,
                "{}",
                user.login
            );
        }

        sidecar.stop().await;
        harness
    })
    .await;
}

/// Makes the call and returns the denial's message with every
/// occurrence of `id_text` replaced, so two denials compare by their wording.
async fn denial_wording<F, Fut>(call: F, id_text: &str) -> String
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), Status>>,
{
    let status = assert_denied(call().await, id_text);
    status.message().replace(id_text, "<id>")
}

#[tokio::test]
async fn other_organization_ids_look_unknown() {
    for_each_database(|harness, world| async move {
        let client = harness.user(&world.globex_owner);
        let unknown = uuid::Uuid::now_v7().to_string();

        let by_name = |name: String| {
            let mut client = client.clone();
            move || async move {
                client
                    .get_organization(proto::GetOrganizationRequest {
                        lookup: Some(proto::get_organization_request::Lookup::Name(name)),
                    })
                    .await
                    .map(|_| ())
            }
        };
        assert_eq!(
            denial_wording(by_name("acme".to_owned()), "acme").await,
            denial_wording(by_name("no-such-org".to_owned()), "no-such-org").await,
            "GetOrganization by name"
        );

        let by_login = |login: String| {
            let mut client = client.clone();
            move || async move {
                client
                    .get_user(proto::GetUserRequest {
                        lookup: Some(proto::get_user_request::Lookup::Login(login)),
                    })
                    .await
                    .map(|_| ())
            }
        };
        let existing_login = world.collaborator.login.clone();
        let known_user = denial_wording(by_login(existing_login.clone()), &existing_login).await;
        assert!(
            !known_user.contains(&world.collaborator.id),
            "GetUser by login revealed the user id: {known_user}"
        );
        assert_eq!(
            known_user,
            denial_wording(by_login("no-such-login".to_owned()), "no-such-login").await,
            "GetUser by login"
        );

        let team = |id: String| {
            let mut client = client.clone();
            move || async move {
                client
                    .get_team(proto::GetTeamRequest { id })
                    .await
                    .map(|_| ())
            }
        };
        assert_eq!(
            denial_wording(team(world.docs.id.clone()), &world.docs.id).await,
            denial_wording(team(unknown.clone()), &unknown).await,
            "GetTeam"
        );

        let resource = |id: String| {
            let mut client = client.clone();
            move || async move {
                client
                    .get_resource(proto::GetResourceRequest {
                        lookup: Some(proto::get_resource_request::Lookup::Id(id)),
                    })
                    .await
                    .map(|_| ())
            }
        };
        let acme_resource =
            denial_wording(resource(world.acme_mailbox.id.clone()), &world.acme_mailbox.id).await;
        assert!(
            !acme_resource.contains(&world.acme.id),
            "GetResource revealed the organization: {acme_resource}"
        );
        assert_eq!(
            acme_resource,
            denial_wording(resource(unknown.clone()), &unknown).await,
            "GetResource"
        );

        let mixed = {
            let mut client = client.clone();
            let globex = world.globex.id.clone();
            let acme_team = world.docs.id.clone();
            move || async move {
                client
                    .create_team(proto::CreateTeamRequest {
                        organization_id: globex,
                        name: "mixed".to_owned(),
                        parent_team_id: acme_team,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            }
        };
        let mixed_wording = denial_wording(mixed, &world.docs.id).await;
        assert!(
            !mixed_wording.contains(&world.acme.id),
            "a mixed request revealed the other organization: {mixed_wording}"
        );

        harness
    })
    .await;
}
