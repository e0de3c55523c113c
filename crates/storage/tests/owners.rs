//! Protection of an organization's last active owner.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{context, field_of, fixtures, member, user};
use workteams_domain::command::{BatchAddMembers, MemberSpec, MemberUpdate, NewOrganization};
use workteams_domain::{MemberRole, MemberStatus, Organization, OrganizationSettings, User};
use workteams_storage::{Store, StoreError};

/// Creates an organization whose first owner is a new user `owner`.
async fn owned_organization(store: &Store) -> (Organization, User) {
    let owner = user(store, "owner").await;
    let organization = store
        .create_organization(
            &context(),
            NewOrganization {
                name: "Acme".to_owned(),
                display_name: String::new(),
                settings: OrganizationSettings::default(),
                owner_user_id: Some(owner.id),
            },
        )
        .await
        .unwrap()
        .value;
    (organization, owner)
}

fn update(organization: &Organization, user: &User, role: Option<MemberRole>, status: Option<MemberStatus>) -> MemberUpdate {
    MemberUpdate {
        organization_id: organization.id,
        user_id: user.id,
        role,
        status,
        etag: None,
    }
}

fn spec(user: &User, role: MemberRole, status: MemberStatus) -> MemberSpec {
    MemberSpec {
        user_id: user.id,
        role,
        status,
    }
}

fn assert_last_owner_error(error: &StoreError, field: &str) {
    assert!(matches!(error, StoreError::FailedPrecondition { .. }), "{error:?}");
    assert_eq!(field_of(error), field);
}

#[tokio::test]
async fn last_owner_not_removed() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let (acme, owner) = owned_organization(store).await;
        let before = store.current_token().await.unwrap();

        let error = store.remove_member(&context(), acme.id, owner.id).await.unwrap_err();

        assert_last_owner_error(&error, "user_id");
        assert_eq!(store.current_token().await.unwrap(), before);
        assert!(store.get_member(acme.id, owner.id).await.is_ok());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn last_owner_not_demoted() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let (acme, owner) = owned_organization(store).await;
        let before = store.current_token().await.unwrap();

        let error = store
            .update_member(&context(), update(&acme, &owner, Some(MemberRole::Administrator), None))
            .await
            .unwrap_err();

        assert_last_owner_error(&error, "role");
        assert_eq!(store.current_token().await.unwrap(), before);
        let stored = store.get_member(acme.id, owner.id).await.unwrap().member;
        assert_eq!(stored.role, MemberRole::Owner);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn last_owner_not_suspended() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let (acme, owner) = owned_organization(store).await;

        let error = store
            .update_member(&context(), update(&acme, &owner, None, Some(MemberStatus::Suspended)))
            .await
            .unwrap_err();

        assert_last_owner_error(&error, "status");
        let stored = store.get_member(acme.id, owner.id).await.unwrap().member;
        assert_eq!(stored.status, MemberStatus::Active);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn batch_cannot_demote_last_owner() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let (acme, owner) = owned_organization(store).await;
        let alice = user(store, "alice").await;
        let before = store.current_token().await.unwrap();

        let demotion = store
            .batch_add_members(
                &context(),
                BatchAddMembers {
                    organization_id: acme.id,
                    members: vec![
                        spec(&alice, MemberRole::Administrator, MemberStatus::Active),
                        spec(&owner, MemberRole::Collaborator, MemberStatus::Active),
                    ],
                },
            )
            .await
            .unwrap_err();
        let suspension = store
            .batch_add_members(
                &context(),
                BatchAddMembers {
                    organization_id: acme.id,
                    members: vec![spec(&owner, MemberRole::Owner, MemberStatus::Suspended)],
                },
            )
            .await
            .unwrap_err();

        assert_last_owner_error(&demotion, "members[1].role");
        assert_last_owner_error(&suspension, "members[0].status");
        assert_eq!(store.current_token().await.unwrap(), before);
        assert!(store.get_member(acme.id, alice.id).await.is_err());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn batch_may_hand_over_ownership() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let (acme, owner) = owned_organization(store).await;
        let alice = user(store, "alice").await;

        let handed_over = store
            .batch_add_members(
                &context(),
                BatchAddMembers {
                    organization_id: acme.id,
                    members: vec![
                        spec(&owner, MemberRole::Administrator, MemberStatus::Active),
                        spec(&alice, MemberRole::Owner, MemberStatus::Active),
                    ],
                },
            )
            .await
            .unwrap()
            .value;

        assert_eq!(handed_over[0].member.role, MemberRole::Administrator);
        assert_eq!(handed_over[1].member.role, MemberRole::Owner);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn second_owner_allows_removal() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let (acme, owner) = owned_organization(store).await;
        let alice = user(store, "alice").await;
        member(store, &acme, &alice, MemberRole::Owner).await;

        let removed = store.remove_member(&context(), acme.id, owner.id).await;
        let last = store.remove_member(&context(), acme.id, alice.id).await.unwrap_err();

        assert!(removed.is_ok(), "{removed:?}");
        assert_last_owner_error(&last, "user_id");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn suspended_owner_not_counted() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let (acme, owner) = owned_organization(store).await;
        let alice = user(store, "alice").await;
        member(store, &acme, &alice, MemberRole::Owner).await;
        store
            .update_member(&context(), update(&acme, &alice, None, Some(MemberStatus::Suspended)))
            .await
            .unwrap();

        let error = store
            .update_member(&context(), update(&acme, &owner, Some(MemberRole::Collaborator), None))
            .await
            .unwrap_err();
        let reactivated = store
            .update_member(&context(), update(&acme, &alice, None, Some(MemberStatus::Active)))
            .await;
        let demoted = store
            .update_member(&context(), update(&acme, &owner, Some(MemberRole::Collaborator), None))
            .await;

        assert_last_owner_error(&error, "role");
        assert!(reactivated.is_ok(), "{reactivated:?}");
        assert!(demoted.is_ok(), "{demoted:?}");
        fixture.cleanup().await;
    }
}
