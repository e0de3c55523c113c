//! Mail mailboxes: permissions from team and individual grants add up, and
//! mailboxes are found by address ignoring case.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use workteams_proto::authz::v1::{DenyReason, ReasonKind};
use workteams_tests::{GrantTo, fresh_as, for_each_database, resource_key, user_email, user_login};

const MAILBOX: &str = "mail.mailbox";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_and_individual_grants_add_up() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let (team, _) = admin.team(&organization, "support", None, &[(&user, None)]).await;
        let mailbox = admin
            .resource(&organization, MAILBOX, "support@example.com", None, true)
            .await
            .id;
        admin.grant(&mailbox, GrantTo::Team(&team.id), &["read"], None).await;
        let token = admin.grant(&mailbox, GrantTo::User(&user), &["send"], None).await;

        let read = stack.authz.check(&user, &mailbox, "read", &token).await;
        let send = stack.authz.check(&user, &mailbox, "send", &token).await;
        let restore = stack.authz.check(&user, &mailbox, "restore", &token).await;

        assert!(read.allowed);
        assert!(send.allowed);
        assert_eq!(read.permissions, ["read", "send"]);
        assert!(read.level.is_empty());
        let kinds: Vec<ReasonKind> = read.reasons.iter().map(|reason| reason.kind()).collect();
        assert_eq!(kinds, [ReasonKind::IndividualGrant, ReasonKind::TeamGrant]);
        assert!(!restore.allowed);
        assert_eq!(restore.deny_reason(), DenyReason::PermissionNotHeld);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_address_ignores_case() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await;
        let mailbox = admin
            .resource(&organization, MAILBOX, "support@example.com", None, true)
            .await
            .id;
        let token = admin.grant(&mailbox, GrantTo::User(&user.id), &["read"], None).await;

        let check = stack
            .authz
            .try_check(
                user_login("ADA"),
                resource_key("ACME", MAILBOX, "Support@Example.COM"),
                "read",
                fresh_as(&token),
            )
            .await
            .unwrap();

        assert!(check.allowed);
        assert_eq!(check.resource_id, mailbox);
        assert_eq!(check.user_id, user.id);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_found_by_email() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.user_with_email("ada", "Ada.Lovelace@Example.com").await;
        admin
            .member(&organization, &user.id, workteams_proto::directory::v1::MemberRole::Collaborator)
            .await;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        let token = admin.grant(&mailbox, GrantTo::User(&user.id), &["read"], None).await;

        let check = stack
            .authz
            .try_check(
                user_email("ada.lovelace@example.com"),
                resource_key("acme", MAILBOX, "ada@example.com"),
                "read",
                fresh_as(&token),
            )
            .await
            .unwrap();

        assert!(check.allowed);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_sensitive_type_keeps_case() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let channel = admin.resource(&organization, "kchat.channel", "General", None, true).await.id;
        let token = admin.grant(&channel, GrantTo::User(&user), &["member"], None).await;

        let exact = stack
            .authz
            .try_check(user_login("ada"), resource_key("acme", "kchat.channel", "General"), "member", fresh_as(&token))
            .await
            .unwrap();
        let other_case = stack
            .authz
            .try_check(user_login("ada"), resource_key("acme", "kchat.channel", "general"), "member", fresh_as(&token))
            .await
            .unwrap();

        assert!(exact.allowed);
        assert!(!other_case.allowed);
        assert_eq!(other_case.deny_reason(), DenyReason::UnknownResource);
        stack
    })
    .await;
}
