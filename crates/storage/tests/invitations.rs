//! The invitation lifecycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{context, field_of, fixtures, member, organization, team, user};
use workteams_domain::command::{AcceptInvitation, NewInvitation};
use workteams_domain::{InvitationState, MemberRole};
use workteams_storage::{InvitationFilter, PageRequest, StoreError, TeamMembersQuery};

fn invitation(organization_id: workteams_domain::OrganizationId, email: &str, teams: Vec<workteams_domain::TeamId>) -> NewInvitation {
    NewInvitation {
        organization_id,
        email: email.to_owned(),
        team_ids: teams,
        expire_time: None,
        invited_by: None,
    }
}

fn accept(id: workteams_domain::InvitationId, login: Option<&str>) -> AcceptInvitation {
    AcceptInvitation {
        id,
        login: login.map(str::to_owned),
        display_name: String::new(),
    }
}

#[tokio::test]
async fn invitation_accepted_by_new_user() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;
        let created = store
            .create_invitation(&context(), invitation(acme.id, "guest@example.com", vec![docs.id]))
            .await
            .unwrap()
            .value;

        let without_login = store.accept_invitation(&context(), accept(created.id, None)).await.unwrap_err();
        let accepted = store.accept_invitation(&context(), accept(created.id, Some("guest"))).await.unwrap().value;
        let again = store.accept_invitation(&context(), accept(created.id, Some("guest"))).await.unwrap_err();
        let revoke = store.revoke_invitation(&context(), created.id).await.unwrap_err();
        let members = store
            .list_team_members(
                &TeamMembersQuery {
                    team_id: docs.id,
                    include_descendants: false,
                    include_expired: false,
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();

        let default_expiry = created.expire_time - created.create_time;
        assert_eq!(default_expiry, Duration::days(30));
        assert_eq!(field_of(&without_login), "login");
        assert_eq!(accepted.invitation.state, InvitationState::Accepted);
        assert_eq!(accepted.member.member.role, MemberRole::External);
        assert_eq!(accepted.member.user.email.as_deref(), Some("guest@example.com"));
        assert_eq!(accepted.invitation.accepted_user_id, Some(accepted.member.user.id));
        assert!(matches!(again, StoreError::FailedPrecondition { .. }), "{again:?}");
        assert!(matches!(revoke, StoreError::FailedPrecondition { .. }), "{revoke:?}");
        assert_eq!(members.items.len(), 1);
        assert_eq!(members.items[0].user.login, "guest");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn existing_member_keeps_role() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Administrator).await;
        let created = store
            .create_invitation(&context(), invitation(acme.id, "ADA@example.com", Vec::new()))
            .await
            .unwrap()
            .value;

        let accepted = store.accept_invitation(&context(), accept(created.id, None)).await.unwrap().value;

        assert_eq!(accepted.member.user.id, ada.id);
        assert_eq!(accepted.member.member.role, MemberRole::Administrator);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn revoked_and_expired_not_accepted() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let revoked = store
            .create_invitation(&context(), invitation(acme.id, "a@example.com", Vec::new()))
            .await
            .unwrap()
            .value;
        let mut soon = invitation(acme.id, "b@example.com", Vec::new());
        soon.expire_time = Some(Utc::now() + Duration::milliseconds(300));
        let expiring = store.create_invitation(&context(), soon).await.unwrap().value;
        let pending = store
            .create_invitation(&context(), invitation(acme.id, "c@example.com", Vec::new()))
            .await
            .unwrap()
            .value;
        store.revoke_invitation(&context(), revoked.id).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;

        let revoked_error = store.accept_invitation(&context(), accept(revoked.id, Some("a"))).await.unwrap_err();
        let expired_error = store.accept_invitation(&context(), accept(expiring.id, Some("b"))).await.unwrap_err();
        let list = |state| InvitationFilter {
            organization_id: acme.id,
            state: Some(state),
        };
        let expired = store.list_invitations(&list(InvitationState::Expired), &PageRequest::default()).await.unwrap();
        let pending_list = store.list_invitations(&list(InvitationState::Pending), &PageRequest::default()).await.unwrap();
        let revoked_list = store.list_invitations(&list(InvitationState::Revoked), &PageRequest::default()).await.unwrap();

        assert!(matches!(revoked_error, StoreError::FailedPrecondition { .. }), "{revoked_error:?}");
        assert!(matches!(expired_error, StoreError::FailedPrecondition { .. }), "{expired_error:?}");
        assert_eq!(expired.items.len(), 1);
        assert_eq!(expired.items[0].id, expiring.id);
        assert_eq!(expired.items[0].state_at(Utc::now()), InvitationState::Expired);
        assert_eq!(pending_list.items.len(), 1);
        assert_eq!(pending_list.items[0].id, pending.id);
        assert_eq!(revoked_list.items.len(), 1);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn invitation_into_foreign_team_rejected() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let other = organization(store, "Other").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;
        let foreign = team(store, &other, "Foreign", None, &[]).await;

        let error = store
            .create_invitation(&context(), invitation(acme.id, "a@example.com", vec![docs.id, foreign.id]))
            .await
            .unwrap_err();
        let mut past = invitation(acme.id, "a@example.com", Vec::new());
        past.expire_time = Some(Utc::now() - Duration::hours(1));
        let past = store.create_invitation(&context(), past).await.unwrap_err();

        assert_eq!(field_of(&error), "team_ids[1]");
        assert_eq!(field_of(&past), "expire_time");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn deleted_team_leaves_invitation() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;
        let ops = team(store, &acme, "Ops", None, &[]).await;
        let created = store
            .create_invitation(&context(), invitation(acme.id, "a@example.com", vec![docs.id, ops.id]))
            .await
            .unwrap()
            .value;

        store.delete_team(&context(), docs.id, None).await.unwrap();
        let after = store.get_invitation(created.id).await.unwrap();

        assert_eq!(after.team_ids, vec![ops.id]);
        fixture.cleanup().await;
    }
}
