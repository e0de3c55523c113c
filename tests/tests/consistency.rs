//! Per-request consistency: tokens, fully consistent reads, deadlines and
//! staleness limits.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;
use workteams_domain::{ConsistencyToken, Revision};
use workteams_proto::authz::v1 as authz;
use workteams_tests::{
    GrantTo, RunningSidecar, fresh_as, for_each_database, fully_consistent, resource_id, test_sidecar_config, user_id,
};

const MAILBOX: &str = "mail.mailbox";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fully_consistent_sees_latest_write() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        let granted = admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;

        let check = stack
            .authz
            .try_check(user_id(&user), resource_id(&mailbox), "read", fully_consistent())
            .await
            .unwrap();

        assert!(check.allowed);
        let granted = ConsistencyToken::decode("token", &granted).unwrap();
        assert!(check.revision >= granted.revision.0);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_carries_revision_and_staleness() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        let token = admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;

        let check = stack.authz.check(&user, &mailbox, "read", &token).await;

        let answered_at = ConsistencyToken::decode("token", &check.consistency_token).unwrap();
        assert_eq!(answered_at.revision.0, check.revision);
        assert!(check.staleness.is_some());
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_installation_token_rejected() {
    for_each_database(|stack| async move {
        let foreign = ConsistencyToken::new(Uuid::now_v7(), Revision(1)).encode();
        let organization = stack.admin.organization("acme").await.id;
        let user = stack.admin.collaborator(&organization, "ada").await.id;
        let mailbox = stack.admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;

        let status = stack
            .authz
            .try_check(user_id(&user), resource_id(&mailbox), "read", fresh_as(&foreign))
            .await
            .unwrap_err();

        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "consistency.at_least_as_fresh");
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreached_token_hits_deadline() {
    for_each_database(|stack| async move {
        let head = ConsistencyToken::decode("token", &stack.admin.head().await).unwrap();
        let ahead = ConsistencyToken::new(head.epoch, Revision(head.revision.0 + 1_000)).encode();
        let mut request = tonic::Request::new(authz::CheckAccessRequest {
            user: Some(workteams_tests::user_login("ada")),
            resource: Some(workteams_tests::resource_key("acme", MAILBOX, "ada@example.com")),
            permission: "read".to_owned(),
            consistency: Some(fresh_as(&ahead)),
        });
        request.set_timeout(Duration::from_millis(300));

        let status = stack.authz.client.clone().check_access(request).await.unwrap_err();

        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert!(status.message().contains("did not reach"), "{}", status.message());
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_index_is_refused() {
    for_each_database(|stack| async move {
        let config = workteams_authz::AuthzConfig {
            max_staleness: Some(Duration::from_secs(1)),
            ..test_sidecar_config(&stack.directory.url())
        };
        let strict = RunningSidecar::start_with(config).await;
        strict.wait_until_ready().await;
        let mut client = strict.client().await;
        let request = authz::CheckAccessRequest {
            user: Some(workteams_tests::user_login("ada")),
            resource: Some(workteams_tests::resource_key("acme", MAILBOX, "ada@example.com")),
            permission: "read".to_owned(),
            consistency: None,
        };
        let fresh = client.check_access(request.clone()).await;

        let directory_url = stack.directory.url();
        let database_url = stack.directory.database_url().to_owned();
        let address = stack.directory.address();
        stack.directory.stop().await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let stale = client.check_access(request).await.unwrap_err();
        strict.stop().await;

        assert!(fresh.is_ok(), "{fresh:?}");
        assert_eq!(stale.code(), Code::Unavailable);
        assert_eq!(stale.get_details_error_info().unwrap().reason, "INDEX_TOO_STALE");

        // The scenario runner stops the directory it started, so start it again.
        let directory = workteams_tests::RunningDirectory::start_at(address, &database_url).await;
        assert_eq!(directory.url(), directory_url);
        workteams_tests::Stack {
            directory,
            ..stack
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_sidecar_follows_one_organization() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let acme = admin.organization("acme").await.id;
        let globex = admin.organization("globex").await.id;
        let user = admin.collaborator(&acme, "ada").await.id;
        admin.member(&globex, &user, workteams_proto::directory::v1::MemberRole::Collaborator).await;
        let acme_mailbox = admin.resource(&acme, MAILBOX, "ada@acme.example", None, true).await.id;
        let globex_mailbox = admin.resource(&globex, MAILBOX, "ada@globex.example", None, true).await.id;
        admin.grant(&acme_mailbox, GrantTo::User(&user), &["read"], None).await;
        let config = workteams_authz::AuthzConfig {
            organization_id: Some(acme.clone()),
            ..test_sidecar_config(&stack.directory.url())
        };
        let filtered = RunningSidecar::start_with(config).await;
        filtered.wait_until_ready().await;
        let authz = workteams_tests::Authz::new(filtered.client().await);

        // The last write is in the other organization: the filtered stream
        // never carries it, and its heartbeats still move the index past it.
        let other_write = admin.grant(&globex_mailbox, GrantTo::User(&user), &["read"], None).await;
        let own = authz.check(&user, &acme_mailbox, "read", &other_write).await;
        let foreign = authz
            .try_check(user_id(&user), resource_id(&globex_mailbox), "read", fresh_as(&other_write))
            .await
            .unwrap_err();
        let status = authz
            .client
            .clone()
            .get_index_status(authz::GetIndexStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        filtered.stop().await;

        assert!(own.allowed);
        assert_eq!(foreign.code(), Code::NotFound);
        assert_eq!(status.organizations, 1);
        stack
    })
    .await;
}
