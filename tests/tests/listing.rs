//! ListEffectiveAccess agrees with CheckAccess and pages through every
//! entry exactly once.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;

use tonic::Code;
use tonic_types::StatusExt;
use workteams_proto::authz::v1 as authz;
use workteams_proto::authz::v1::list_effective_access_request::Target;
use workteams_tests::{GrantTo, Stack, fresh_as, for_each_database, resource_id, user_id};

const MAILBOX: &str = "mail.mailbox";
const FOLDER: &str = "kdrive.folder";

/// The organization acme, with ada in the team support. Of seven mailboxes,
/// four are granted to the team and two to ada (one of them overlapping),
/// and a folder tree is granted to the team.
struct World {
    user: String,
    others: Vec<String>,
    mailboxes: Vec<String>,
    folders: Vec<String>,
    token: String,
}

async fn world(stack: &Stack) -> World {
    let admin = &stack.admin;
    let organization = admin.organization("acme").await.id;
    let user = admin.collaborator(&organization, "ada").await.id;
    let mut others = Vec::new();
    for login in ["grace", "linus", "barbara"] {
        others.push(admin.collaborator(&organization, login).await.id);
    }
    let (team, _) = admin
        .team(&organization, "support", None, &[(&user, None), (&others[0], None), (&others[1], None)])
        .await;

    let mut mailboxes = Vec::new();
    for number in 0..7 {
        let address = format!("box{number}@example.com");
        mailboxes.push(admin.resource(&organization, MAILBOX, &address, None, true).await.id);
    }
    for mailbox in &mailboxes[..4] {
        admin.grant(mailbox, GrantTo::Team(&team.id), &["read"], None).await;
    }
    admin.grant(&mailboxes[3], GrantTo::User(&user), &["send"], None).await;
    admin.grant(&mailboxes[5], GrantTo::User(&user), &["restore"], None).await;
    admin.grant(&mailboxes[0], GrantTo::User(&others[2]), &["read"], None).await;

    let root = admin.resource(&organization, FOLDER, "root", None, true).await.id;
    let child = admin.resource(&organization, FOLDER, "root/child", Some(&root), true).await.id;
    let token = admin.grant(&root, GrantTo::Team(&team.id), &["view"], None).await;

    World {
        user,
        others,
        mailboxes,
        folders: vec![root, child],
        token,
    }
}

fn list_for_user(user: &str, resource_type: &str, page_size: i32, token: &str) -> authz::ListEffectiveAccessRequest {
    authz::ListEffectiveAccessRequest {
        target: Some(Target::User(user_id(user))),
        organization: None,
        resource_type: resource_type.to_owned(),
        page_size,
        page_token: String::new(),
        consistency: Some(fresh_as(token)),
    }
}

fn list_for_resource(resource: &str, page_size: i32, token: &str) -> authz::ListEffectiveAccessRequest {
    authz::ListEffectiveAccessRequest {
        target: Some(Target::Resource(resource_id(resource))),
        organization: None,
        resource_type: String::new(),
        page_size,
        page_token: String::new(),
        consistency: Some(fresh_as(token)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_listing_pages_each_once() {
    for_each_database(|stack| async move {
        let world = world(&stack).await;

        let entries = stack.authz.list_all(list_for_user(&world.user, "", 2, &world.token)).await;

        let listed: Vec<&str> = entries.iter().map(|entry| entry.resource_id.as_str()).collect();
        let unique: BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(listed.len(), unique.len(), "an entry was listed twice: {listed:?}");
        let mut expected: BTreeSet<&str> = world.mailboxes[..4].iter().map(String::as_str).collect();
        expected.insert(&world.mailboxes[5]);
        expected.extend(world.folders.iter().map(String::as_str));
        assert_eq!(unique, expected);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_listing_agrees_with_checks() {
    for_each_database(|stack| async move {
        let world = world(&stack).await;

        let entries = stack.authz.list_all(list_for_user(&world.user, MAILBOX, 3, &world.token)).await;

        assert_eq!(entries.len(), 5);
        for entry in &entries {
            let check = stack.authz.check(&world.user, &entry.resource_id, &entry.permissions[0], &world.token).await;
            assert!(check.allowed, "{} listed but denied", entry.resource_id);
            assert_eq!(check.permissions, entry.permissions, "{}", entry.resource_id);
            assert_eq!(entry.resource_type, MAILBOX);
            assert_eq!(entry.user_login, "ada");
        }
        let unlisted = &world.mailboxes[6];
        assert!(!stack.authz.allowed(&world.user, unlisted, "read", &world.token).await);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_listing_agrees_with_checks() {
    for_each_database(|stack| async move {
        let world = world(&stack).await;
        let mailbox = &world.mailboxes[0];

        let entries = stack.authz.list_all(list_for_resource(mailbox, 1, &world.token)).await;

        let listed: BTreeSet<&str> = entries.iter().map(|entry| entry.user_id.as_str()).collect();
        let expected: BTreeSet<&str> = [&world.user, &world.others[0], &world.others[1], &world.others[2]]
            .into_iter()
            .map(String::as_str)
            .collect();
        assert_eq!(entries.len(), listed.len(), "a user was listed twice");
        assert_eq!(listed, expected);
        for user in &expected {
            assert!(stack.authz.allowed(user, mailbox, "read", &world.token).await, "{user}");
        }
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_token_of_other_listing_rejected() {
    for_each_database(|stack| async move {
        let world = world(&stack).await;
        let first = stack
            .authz
            .client
            .clone()
            .list_effective_access(list_for_user(&world.user, "", 2, &world.token))
            .await
            .unwrap()
            .into_inner();

        let status = stack
            .authz
            .client
            .clone()
            .list_effective_access(authz::ListEffectiveAccessRequest {
                page_token: first.next_page_token.clone(),
                ..list_for_user(&world.others[0], "", 2, &world.token)
            })
            .await
            .unwrap_err();

        assert!(!first.next_page_token.is_empty());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "page_token");
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_login_lists_nothing() {
    for_each_database(|stack| async move {
        let world = world(&stack).await;
        let request = authz::ListEffectiveAccessRequest {
            target: Some(Target::User(workteams_tests::user_login("nobody"))),
            ..list_for_user(&world.user, "", 10, &world.token)
        };

        let entries = stack.authz.list_all(request).await;

        assert!(entries.is_empty());
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_filter_limits_listing() {
    for_each_database(|stack| async move {
        let world = world(&stack).await;
        let globex = stack.admin.organization("globex").await.id;
        stack
            .admin
            .member(&globex, &world.user, workteams_proto::directory::v1::MemberRole::Collaborator)
            .await;
        let globex_mailbox = stack.admin.resource(&globex, MAILBOX, "ada@globex.example", None, true).await.id;
        let token = stack.admin.grant(&globex_mailbox, GrantTo::User(&world.user), &["read"], None).await;
        let by_name = |name: &str| authz::OrganizationRef {
            kind: Some(authz::organization_ref::Kind::Name(name.to_owned())),
        };

        let everything = stack.authz.list_all(list_for_user(&world.user, MAILBOX, 10, &token)).await;
        let acme_only = stack
            .authz
            .list_all(authz::ListEffectiveAccessRequest {
                organization: Some(by_name("ACME")),
                ..list_for_user(&world.user, MAILBOX, 10, &token)
            })
            .await;
        let unknown = stack
            .authz
            .list_all(authz::ListEffectiveAccessRequest {
                organization: Some(by_name("initech")),
                ..list_for_user(&world.user, MAILBOX, 10, &token)
            })
            .await;

        assert_eq!(everything.len(), 6);
        assert_eq!(acme_only.len(), 5);
        assert!(acme_only.iter().all(|entry| entry.resource_id != globex_mailbox));
        assert!(unknown.is_empty());
        stack
    })
    .await;
}
