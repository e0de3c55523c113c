//! Hostile input against both servers: oversized messages, batches, pages,
//! strings, metadata and team trees, and calls that outlive their deadline.
//! A request over a limit must be rejected with a clear error that names the
//! field and the limit, and must write nothing: the directory's change log head stays
//! where it was.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use tonic::{Code, Request, Status};
use tonic_types::StatusExt;
use workteams_directory::config::MIN_MAX_MESSAGE_SIZE;
use workteams_domain::command::{MAX_BATCH_ITEMS, MAX_GRANT_CHANGES, MAX_TEAM_DEPTH};
use workteams_domain::text::{
    MAX_DESCRIPTION_CHARS, MAX_EMAIL_CHARS, MAX_EXTERNAL_ID_CHARS, MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_LOGIN_CHARS, MAX_NAME_CHARS,
};
use workteams_domain::{ConsistencyToken, Revision};
use workteams_proto::authz::v1 as authz;
use workteams_proto::directory::v1 as directory;
use workteams_tests::testing::TestDatabase;
use workteams_tests::{
    Directory, RunningDirectory, for_each_database, fresh_as, minimize_latency, resource_id, user_id, user_login,
};

/// Asserts an INVALID_ARGUMENT that names `field` in its details and states
/// `limit` in its message.
#[track_caller]
fn assert_limit(status: &Status, field: &str, limit: usize) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = status
        .get_details_bad_request()
        .expect("a BadRequest detail")
        .field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, field);
    assert!(
        status.message().contains(&format!("{limit}")),
        "the message does not state the limit {limit}: {}",
        status.message()
    );
}

/// Asserts that the directory's change log head is still `before`.
async fn assert_nothing_written(admin: &Directory, before: &str) {
    assert_eq!(admin.head().await, before, "a rejected request moved the change log head");
}

fn text(length: usize) -> String {
    "a".repeat(length)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_limits_reject_whole_batch() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await;
        let user = admin.collaborator(&organization.id, "ada").await;
        let (team, _) = admin.team(&organization.id, "platform", None, &[]).await;
        let head = admin.head().await;

        let users = (0..=MAX_BATCH_ITEMS)
            .map(|index| directory::NewUser {
                login: format!("user{index}"),
                email: format!("user{index}@example.com"),
                display_name: format!("User {index}"),
            })
            .collect();
        let status = admin
            .client
            .clone()
            .batch_create_users(directory::BatchCreateUsersRequest {
                users,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "users", MAX_BATCH_ITEMS);

        let members = vec![
            directory::NewOrganizationMember {
                user_id: user.id.clone(),
                role: directory::MemberRole::Collaborator.into(),
                status: directory::MemberStatus::Active.into(),
            };
            MAX_BATCH_ITEMS + 1
        ];
        let status = admin
            .client
            .clone()
            .batch_add_organization_members(directory::BatchAddOrganizationMembersRequest {
                organization_id: organization.id.clone(),
                members,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "members", MAX_BATCH_ITEMS);

        let team_members = vec![
            directory::NewTeamMember {
                user_id: user.id.clone(),
                expire_time: None,
            };
            MAX_BATCH_ITEMS + 1
        ];
        let status = admin
            .client
            .clone()
            .add_team_members(directory::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: team_members,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "members", MAX_BATCH_ITEMS);

        let resource = admin
            .resource(&organization.id, "mail.mailbox", "ada@acme.example", None, false)
            .await;
        let head_after_resource = admin.head().await;
        let changes = vec![
            directory::GrantChange {
                resource_id: resource.id.clone(),
                subject: Some(directory::Subject {
                    kind: Some(directory::subject::Kind::TeamId(team.id.clone())),
                }),
                permissions: vec!["read".to_owned()],
                ..Default::default()
            };
            MAX_GRANT_CHANGES + 1
        ];
        let status = admin
            .client
            .clone()
            .batch_set_grants(directory::BatchSetGrantsRequest {
                organization_id: organization.id.clone(),
                changes,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "changes", MAX_GRANT_CHANGES);

        assert_ne!(head, head_after_resource);
        assert_nothing_written(admin, &head_after_resource).await;
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_limits_name_field_and_maximum() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await;
        let head = admin.head().await;
        let mut client = admin.client.clone();

        let status = client
            .create_organization(directory::CreateOrganizationRequest {
                name: text(MAX_NAME_CHARS + 1),
                display_name: "Long".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "name", MAX_NAME_CHARS);

        let status = client
            .create_organization(directory::CreateOrganizationRequest {
                name: "long-display".to_owned(),
                display_name: text(MAX_NAME_CHARS + 1),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "display_name", MAX_NAME_CHARS);

        let status = client
            .create_user(directory::CreateUserRequest {
                login: text(MAX_LOGIN_CHARS + 1),
                email: "ada@example.com".to_owned(),
                display_name: "Ada".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "login", MAX_LOGIN_CHARS);

        let long_email = format!("{}@{}.example.com", text(60), text(MAX_EMAIL_CHARS));
        let status = client
            .create_user(directory::CreateUserRequest {
                login: "ada".to_owned(),
                email: long_email,
                display_name: "Ada".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "email", MAX_EMAIL_CHARS);

        let status = client
            .create_team(directory::CreateTeamRequest {
                organization_id: organization.id.clone(),
                name: "platform".to_owned(),
                description: text(MAX_DESCRIPTION_CHARS + 1),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "description", MAX_DESCRIPTION_CHARS);

        let status = client
            .create_resource(directory::CreateResourceRequest {
                organization_id: organization.id.clone(),
                resource: Some(directory::NewResource {
                    resource_type: "kdrive.folder".to_owned(),
                    external_id: text(MAX_EXTERNAL_ID_CHARS + 1),
                    display_name: "Folder".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "resource.external_id", MAX_EXTERNAL_ID_CHARS);

        let status = client
            .create_organization(directory::CreateOrganizationRequest {
                name: "keyed".to_owned(),
                display_name: "Keyed".to_owned(),
                idempotency_key: text(MAX_IDEMPOTENCY_KEY_CHARS + 1),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "idempotency_key", MAX_IDEMPOTENCY_KEY_CHARS);

        // An id is parsed, not measured: a huge one is rejected as malformed,
        // and the error repeats only the start of it.
        let huge_id = text(100_000);
        let status = client
            .get_organization(directory::GetOrganizationRequest {
                lookup: Some(directory::get_organization_request::Lookup::Id(huge_id)),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().len() < 1_000, "{} bytes", status.message().len());

        assert_nothing_written(admin, &head).await;
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_size_rejected_or_capped() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let users: Vec<directory::NewUser> = (0..=workteams_storage::MAX_PAGE_SIZE)
            .map(|index| directory::NewUser {
                login: format!("user{index}"),
                email: format!("user{index}@example.com"),
                display_name: format!("User {index}"),
            })
            .collect();
        let (first, rest) = users.split_at(MAX_BATCH_ITEMS);
        for batch in [first, rest] {
            admin
                .client
                .clone()
                .batch_create_users(directory::BatchCreateUsersRequest {
                    users: batch.to_vec(),
                    ..Default::default()
                })
                .await
                .expect("BatchCreateUsers");
        }

        let status = admin
            .client
            .clone()
            .list_users(directory::ListUsersRequest {
                page_size: -1,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "page_size");

        // Above the maximum the page is capped rather than rejected, as
        // Google's API design guide (AIP-158) recommends.
        let page = admin
            .client
            .clone()
            .list_users(directory::ListUsersRequest {
                page_size: i32::MAX,
                ..Default::default()
            })
            .await
            .expect("ListUsers")
            .into_inner();
        assert_eq!(page.users.len(), workteams_storage::MAX_PAGE_SIZE);
        assert!(!page.next_page_token.is_empty());
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_nesting_depth_is_limited() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await;

        let mut chain: Vec<directory::Team> = Vec::new();
        for level in 1..=MAX_TEAM_DEPTH {
            let parent = chain.last().map(|team| team.id.as_str());
            let (team, _) = admin.team(&organization.id, &format!("level-{level}"), parent, &[]).await;
            chain.push(team);
        }
        let deepest = chain.last().unwrap().id.clone();
        let head = admin.head().await;

        let status = admin
            .client
            .clone()
            .create_team(directory::CreateTeamRequest {
                organization_id: organization.id.clone(),
                name: "too-deep".to_owned(),
                parent_team_id: deepest,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "parent_team_id", MAX_TEAM_DEPTH);
        assert_nothing_written(admin, &head).await;

        // A team with one child moved under the second deepest team would
        // put the child one level too deep; one level higher it fits.
        let (moved, _) = admin.team(&organization.id, "moved", None, &[]).await;
        admin.team(&organization.id, "moved-child", Some(&moved.id), &[]).await;
        let head = admin.head().await;
        let set_parent = |parent: &directory::Team| directory::SetTeamParentRequest {
            team_id: moved.id.clone(),
            parent_team_id: parent.id.clone(),
            ..Default::default()
        };
        let status = admin
            .client
            .clone()
            .set_team_parent(set_parent(&chain[MAX_TEAM_DEPTH - 2]))
            .await
            .unwrap_err();
        assert_limit(&status, "parent_team_id", MAX_TEAM_DEPTH);
        assert_nothing_written(admin, &head).await;

        admin
            .client
            .clone()
            .set_team_parent(set_parent(&chain[MAX_TEAM_DEPTH - 3]))
            .await
            .expect("a move that reaches exactly the maximum depth");
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_metadata_is_limited() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let head = admin.head().await;

        let mut request = Request::new(directory::CreateOrganizationRequest {
            name: "acme".to_owned(),
            display_name: "Acme".to_owned(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("x-request-id", text(129).parse().unwrap());
        let status = admin.client.clone().create_organization(request).await.unwrap_err();
        assert_limit(&status, "metadata x-request-id", 128);

        assert_nothing_written(admin, &head).await;
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_rejected() {
    workteams_tests::init_logging();
    for database in TestDatabase::all().await {
        let directory = RunningDirectory::start_with(database.url(), |config| {
            config.max_message_size = MIN_MAX_MESSAGE_SIZE;
        })
        .await;
        let admin = directory.client().await;
        let organization = admin.organization("acme").await;
        let head = admin.head().await;

        // tonic 0.14 rejects a message above the decoding limit with
        // OUT_OF_RANGE and a message that states the limit in bytes.
        let status = admin
            .client
            .clone()
            .create_team(directory::CreateTeamRequest {
                organization_id: organization.id.clone(),
                name: "platform".to_owned(),
                description: text(MIN_MAX_MESSAGE_SIZE + 1),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
        assert!(
            status.message().contains(&format!("limit is: {MIN_MAX_MESSAGE_SIZE} bytes")),
            "{}",
            status.message()
        );

        assert_nothing_written(&admin, &head).await;
        directory.stop().await;
        database.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_ends_call_at_deadline() {
    workteams_tests::init_logging();
    for database in TestDatabase::all().await {
        // The server's default deadline is tested here, because a tonic
        // client enforces a grpc-timeout itself and would cancel the call
        // before the server's error arrived. A thousand inserts take longer
        // than one millisecond.
        let directory = RunningDirectory::start_with(database.url(), |config| {
            config.default_deadline = Duration::from_millis(1);
        })
        .await;
        let admin = directory.client().await;
        let users = (0..MAX_BATCH_ITEMS)
            .map(|index| directory::NewUser {
                login: format!("user{index}"),
                email: format!("user{index}@example.com"),
                display_name: format!("User {index}"),
            })
            .collect();

        let status = admin
            .client
            .clone()
            .batch_create_users(directory::BatchCreateUsersRequest {
                users,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("deadline of 1ms"), "{}", status.message());

        directory.stop().await;
        database.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_rejects_oversized_requests() {
    for_each_database(|stack| async move {
        let mut client = stack.authz.client.clone();
        let check = authz::CheckAccessRequest {
            user: Some(user_login("ada")),
            resource: Some(resource_id(&uuid::Uuid::now_v7().to_string())),
            permission: "read".to_owned(),
            consistency: Some(minimize_latency()),
        };

        let status = client
            .batch_check_access(authz::BatchCheckAccessRequest {
                checks: vec![check.clone(); workteams_authz::request::MAX_BATCH_CHECKS + 1],
                consistency: Some(minimize_latency()),
            })
            .await
            .unwrap_err();
        assert_limit(&status, "checks", workteams_authz::request::MAX_BATCH_CHECKS);

        let status = client
            .check_access(authz::CheckAccessRequest {
                user: Some(user_login(&text(MAX_LOGIN_CHARS + 1))),
                ..check.clone()
            })
            .await
            .unwrap_err();
        assert_limit(&status, "user.login", MAX_LOGIN_CHARS);

        let status = client
            .list_effective_access(authz::ListEffectiveAccessRequest {
                target: Some(authz::list_effective_access_request::Target::User(user_login("ada"))),
                page_size: -1,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "page_size");

        let status = client
            .check_access(authz::CheckAccessRequest {
                permission: text(workteams_authz::MAX_REQUEST_BYTES + 1),
                ..check
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
        assert!(
            status.message().contains(&format!("limit is: {} bytes", workteams_authz::MAX_REQUEST_BYTES)),
            "{}",
            status.message()
        );
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_wait_ends_at_client_deadline() {
    for_each_database(|stack| async move {
        let head = ConsistencyToken::decode("head", &stack.admin.head().await).unwrap();
        let future = ConsistencyToken::new(head.epoch, Revision(head.revision.0 + 1_000)).encode();

        let mut request = Request::new(authz::CheckAccessRequest {
            user: Some(user_id(&uuid::Uuid::now_v7().to_string())),
            resource: Some(resource_id(&uuid::Uuid::now_v7().to_string())),
            permission: "read".to_owned(),
            consistency: Some(fresh_as(&future)),
        });
        // The sidecar stops waiting 100 ms before a 2 s deadline, so its
        // error arrives before the client cancels the call.
        request.set_timeout(Duration::from_secs(2));

        let status = stack.authz.client.clone().check_access(request).await.unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert_eq!(status.get_details_error_info().unwrap().reason, "REVISION_NOT_REACHED");
        stack
    })
    .await;
}
