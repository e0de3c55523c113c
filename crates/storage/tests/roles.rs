//! Organization roles given to teams, effective roles and led teams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{changes_since, context, field_of, fixtures, member, organization, team, user};
use futures::StreamExt;
use workteams_domain::command::{
    AddTeamMembers, Etag, MemberUpdate, NewTeamMember, SetTeamLeaders, SetTeamRole,
};
use workteams_domain::{Change, Entity, MemberRole, MemberStatus, Team, TeamId, User};
use workteams_storage::{Store, StoreError};

async fn give_role(store: &Store, team_id: TeamId, role: Option<MemberRole>) -> Team {
    store
        .set_team_role(
            &context(),
            SetTeamRole {
                team_id,
                role,
                etag: None,
            },
        )
        .await
        .unwrap()
        .value
}

async fn add_until(store: &Store, team_id: TeamId, user: &User, expire_time: Option<DateTime<Utc>>) {
    store
        .add_team_members(
            &context(),
            AddTeamMembers {
                team_id,
                members: vec![NewTeamMember {
                    user_id: user.id,
                    expire_time,
                }],
                added_by: None,
            },
        )
        .await
        .unwrap();
}

async fn lead(store: &Store, team_id: TeamId, leaders: &[&User]) {
    store
        .set_team_leaders(
            &context(),
            SetTeamLeaders {
                team_id,
                leader_user_ids: leaders.iter().map(|leader| leader.id).collect(),
                etag: None,
            },
        )
        .await
        .unwrap();
}

async fn suspend(store: &Store, organization_id: workteams_domain::OrganizationId, user: &User) {
    store
        .update_member(
            &context(),
            MemberUpdate {
                organization_id,
                user_id: user.id,
                role: None,
                status: Some(MemberStatus::Suspended),
                etag: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn team_role_carried_everywhere() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let admins = team(store, &acme, "Admins", None, &[]).await;
        let before = store.current_token().await.unwrap();

        let given = store
            .set_team_role(
                &context(),
                SetTeamRole {
                    team_id: admins.id,
                    role: Some(MemberRole::Administrator),
                    etag: Some(Etag(admins.version)),
                },
            )
            .await
            .unwrap();
        let changes = changes_since(store, before).await;
        let read = store.get_team(admins.id).await.unwrap();
        let snapshot = store.export_snapshot(Some(acme.id), 0).await.unwrap();
        let entities: Vec<Entity> = snapshot.chunks.map(|chunk| chunk.unwrap()).concat().await;

        assert_eq!(given.value.organization_role, Some(MemberRole::Administrator));
        assert_eq!(given.value.version, admins.version + 1);
        assert_eq!(changes, vec![Change::Upserted(Entity::Team(given.value.clone()))]);
        assert_eq!(read, given.value);
        assert!(entities.contains(&Entity::Team(given.value.clone())));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn owner_role_not_given_to_team() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let board = team(store, &acme, "Board", None, &[]).await;
        let before = store.current_token().await.unwrap();

        let error = store
            .set_team_role(
                &context(),
                SetTeamRole {
                    team_id: board.id,
                    role: Some(MemberRole::Owner),
                    etag: None,
                },
            )
            .await
            .unwrap_err();

        assert!(matches!(error, StoreError::Validation(_)), "{error:?}");
        assert_eq!(field_of(&error), "role");
        assert_eq!(store.current_token().await.unwrap(), before);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_role_errors_named() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let board = team(store, &acme, "Board", None, &[]).await;
        let command = |team_id, etag| SetTeamRole {
            team_id,
            role: Some(MemberRole::Collaborator),
            etag,
        };

        let stale = store.set_team_role(&context(), command(board.id, Some(Etag(99)))).await.unwrap_err();
        let missing = store.set_team_role(&context(), command(TeamId::generate(), None)).await.unwrap_err();

        assert!(matches!(stale, StoreError::Aborted { .. }), "{stale:?}");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing:?}");
        assert_eq!(field_of(&missing), "team_id");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn unchanged_team_role_writes_nothing() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let board = team(store, &acme, "Board", None, &[]).await;
        let given = give_role(store, board.id, Some(MemberRole::Collaborator)).await;
        let before = store.current_token().await.unwrap();

        let again = store
            .set_team_role(
                &context(),
                SetTeamRole {
                    team_id: board.id,
                    role: Some(MemberRole::Collaborator),
                    etag: None,
                },
            )
            .await
            .unwrap();

        assert_eq!(again.token, before);
        assert_eq!(again.value, given);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_role_raises_member_role() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        let bob = user(store, "bob").await;
        member(store, &acme, &alice, MemberRole::Collaborator).await;
        member(store, &acme, &bob, MemberRole::Collaborator).await;
        let admins = team(store, &acme, "Admins", None, &[&alice]).await;
        give_role(store, admins.id, Some(MemberRole::Administrator)).await;
        let now = Utc::now();

        let alice_role = store.effective_role(acme.id, alice.id, now).await.unwrap();
        let bob_role = store.effective_role(acme.id, bob.id, now).await.unwrap();

        assert_eq!(alice_role, Some((MemberRole::Administrator, MemberStatus::Active)));
        assert_eq!(bob_role, Some((MemberRole::Collaborator, MemberStatus::Active)));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn descendant_team_members_hold_role() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        member(store, &acme, &alice, MemberRole::External).await;
        let engineering = team(store, &acme, "Engineering", None, &[]).await;
        let platform = team(store, &acme, "Platform", Some(engineering.id), &[]).await;
        let storage = team(store, &acme, "Storage", Some(platform.id), &[&alice]).await;
        give_role(store, engineering.id, Some(MemberRole::Collaborator)).await;
        let now = Utc::now();

        let role = store.effective_role(acme.id, alice.id, now).await.unwrap();
        store.delete_team(&context(), storage.id, None).await.unwrap();
        let after_deletion = store.effective_role(acme.id, alice.id, now).await.unwrap();

        assert_eq!(role, Some((MemberRole::Collaborator, MemberStatus::Active)));
        assert_eq!(after_deletion, Some((MemberRole::External, MemberStatus::Active)));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn expired_membership_gives_no_role() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        member(store, &acme, &alice, MemberRole::Collaborator).await;
        let parent = team(store, &acme, "Admins", None, &[]).await;
        let child = team(store, &acme, "Admins on call", Some(parent.id), &[]).await;
        give_role(store, parent.id, Some(MemberRole::Administrator)).await;
        let expiry = Utc::now() + Duration::hours(1);
        add_until(store, child.id, &alice, Some(expiry)).await;

        let before_expiry = store.effective_role(acme.id, alice.id, expiry - Duration::seconds(1)).await.unwrap();
        let at_expiry = store.effective_role(acme.id, alice.id, expiry).await.unwrap();

        assert_eq!(before_expiry, Some((MemberRole::Administrator, MemberStatus::Active)));
        assert_eq!(at_expiry, Some((MemberRole::Collaborator, MemberStatus::Active)));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn higher_personal_role_kept() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let owner = user(store, "olivia").await;
        let admin = user(store, "adam").await;
        member(store, &acme, &owner, MemberRole::Owner).await;
        member(store, &acme, &admin, MemberRole::Administrator).await;
        let everyone = team(store, &acme, "Everyone", None, &[&owner, &admin]).await;
        let admins = team(store, &acme, "Admins", None, &[&owner]).await;
        give_role(store, everyone.id, Some(MemberRole::Collaborator)).await;
        give_role(store, admins.id, Some(MemberRole::Administrator)).await;
        let now = Utc::now();

        let owner_role = store.effective_role(acme.id, owner.id, now).await.unwrap();
        let admin_role = store.effective_role(acme.id, admin.id, now).await.unwrap();

        assert_eq!(owner_role, Some((MemberRole::Owner, MemberStatus::Active)));
        assert_eq!(admin_role, Some((MemberRole::Administrator, MemberStatus::Active)));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn suspended_member_keeps_own_role() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        member(store, &acme, &alice, MemberRole::Collaborator).await;
        let admins = team(store, &acme, "Admins", None, &[&alice]).await;
        give_role(store, admins.id, Some(MemberRole::Administrator)).await;
        suspend(store, acme.id, &alice).await;

        let role = store.effective_role(acme.id, alice.id, Utc::now()).await.unwrap();

        assert_eq!(role, Some((MemberRole::Collaborator, MemberStatus::Suspended)));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn role_taken_back_from_team() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        let stranger = user(store, "stranger").await;
        member(store, &acme, &alice, MemberRole::Collaborator).await;
        let admins = team(store, &acme, "Admins", None, &[&alice]).await;
        give_role(store, admins.id, Some(MemberRole::Administrator)).await;

        let cleared = give_role(store, admins.id, None).await;
        let role = store.effective_role(acme.id, alice.id, Utc::now()).await.unwrap();
        let stranger_role = store.effective_role(acme.id, stranger.id, Utc::now()).await.unwrap();

        assert_eq!(cleared.organization_role, None);
        assert_eq!(role, Some((MemberRole::Collaborator, MemberStatus::Active)));
        assert_eq!(stranger_role, None);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn led_teams_need_active_leadership() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        let bob = user(store, "bob").await;
        member(store, &acme, &alice, MemberRole::Collaborator).await;
        member(store, &acme, &bob, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[&alice, &bob]).await;
        let ops = team(store, &acme, "Ops", None, &[]).await;
        let sales = team(store, &acme, "Sales", None, &[&alice]).await;
        add_until(store, ops.id, &alice, Some(Utc::now() - Duration::hours(1))).await;
        lead(store, docs.id, &[&alice, &bob]).await;
        lead(store, ops.id, &[&alice]).await;
        lead(store, sales.id, &[&alice]).await;

        let alice_teams = store.led_teams(acme.id, alice.id).await.unwrap();
        suspend(store, acme.id, &bob).await;
        let suspended_teams = store.led_teams(acme.id, bob.id).await.unwrap();

        let mut expected = vec![docs.id, sales.id];
        expected.sort();
        let led: Vec<TeamId> = alice_teams.iter().map(|team| team.id).collect();
        assert_eq!(led, expected);
        assert!(alice_teams.iter().all(|team| team.leader_user_ids.contains(&alice.id)));
        assert!(suspended_teams.is_empty());
        fixture.cleanup().await;
    }
}

#[test]
fn team_without_role_parses() {
    let team = workteams_domain::Team {
        id: TeamId::generate(),
        organization_id: workteams_domain::OrganizationId::generate(),
        name: "Docs".to_owned(),
        description: String::new(),
        color: String::new(),
        parent_team_id: None,
        leader_user_ids: Vec::new(),
        organization_role: None,
        create_time: Utc::now(),
        update_time: Utc::now(),
        version: 1,
    };
    let mut payload = serde_json::to_value(&team).unwrap();
    payload.as_object_mut().unwrap().remove("organization_role");

    let parsed: workteams_domain::Team = serde_json::from_value(payload).unwrap();

    assert_eq!(parsed, team);
}
