//! Checks run as every kind of caller against a real store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration as TimeSpan;
use workteams_domain::command::{
    MemberUpdate, NewInvitation, NewMember, NewOrganization, NewTeamMember, NewUser,
    OrganizationUpdate, RemoveTeamMembers, SetTeamLeaders, SetTeamRole,
};
use workteams_domain::{
    Invitation, OrganizationSettings, Resource, ResourceTypeRegistry, ServiceAccount, Team,
};
use workteams_storage::RequestContext;
use workteams_storage::testing::TestDatabase;

use chrono::Utc;
use workteams_domain::command::{
    MemberSpec, NewResource, NewTeam, OrganizationLookup, ResourceLookup,
};
use workteams_domain::{
    Caller, MemberRole, MemberStatus, Organization, OrganizationId, Scope, Subject, TeamId, User,
};
use workteams_storage::{Store, StoreError, TeamMembersQuery, UserTeamsQuery};

use super::{Access, Ids, Standing};
use crate::context::CallContext;
use crate::error::ApiError;

/// Two organizations: acme, whose leaders manage members, and globex.
struct World {
    store: Store,
    acme: Organization,
    globex: Organization,
    owner: User,
    admin: User,
    collaborator: User,
    external: User,
    leader: User,
    /// A collaborator who is an administrator through the `it` team.
    it_admin: User,
    /// A collaborator in `helpdesk`, a child of `it`.
    helpdesk_member: User,
    outsider: User,
    globex_owner: User,
    /// Led by `leader`; members `leader`, `collaborator`, `external`.
    docs: Team,
    /// Carries the administrator role.
    it: Team,
    helpdesk: Team,
    sales: Team,
    acme_mailbox: Resource,
    globex_mailbox: Resource,
    globex_invitation: Invitation,
}

fn context() -> RequestContext {
    RequestContext {
        actor: Some("fixture".to_owned()),
        ..RequestContext::default()
    }
}

async fn organization(store: &Store, name: &str, leaders_manage_members: bool) -> Organization {
    let settings = OrganizationSettings {
        leaders_manage_members,
        ..OrganizationSettings::default()
    };
    let command = NewOrganization {
        name: name.to_owned(),
        display_name: String::new(),
        settings,
        owner_user_id: None,
    };
    store
        .create_organization(&context(), command)
        .await
        .unwrap()
        .value
}

async fn user(store: &Store, login: &str) -> User {
    let command = NewUser {
        login: login.to_owned(),
        email: Some(format!("{login}@example.com")),
        display_name: String::new(),
    };
    store.create_user(&context(), command).await.unwrap().value
}

async fn member(store: &Store, organization: &Organization, user: &User, role: MemberRole) {
    let command = NewMember {
        organization_id: organization.id,
        member: MemberSpec {
            user_id: user.id,
            role,
            status: MemberStatus::Active,
        },
    };
    store.add_member(&context(), command).await.unwrap();
}

async fn team(
    store: &Store,
    organization: &Organization,
    name: &str,
    parent: Option<TeamId>,
    members: &[&User],
) -> Team {
    let command = NewTeam {
        organization_id: organization.id,
        name: name.to_owned(),
        description: String::new(),
        color: String::new(),
        parent_team_id: parent,
        members: members
            .iter()
            .map(|user| NewTeamMember {
                user_id: user.id,
                expire_time: None,
            })
            .collect(),
        leader_user_ids: Vec::new(),
        grants: Vec::new(),
        added_by: None,
    };
    store.create_team(&context(), command).await.unwrap().value
}

async fn mailbox(store: &Store, organization: &Organization, address: &str) -> Resource {
    let resource = NewResource {
        resource_type: "mail.mailbox".to_owned(),
        external_id: address.to_owned(),
        display_name: String::new(),
        parent: None,
        inherits: true,
    };
    store
        .create_resource(&context(), organization.id, resource)
        .await
        .unwrap()
        .value
}

async fn set_role(store: &Store, team: &Team, role: Option<MemberRole>) {
    let command = SetTeamRole {
        team_id: team.id,
        role,
        etag: None,
    };
    store.set_team_role(&context(), command).await.unwrap();
}

async fn world(store: Store) -> World {
    let registry = ResourceTypeRegistry::with_builtins(Vec::new()).unwrap();
    store
        .sync_resource_types(&context(), &registry)
        .await
        .unwrap();

    let acme = organization(&store, "acme", true).await;
    let globex = organization(&store, "globex", false).await;
    let owner = user(&store, "owner").await;
    let admin = user(&store, "admin").await;
    let collaborator = user(&store, "collaborator").await;
    let external = user(&store, "external").await;
    let leader = user(&store, "leader").await;
    let it_admin = user(&store, "it-admin").await;
    let helpdesk_member = user(&store, "helpdesk").await;
    let outsider = user(&store, "outsider").await;
    let globex_owner = user(&store, "globex-owner").await;

    member(&store, &acme, &owner, MemberRole::Owner).await;
    member(&store, &acme, &admin, MemberRole::Administrator).await;
    member(&store, &acme, &collaborator, MemberRole::Collaborator).await;
    member(&store, &acme, &external, MemberRole::External).await;
    member(&store, &acme, &leader, MemberRole::Collaborator).await;
    member(&store, &acme, &it_admin, MemberRole::Collaborator).await;
    member(&store, &acme, &helpdesk_member, MemberRole::Collaborator).await;
    member(&store, &globex, &globex_owner, MemberRole::Owner).await;

    let docs = team(
        &store,
        &acme,
        "docs",
        None,
        &[&leader, &collaborator, &external],
    )
    .await;
    let leaders = SetTeamLeaders {
        team_id: docs.id,
        leader_user_ids: vec![leader.id],
        etag: None,
    };
    store.set_team_leaders(&context(), leaders).await.unwrap();
    let it = team(&store, &acme, "it", None, &[&it_admin]).await;
    set_role(&store, &it, Some(MemberRole::Administrator)).await;
    let helpdesk = team(&store, &acme, "helpdesk", Some(it.id), &[&helpdesk_member]).await;
    let sales = team(&store, &globex, "sales", None, &[&globex_owner]).await;

    let acme_mailbox = mailbox(&store, &acme, "info@acme.example").await;
    let globex_mailbox = mailbox(&store, &globex, "info@globex.example").await;
    let invitation = NewInvitation {
        organization_id: globex.id,
        email: "new@globex.example".to_owned(),
        team_ids: vec![sales.id],
        expire_time: None,
        invited_by: None,
    };
    let globex_invitation = store
        .create_invitation(&context(), invitation)
        .await
        .unwrap()
        .value;

    World {
        store,
        acme,
        globex,
        owner,
        admin,
        collaborator,
        external,
        leader,
        it_admin,
        helpdesk_member,
        outsider,
        globex_owner,
        docs,
        it,
        helpdesk,
        sales,
        acme_mailbox,
        globex_mailbox,
        globex_invitation,
    }
}

/// Runs `scenario` on a fresh world per test database.
async fn for_each_world<F, Fut>(scenario: F)
where
    F: Fn(World) -> Fut,
    Fut: Future<Output = ()>,
{
    for database in TestDatabase::all().await {
        let store = database.store().await;
        scenario(world(store).await).await;
        database.cleanup().await;
    }
}

fn call_as(caller: Caller) -> CallContext {
    let mut call = CallContext::fallback("Test");
    call.caller = caller;
    call
}

fn user_call(user: &User) -> CallContext {
    call_as(Caller::User(user.id))
}

fn service_call(scopes: Vec<Scope>) -> CallContext {
    call_as(Caller::Service(ServiceAccount {
        name: "robot".to_owned(),
        scopes,
    }))
}

/// Asserts a denial and returns the field it names.
#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: Result<T, ApiError>, case: &str) -> Option<String> {
    match result {
        Err(ApiError::PermissionDenied(denied)) => denied.field,
        other => panic!("{case}: expected a denial, got {other:?}"),
    }
}

#[track_caller]
fn assert_allowed<T: std::fmt::Debug>(result: Result<T, ApiError>, case: &str) {
    if let Err(error) = result {
        panic!("{case}: expected success, got {error:?}");
    }
}

/// Tries every organization-changing check as the caller of `call`.
async fn admin_checks(
    world: &World,
    call: &CallContext,
) -> Vec<(&'static str, Result<(), ApiError>)> {
    let access = Access::new(&world.store, call);
    let acme = Ids::organization("organization_id", world.acme.id);
    let new_team = NewTeam {
        organization_id: world.acme.id,
        name: "new".to_owned(),
        description: String::new(),
        color: String::new(),
        parent_team_id: None,
        members: Vec::new(),
        leader_user_ids: Vec::new(),
        grants: Vec::new(),
        added_by: None,
    };
    let spec = MemberSpec {
        user_id: world.outsider.id,
        role: MemberRole::Collaborator,
        status: MemberStatus::Active,
    };
    let grant = Ids::resource("resource_id", world.acme_mailbox.id)
        .and_subject("subject.team_id", Subject::Team(world.docs.id));
    vec![
        ("UpdateOrganization", access.manage(&acme).await.map(drop)),
        (
            "AddOrganizationMember",
            access
                .add_members(world.acme.id, &[("role".to_owned(), &spec)])
                .await,
        ),
        (
            "UpdateOrganizationMember",
            access
                .change_member(
                    world.acme.id,
                    world.collaborator.id,
                    Some(MemberRole::Administrator),
                )
                .await,
        ),
        (
            "RemoveOrganizationMember",
            access
                .change_member(world.acme.id, world.collaborator.id, None)
                .await,
        ),
        ("CreateTeam", access.create_team(&new_team).await),
        (
            "UpdateTeam",
            access
                .manage(&Ids::team("id", world.docs.id))
                .await
                .map(drop),
        ),
        (
            "SetTeamLeaders",
            access
                .manage(&Ids::team("team_id", world.docs.id))
                .await
                .map(drop),
        ),
        (
            "SetTeamParent",
            access
                .set_team_parent(world.docs.id, Some(world.it.id))
                .await,
        ),
        (
            "SetTeamRole",
            access
                .set_team_role(world.docs.id, Some(MemberRole::Collaborator))
                .await,
        ),
        (
            "AddTeamMembers to it",
            access.change_team_members(world.it.id).await,
        ),
        ("CreateResource", access.manage(&acme).await.map(drop)),
        (
            "DeleteResource",
            access
                .manage(&Ids::resource("id", world.acme_mailbox.id))
                .await
                .map(drop),
        ),
        ("GrantAccess", access.manage(&grant).await.map(drop)),
        (
            "CreateInvitation",
            access
                .create_invitation(world.acme.id, &[world.docs.id])
                .await,
        ),
        ("ListAuditEvents", access.read(&acme).await.map(drop)),
        (
            "ListOrganizationMembers",
            access.read(&acme).await.map(drop),
        ),
        ("CreateUser", access.require_global_admin("creating a user")),
        (
            "CreateOrganization",
            access.require_global_admin("creating an organization"),
        ),
        (
            "Watch",
            access.require_global_read("watching the change stream"),
        ),
    ]
}

#[tokio::test]
async fn members_without_admin_role_denied_admin_calls() {
    for_each_world(|world| async move {
        for (name, user) in [
            ("collaborator", &world.collaborator),
            ("external", &world.external),
            ("leader", &world.leader),
            ("outsider", &world.outsider),
            ("globex owner", &world.globex_owner),
        ] {
            let call = user_call(user);
            for (check, result) in admin_checks(&world, &call).await {
                assert_denied(result, &format!("{name} {check}"));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn administrators_allowed_admin_calls() {
    for_each_world(|world| async move {
        for (name, user) in [
            ("owner", &world.owner),
            ("admin", &world.admin),
            ("admin through team", &world.it_admin),
            ("admin through parent team", &world.helpdesk_member),
        ] {
            let call = user_call(user);
            for (check, result) in admin_checks(&world, &call).await {
                if check == "CreateUser" || check == "CreateOrganization" || check == "Watch" {
                    assert_denied(result, &format!("{name} {check}"));
                } else {
                    assert_allowed(result, &format!("{name} {check}"));
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn unauthenticated_allowed_everything() {
    for_each_world(|world| async move {
        let call = call_as(Caller::Unauthenticated);
        for (check, result) in admin_checks(&world, &call).await {
            assert_allowed(result, check);
        }
    })
    .await;
}

#[tokio::test]
async fn standing_follows_effective_role() {
    for_each_world(|world| async move {
        let cases = [
            (&world.owner, Standing::Owner),
            (&world.admin, Standing::Administrator),
            (&world.it_admin, Standing::Administrator),
            (&world.helpdesk_member, Standing::Administrator),
            (
                &world.collaborator,
                Standing::Collaborator(world.collaborator.id),
            ),
            (&world.external, Standing::External(world.external.id)),
            (&world.outsider, Standing::Outsider),
            (&world.globex_owner, Standing::Outsider),
        ];
        for (user, expected) in cases {
            let call = user_call(user);
            let standing = Access::new(&world.store, &call)
                .standing(world.acme.id)
                .await
                .unwrap();
            assert_eq!(standing, expected, "{}", user.login);
        }
    })
    .await;
}

#[tokio::test]
async fn suspended_member_has_no_standing() {
    for_each_world(|world| async move {
        let suspension = MemberUpdate {
            organization_id: world.acme.id,
            user_id: world.admin.id,
            role: None,
            status: Some(MemberStatus::Suspended),
            etag: None,
        };
        world
            .store
            .update_member(&context(), suspension)
            .await
            .unwrap();

        let call = user_call(&world.admin);
        let access = Access::new(&world.store, &call);
        assert_eq!(
            access.standing(world.acme.id).await.unwrap(),
            Standing::Outsider
        );
        assert_denied(
            access
                .manage(&Ids::organization("organization_id", world.acme.id))
                .await,
            "manage",
        );
    })
    .await;
}

#[tokio::test]
async fn removed_team_admin_loses_power_next_call() {
    for_each_world(|world| async move {
        let call = user_call(&world.it_admin);
        let acme = Ids::organization("organization_id", world.acme.id);
        assert_allowed(
            Access::new(&world.store, &call).manage(&acme).await,
            "before removal",
        );

        let removal = RemoveTeamMembers {
            team_id: world.it.id,
            user_ids: vec![world.it_admin.id],
        };
        world
            .store
            .remove_team_members(&context(), removal)
            .await
            .unwrap();

        assert_denied(
            Access::new(&world.store, &call).manage(&acme).await,
            "after removal",
        );
    })
    .await;
}

#[tokio::test]
async fn expired_team_membership_gives_no_role() {
    for_each_world(|world| async move {
        let expired = user(&world.store, "expired").await;
        member(
            &world.store,
            &world.acme,
            &expired,
            MemberRole::Collaborator,
        )
        .await;
        let addition = workteams_domain::command::AddTeamMembers {
            team_id: world.it.id,
            members: vec![NewTeamMember {
                user_id: expired.id,
                expire_time: Some(Utc::now() + TimeSpan::milliseconds(300)),
            }],
            added_by: None,
        };
        world
            .store
            .add_team_members(&context(), addition)
            .await
            .unwrap();
        let call = user_call(&expired);
        let acme = Ids::organization("organization_id", world.acme.id);
        assert_allowed(
            Access::new(&world.store, &call).manage(&acme).await,
            "before expiry",
        );

        tokio::time::sleep(std::time::Duration::from_millis(400)).await;

        assert_denied(
            Access::new(&world.store, &call).manage(&acme).await,
            "after expiry",
        );
    })
    .await;
}

#[tokio::test]
async fn leader_manages_led_team_members_only() {
    for_each_world(|world| async move {
        let call = user_call(&world.leader);
        let access = Access::new(&world.store, &call);

        assert_allowed(access.change_team_members(world.docs.id).await, "led team");
        assert_allowed(
            access
                .read_team_members(&TeamMembersQuery {
                    team_id: world.docs.id,
                    include_descendants: false,
                    include_expired: false,
                })
                .await,
            "list led team",
        );
        assert_denied(access.change_team_members(world.it.id).await, "other team");
        assert_denied(
            access.manage(&Ids::team("id", world.docs.id)).await,
            "rename led team",
        );
        assert_denied(
            access.set_team_parent(world.docs.id, None).await,
            "parent of led team",
        );
        assert_denied(
            access.set_team_role(world.docs.id, None).await,
            "role of led team",
        );
        let grant = Ids::resource("resource_id", world.acme_mailbox.id)
            .and_subject("subject.team_id", Subject::Team(world.docs.id));
        assert_denied(access.manage(&grant).await, "grant to led team");
    })
    .await;
}

#[tokio::test]
async fn leader_denied_when_setting_off() {
    for_each_world(|world| async move {
        let update = OrganizationUpdate {
            id: world.acme.id,
            display_name: None,
            settings: Some(OrganizationSettings::default()),
            etag: None,
        };
        world
            .store
            .update_organization(&context(), update)
            .await
            .unwrap();

        let call = user_call(&world.leader);
        let field = assert_denied(
            Access::new(&world.store, &call)
                .change_team_members(world.docs.id)
                .await,
            "setting off",
        );
        assert_eq!(field.as_deref(), Some("team_id"));
    })
    .await;
}

#[tokio::test]
async fn leader_cannot_touch_team_with_role() {
    for_each_world(|world| async move {
        set_role(&world.store, &world.docs, Some(MemberRole::Collaborator)).await;
        let call = user_call(&world.leader);
        assert_denied(
            Access::new(&world.store, &call)
                .change_team_members(world.docs.id)
                .await,
            "own role",
        );

        set_role(&world.store, &world.docs, None).await;
        // A collaborator role, which the leader already holds, so the
        // move does not make the leader an administrator.
        let staff = team(&world.store, &world.acme, "staff", None, &[]).await;
        set_role(&world.store, &staff, Some(MemberRole::Collaborator)).await;
        let move_under_staff = workteams_domain::command::SetTeamParent {
            team_id: world.docs.id,
            parent_team_id: Some(staff.id),
            etag: None,
        };
        world
            .store
            .set_team_parent(&context(), move_under_staff)
            .await
            .unwrap();
        assert_denied(
            Access::new(&world.store, &call)
                .change_team_members(world.docs.id)
                .await,
            "parent role",
        );
    })
    .await;
}

#[tokio::test]
async fn only_owners_make_or_change_owners() {
    for_each_world(|world| async move {
        let owner_spec = MemberSpec {
            user_id: world.outsider.id,
            role: MemberRole::Owner,
            status: MemberStatus::Active,
        };
        let admin_call = user_call(&world.admin);
        let admin = Access::new(&world.store, &admin_call);
        let field = assert_denied(
            admin
                .add_members(
                    world.acme.id,
                    &[("members[0].role".to_owned(), &owner_spec)],
                )
                .await,
            "add owner",
        );
        assert_eq!(field.as_deref(), Some("members[0].role"));
        assert_denied(
            admin
                .change_member(
                    world.acme.id,
                    world.collaborator.id,
                    Some(MemberRole::Owner),
                )
                .await,
            "promote to owner",
        );
        assert_denied(
            admin
                .change_member(
                    world.acme.id,
                    world.owner.id,
                    Some(MemberRole::Collaborator),
                )
                .await,
            "demote owner",
        );
        assert_denied(
            admin
                .change_member(world.acme.id, world.owner.id, None)
                .await,
            "remove owner",
        );

        let owner_call = user_call(&world.owner);
        let owner = Access::new(&world.store, &owner_call);
        assert_allowed(
            owner
                .add_members(world.acme.id, &[("role".to_owned(), &owner_spec)])
                .await,
            "owner adds owner",
        );
        assert_allowed(
            owner
                .change_member(world.acme.id, world.admin.id, Some(MemberRole::Owner))
                .await,
            "owner promotes",
        );
    })
    .await;
}

#[tokio::test]
async fn last_owner_cannot_leave() {
    for_each_world(|world| async move {
        let call = user_call(&world.owner);
        assert_allowed(
            Access::new(&world.store, &call)
                .change_member(world.acme.id, world.owner.id, None)
                .await,
            "check",
        );

        let error = world
            .store
            .remove_member(&context(), world.acme.id, world.owner.id)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::FailedPrecondition { .. }),
            "{error:?}"
        );
        let demotion = MemberUpdate {
            organization_id: world.acme.id,
            user_id: world.owner.id,
            role: Some(MemberRole::Administrator),
            status: None,
            etag: None,
        };
        let error = world
            .store
            .update_member(&context(), demotion)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::FailedPrecondition { .. }),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn cross_organization_ids_denied() {
    for_each_world(|world| async move {
        let call = user_call(&world.admin);
        let access = Access::new(&world.store, &call);
        let acme = || Ids::organization("organization_id", world.acme.id);
        let missing_team = TeamId::generate();
        let rows: Vec<(&str, Ids, &str)> = vec![
            (
                "CreateTeam.parent_team_id",
                acme().and_team("parent_team_id", world.sales.id),
                "parent_team_id",
            ),
            (
                "CreateTeam.grants",
                acme().and_resource("grants[0].resource_id", world.globex_mailbox.id),
                "grants[0].resource_id",
            ),
            (
                "CreateInvitation.team_ids",
                acme().and_team("team_ids[0]", world.sales.id),
                "team_ids[0]",
            ),
            (
                "CreateResource.parent",
                acme().and_resource("resource.parent_resource_id", world.globex_mailbox.id),
                "resource.parent_resource_id",
            ),
            (
                "BatchSetGrants.resource",
                acme().and_resource("changes[0].resource_id", world.globex_mailbox.id),
                "changes[0].resource_id",
            ),
            (
                "BatchSetGrants.subject",
                acme().and_team("changes[0].subject.team_id", world.sales.id),
                "changes[0].subject.team_id",
            ),
            (
                "ListTeams.parent_team_id",
                acme().and_team("parent_team_id", world.sales.id),
                "parent_team_id",
            ),
            (
                "ListGrants.resource_id",
                acme().and_resource("resource_id", world.globex_mailbox.id),
                "resource_id",
            ),
            (
                "GrantAccess.subject",
                Ids::resource("resource_id", world.acme_mailbox.id)
                    .and_team("subject.team_id", world.sales.id),
                "subject.team_id",
            ),
            (
                "GrantAccess.resource_id",
                Ids::resource("resource_id", world.globex_mailbox.id)
                    .and_team("subject.team_id", world.docs.id),
                "subject.team_id",
            ),
            (
                "SetTeamParent",
                Ids::team("team_id", world.docs.id).and_team("parent_team_id", world.sales.id),
                "parent_team_id",
            ),
            (
                "UpdateResource.parent",
                Ids::resource("id", world.acme_mailbox.id)
                    .and_resource("parent_resource_id", world.globex_mailbox.id),
                "parent_resource_id",
            ),
            (
                "UpdateTeam.id",
                Ids::team("id", world.sales.id),
                "id",
            ),
            (
                "DeleteResource.id",
                Ids::resource("id", world.globex_mailbox.id),
                "id",
            ),
            (
                "ListMembers.organization_id",
                Ids::organization("organization_id", world.globex.id),
                "organization_id",
            ),
            ("UpdateTeam.missing id", Ids::team("id", missing_team), "id"),
        ];
        for (case, ids, field) in rows {
            let denied_field = assert_denied(access.manage(&ids).await, case);
            assert_eq!(denied_field.as_deref(), Some(field), "{case}");
        }

        assert_denied(access.read_team(world.sales.id).await, "GetTeam");
        assert_denied(
            access.change_team_members(world.sales.id).await,
            "AddTeamMembers",
        );
        assert_denied(
            access.set_team_role(world.sales.id, None).await,
            "SetTeamRole",
        );
        assert_denied(
            access.read_invitation(world.globex_invitation.id).await,
            "GetInvitation",
        );
        assert_denied(
            access.revoke_invitation(world.globex_invitation.id).await,
            "RevokeInvitation",
        );
        assert_denied(
            access.accept_invitation(world.globex_invitation.id).await,
            "AcceptInvitation",
        );
        assert_denied(
            access
                .read_member(world.globex.id, world.globex_owner.id)
                .await,
            "GetOrganizationMember",
        );
        assert_denied(
            access
                .change_member(world.globex.id, world.globex_owner.id, None)
                .await,
            "RemoveOrganizationMember",
        );
        assert_denied(
            access
                .read(&Ids::of_resource_lookup(&ResourceLookup::Id(
                    world.globex_mailbox.id,
                )))
                .await,
            "GetResource",
        );
        let query = UserTeamsQuery {
            user_id: world.globex_owner.id,
            organization_id: Some(world.globex.id),
            include_expired: false,
        };
        assert_denied(access.read_user_teams(&query).await, "ListUserTeams");
        assert_denied(access.read_user(&world.globex_owner).await, "GetUser");
    })
    .await;
}

#[tokio::test]
async fn members_read_own_teams_only() {
    for_each_world(|world| async move {
        let docs_members = TeamMembersQuery {
            team_id: world.docs.id,
            include_descendants: false,
            include_expired: false,
        };

        let call = user_call(&world.collaborator);
        let collaborator = Access::new(&world.store, &call);
        assert_allowed(
            collaborator.read_team(world.docs.id).await,
            "collaborator GetTeam own",
        );
        assert_denied(
            collaborator.read_team(world.it.id).await,
            "collaborator GetTeam other",
        );
        assert_allowed(
            collaborator.read_team_members(&docs_members).await,
            "collaborator ListTeamMembers own",
        );
        let with_descendants = TeamMembersQuery {
            include_descendants: true,
            ..docs_members.clone()
        };
        assert_denied(
            collaborator.read_team_members(&with_descendants).await,
            "collaborator descendants",
        );
        assert_allowed(
            collaborator
                .read_member(world.acme.id, world.collaborator.id)
                .await,
            "own member record",
        );
        assert_denied(
            collaborator
                .read_member(world.acme.id, world.admin.id)
                .await,
            "other member record",
        );
        assert_allowed(
            collaborator.read_user(&world.collaborator).await,
            "own user record",
        );
        assert_denied(
            collaborator.read_user(&world.admin).await,
            "other user record",
        );
        assert_denied(
            collaborator
                .read(&Ids::organization("organization_id", world.acme.id))
                .await,
            "ListTeams",
        );
        assert_allowed(
            collaborator.read_organization_record(&world.acme).await,
            "GetOrganization own",
        );
        assert_denied(
            collaborator.read_organization_record(&world.globex).await,
            "GetOrganization other",
        );

        let call = user_call(&world.external);
        let external = Access::new(&world.store, &call);
        assert_allowed(
            external.read_team(world.docs.id).await,
            "external GetTeam own",
        );
        assert_denied(
            external.read_team(world.helpdesk.id).await,
            "external GetTeam other",
        );
        assert_denied(
            external.read_team_members(&docs_members).await,
            "external ListTeamMembers",
        );
        let own_teams = UserTeamsQuery {
            user_id: world.external.id,
            organization_id: None,
            include_expired: false,
        };
        assert_allowed(
            external.read_user_teams(&own_teams).await,
            "external ListUserTeams own",
        );
    })
    .await;
}

#[tokio::test]
async fn service_scopes_bound_access() {
    for_each_world(|world| async move {
        let acme = Ids::organization("organization_id", world.acme.id);
        let globex = Ids::organization("organization_id", world.globex.id);

        let call = service_call(vec![Scope::AdminOrganization(world.acme.id)]);
        let access = Access::new(&world.store, &call);
        assert_allowed(access.manage(&acme).await, "AdminOrganization own");
        assert_allowed(
            access
                .change_member(
                    world.acme.id,
                    world.owner.id,
                    Some(MemberRole::Collaborator),
                )
                .await,
            "AdminOrganization owners",
        );
        assert_denied(access.manage(&globex).await, "AdminOrganization other");
        assert_denied(
            access.require_global_admin("creating a user"),
            "AdminOrganization CreateUser",
        );

        let call = service_call(vec![Scope::ReadOrganization(world.acme.id)]);
        let access = Access::new(&world.store, &call);
        assert_allowed(access.read(&acme).await, "ReadOrganization read");
        assert_denied(access.manage(&acme).await, "ReadOrganization manage");
        assert_denied(access.read(&globex).await, "ReadOrganization other");
        assert_denied(
            access.require_global_read("exporting a snapshot"),
            "ReadOrganization snapshot",
        );

        let call = service_call(vec![Scope::ReadAll]);
        let access = Access::new(&world.store, &call);
        assert_allowed(access.read(&globex).await, "ReadAll read");
        assert_allowed(
            access.require_global_read("watching the change stream"),
            "ReadAll watch",
        );
        assert_denied(access.manage(&globex).await, "ReadAll manage");
        let missing = Ids::team("id", TeamId::generate());
        assert_denied(access.manage(&missing).await, "ReadAll manage missing");

        let call = service_call(vec![Scope::AdminAll]);
        let access = Access::new(&world.store, &call);
        assert_allowed(access.manage(&globex).await, "AdminAll manage");
        assert_allowed(
            access.require_global_admin("creating a user"),
            "AdminAll CreateUser",
        );
        assert_allowed(
            access.manage(&missing).await,
            "AdminAll missing id left to the store",
        );
        let mixed = acme.clone().and_team("parent_team_id", world.sales.id);
        assert_denied(access.manage(&mixed).await, "AdminAll mixed organizations");
    })
    .await;
}

#[tokio::test]
async fn invitee_accepts_own_invitation() {
    for_each_world(|world| async move {
        let invitee = user(&world.store, "invitee").await;
        let invitation = NewInvitation {
            organization_id: world.acme.id,
            email: "INVITEE@example.com".to_owned(),
            team_ids: Vec::new(),
            expire_time: None,
            invited_by: None,
        };
        let invitation = world
            .store
            .create_invitation(&context(), invitation)
            .await
            .unwrap()
            .value;

        let call = user_call(&invitee);
        assert_allowed(
            Access::new(&world.store, &call)
                .accept_invitation(invitation.id)
                .await,
            "invitee",
        );
        let call = user_call(&world.collaborator);
        assert_denied(
            Access::new(&world.store, &call)
                .accept_invitation(invitation.id)
                .await,
            "someone else",
        );
    })
    .await;
}

#[tokio::test]
async fn missing_names_hidden_from_members() {
    for_each_world(|world| async move {
        let lookup = OrganizationLookup::Name("no-such-organization".to_owned());
        let call = user_call(&world.admin);
        let access = Access::new(&world.store, &call);
        let result = access.hide_not_found("name", world.store.get_organization(&lookup).await);
        assert_denied(result, "member");

        let call = service_call(vec![Scope::ReadAll]);
        let access = Access::new(&world.store, &call);
        let result = access.hide_not_found("name", world.store.get_organization(&lookup).await);
        assert!(
            matches!(result, Err(ApiError::Store(StoreError::NotFound { .. }))),
            "{result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn organization_list_filtered_to_members() {
    for_each_world(|world| async move {
        let page = world
            .store
            .list_organizations(&workteams_storage::PageRequest::default())
            .await
            .unwrap();
        let call = user_call(&world.globex_owner);
        let visible = Access::new(&world.store, &call)
            .visible_organizations(page)
            .await
            .unwrap();
        let ids: Vec<OrganizationId> = visible
            .items
            .iter()
            .map(|organization| organization.id)
            .collect();
        assert_eq!(ids, vec![world.globex.id]);
    })
    .await;
}
