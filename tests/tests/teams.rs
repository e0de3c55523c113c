//! Team structure and membership over time: nested teams, expiries,
//! suspension and removal.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use workteams_proto::authz::v1::{DenyReason, ReasonKind};
use workteams_tests::{GrantTo, for_each_database, minimize_latency, resource_id, user_id};

const MAILBOX: &str = "mail.mailbox";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_team_member_gets_parent_grant() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let (parent, _) = admin.team(&organization, "engineering", None, &[]).await;
        let (child, _) = admin
            .team(&organization, "engineering/docs", Some(&parent.id), &[(&user, None)])
            .await;
        let mailbox = admin.resource(&organization, MAILBOX, "eng@example.com", None, true).await.id;
        let token = admin.grant(&mailbox, GrantTo::Team(&parent.id), &["read"], None).await;

        let check = stack.authz.check(&user, &mailbox, "read", &token).await;

        assert!(check.allowed);
        let reason = &check.reasons[0];
        assert_eq!(reason.kind(), ReasonKind::TeamGrant);
        assert_eq!(reason.team_id, parent.id);
        assert_eq!(reason.via_team_id, child.id);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_member_lacks_child_grant() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let (parent, _) = admin.team(&organization, "engineering", None, &[(&user, None)]).await;
        let (child, _) = admin.team(&organization, "engineering/docs", Some(&parent.id), &[]).await;
        let mailbox = admin.resource(&organization, MAILBOX, "docs@example.com", None, true).await.id;
        let token = admin.grant(&mailbox, GrantTo::Team(&child.id), &["read"], None).await;

        let check = stack.authz.check(&user, &mailbox, "read", &token).await;

        assert!(!check.allowed);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_and_grant_expire() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let team_member = admin.collaborator(&organization, "ada").await.id;
        let grantee = admin.collaborator(&organization, "grace").await.id;
        let expiry = Utc::now() + chrono::Duration::seconds(3);
        let (team, _) = admin
            .team(&organization, "support", None, &[(&team_member, Some(expiry))])
            .await;
        let mailbox = admin.resource(&organization, MAILBOX, "support@example.com", None, true).await.id;
        admin.grant(&mailbox, GrantTo::Team(&team.id), &["read"], None).await;
        let token = admin.grant(&mailbox, GrantTo::User(&grantee), &["read"], Some(expiry)).await;

        let member_before = stack.authz.check(&team_member, &mailbox, "read", &token).await;
        let grantee_before = stack.authz.check(&grantee, &mailbox, "read", &token).await;
        let until_expiry = (expiry - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(until_expiry + Duration::from_millis(100)).await;
        let member_after = stack.authz.check(&team_member, &mailbox, "read", &token).await;
        let grantee_after = stack.authz.check(&grantee, &mailbox, "read", &token).await;

        assert!(member_before.allowed);
        assert!(grantee_before.allowed);
        assert!(!member_after.allowed);
        assert!(!grantee_after.allowed);
        assert_eq!(member_after.deny_reason(), DenyReason::NoGrant);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_member_is_denied() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        let granted = admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;
        let before = stack.authz.check(&user, &mailbox, "read", &granted).await;

        let suspended = admin.suspend(&organization, &user).await;
        let after = stack.authz.check(&user, &mailbox, "read", &suspended).await;

        assert!(before.allowed);
        assert!(!after.allowed);
        assert_eq!(after.deny_reason(), DenyReason::NotActiveMember);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_visible_at_its_token() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let (team, _) = admin.team(&organization, "support", None, &[(&user, None)]).await;
        let mailbox = admin.resource(&organization, MAILBOX, "support@example.com", None, true).await.id;
        let granted = admin.grant(&mailbox, GrantTo::Team(&team.id), &["read"], None).await;
        let before = stack.authz.check(&user, &mailbox, "read", &granted).await;

        let removed = admin.remove_team_members(&team.id, &[&user]).await;
        let after = stack.authz.check(&user, &mailbox, "read", &removed).await;

        assert!(before.allowed);
        assert!(!after.allowed);
        let removal = workteams_domain::ConsistencyToken::decode("token", &removed).unwrap();
        assert!(after.revision >= removal.revision.0);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_team_grants_nothing() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let (team, _) = admin.team(&organization, "support", None, &[(&user, None)]).await;
        let mailbox = admin.resource(&organization, MAILBOX, "support@example.com", None, true).await.id;
        admin.grant(&mailbox, GrantTo::Team(&team.id), &["read"], None).await;

        let deleted = admin
            .client
            .clone()
            .delete_team(workteams_proto::directory::v1::DeleteTeamRequest {
                id: team.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .consistency_token;
        let after = stack.authz.check(&user, &mailbox, "read", &deleted).await;

        assert!(!after.allowed);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimize_latency_eventually_sees_write() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;

        let mut allowed = false;
        for _ in 0..300 {
            // Until the sidecar has applied the resource's creation, the
            // resource id is unknown to it and the check fails closed with
            // NOT_FOUND.
            let result = stack
                .authz
                .try_check(user_id(&user), resource_id(&mailbox), "read", minimize_latency())
                .await;
            match result {
                Ok(check) if check.allowed => {
                    allowed = true;
                    break;
                }
                Ok(_) => {}
                Err(status) => assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        assert!(allowed, "the grant never became visible");
        stack
    })
    .await;
}
