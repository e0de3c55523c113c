//! Fail-closed responses: unknown natural keys deny, unknown ids are
//! NOT_FOUND, malformed requests name their field, and every check fails with
//! UNAVAILABLE before the first snapshot.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt;
use workteams_proto::authz::v1 as authz;
use workteams_tests::{
    GrantTo, RunningDirectory, RunningSidecar, fresh_as, for_each_database, init_logging, resource_id, resource_key,
    testing::TestDatabase, user_email, user_id, user_login,
};

const MAILBOX: &str = "mail.mailbox";
const AUTHZ_SERVICE: &str = "workteams.authz.v1.AuthorizationService";

/// Creates acme with the collaborator ada and her mailbox, granted to her.
async fn mailbox_fixture(stack: &workteams_tests::Stack) -> (String, String, String) {
    let admin = &stack.admin;
    let organization = admin.organization("acme").await.id;
    let user = admin.collaborator(&organization, "ada").await.id;
    let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
    let token = admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;
    (user, mailbox, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_natural_keys_deny() {
    for_each_database(|stack| async move {
        let (_, _, token) = mailbox_fixture(&stack).await;
        let cases = [
            (user_login("nobody"), resource_key("acme", MAILBOX, "ada@example.com"), authz::DenyReason::UnknownUser),
            (
                user_email("nobody@example.com"),
                resource_key("acme", MAILBOX, "ada@example.com"),
                authz::DenyReason::UnknownUser,
            ),
            (user_login("ada"), resource_key("globex", MAILBOX, "ada@example.com"), authz::DenyReason::UnknownOrganization),
            (user_login("ada"), resource_key("acme", MAILBOX, "eve@example.com"), authz::DenyReason::UnknownResource),
            (user_login("ada"), resource_key("acme", "fax.machine", "ada@example.com"), authz::DenyReason::UnknownResource),
        ];

        for (user, resource, expected) in cases {
            let description = format!("{user:?} on {resource:?}");
            let check = stack.authz.try_check(user, resource, "read", fresh_as(&token)).await.unwrap();
            assert!(!check.allowed, "{description} was allowed");
            assert_eq!(check.deny_reason(), expected, "{description}");
        }
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_not_found() {
    for_each_database(|stack| async move {
        let (user, mailbox, token) = mailbox_fixture(&stack).await;
        let missing = uuid::Uuid::now_v7().to_string();

        let unknown_user = stack
            .authz
            .try_check(user_id(&missing), resource_id(&mailbox), "read", fresh_as(&token))
            .await
            .unwrap_err();
        let unknown_resource = stack
            .authz
            .try_check(user_id(&user), resource_id(&missing), "read", fresh_as(&token))
            .await
            .unwrap_err();

        assert_eq!(unknown_user.code(), Code::NotFound);
        assert_eq!(unknown_user.get_details_bad_request().unwrap().field_violations[0].field, "user.id");
        assert_eq!(unknown_resource.code(), Code::NotFound);
        assert_eq!(
            unknown_resource.get_details_bad_request().unwrap().field_violations[0].field,
            "resource.id"
        );
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_name_field() {
    for_each_database(|stack| async move {
        let (user, mailbox, token) = mailbox_fixture(&stack).await;

        let unknown_permission = stack
            .authz
            .try_check(user_id(&user), resource_id(&mailbox), "fly", fresh_as(&token))
            .await
            .unwrap_err();
        let empty_id = stack
            .authz
            .try_check(user_id(""), resource_id(&mailbox), "read", fresh_as(&token))
            .await
            .unwrap_err();
        let missing_resource = stack
            .authz
            .client
            .clone()
            .check_access(authz::CheckAccessRequest {
                user: Some(user_id(&user)),
                resource: None,
                permission: "read".to_owned(),
                consistency: None,
            })
            .await
            .unwrap_err();

        for (status, field) in [
            (&unknown_permission, "permission"),
            (&empty_id, "user.id"),
            (&missing_resource, "resource"),
        ] {
            assert_eq!(status.code(), Code::InvalidArgument, "{field}");
            let violations = status.get_details_bad_request().unwrap().field_violations;
            assert_eq!(violations[0].field, field);
        }
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_permission_of_missing_resource_rejected() {
    for_each_database(|stack| async move {
        let (_, _, token) = mailbox_fixture(&stack).await;

        let status = stack
            .authz
            .try_check(user_login("ada"), resource_key("acme", MAILBOX, "eve@example.com"), "fly", fresh_as(&token))
            .await
            .unwrap_err();

        assert_eq!(status.code(), Code::InvalidArgument);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_in_order() {
    for_each_database(|stack| async move {
        let (user, mailbox, token) = mailbox_fixture(&stack).await;
        let check = |permission: &str| authz::CheckAccessRequest {
            user: Some(user_id(&user)),
            resource: Some(resource_id(&mailbox)),
            permission: permission.to_owned(),
            consistency: None,
        };
        let request = authz::BatchCheckAccessRequest {
            checks: vec![check("read"), check("send"), check("read")],
            consistency: Some(fresh_as(&token)),
        };

        let response = stack.authz.client.clone().batch_check_access(request).await.unwrap().into_inner();

        let allowed: Vec<bool> = response.results.iter().map(|result| result.allowed).collect();
        assert_eq!(allowed, [true, false, true]);
        assert!(response.results.iter().all(|result| result.revision == response.revision));
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_batch_is_rejected() {
    for_each_database(|stack| async move {
        let (user, mailbox, _) = mailbox_fixture(&stack).await;
        let check = authz::CheckAccessRequest {
            user: Some(user_id(&user)),
            resource: Some(resource_id(&mailbox)),
            permission: "read".to_owned(),
            consistency: None,
        };
        let request = authz::BatchCheckAccessRequest {
            checks: vec![check; 10_001],
            consistency: None,
        };

        let status = stack.authz.client.clone().batch_check_access(request).await.unwrap_err();

        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "checks");
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_before_first_snapshot() {
    init_logging();
    let database = TestDatabase::sqlite();
    // Reserve a free port for the directory, then leave it closed until
    // the sidecar has started.
    let reserved = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let directory_address = reserved.local_addr().unwrap();
    drop(reserved);
    let sidecar = RunningSidecar::start(&format!("http://{directory_address}")).await;
    let mut client = sidecar.client().await;
    let mut health = HealthClient::new(sidecar.channel().await);
    let health_request = || HealthCheckRequest {
        service: AUTHZ_SERVICE.to_owned(),
    };

    let early = client
        .check_access(authz::CheckAccessRequest {
            user: Some(user_login("ada")),
            resource: Some(resource_key("acme", MAILBOX, "ada@example.com")),
            permission: "read".to_owned(),
            consistency: None,
        })
        .await
        .unwrap_err();
    let early_health = health.check(health_request()).await.unwrap().into_inner();
    let early_status = client.get_index_status(authz::GetIndexStatusRequest {}).await.unwrap().into_inner();

    let directory = RunningDirectory::start_at(directory_address, database.url()).await;
    sidecar.wait_until_ready().await;
    let ready_health = health.check(health_request()).await.unwrap().into_inner();

    assert_eq!(early.code(), Code::Unavailable);
    assert_eq!(early.get_details_error_info().unwrap().reason, "INDEX_NOT_READY");
    assert_eq!(early_health.status(), ServingStatus::NotServing);
    assert!(!early_status.ready);
    assert_eq!(ready_health.status(), ServingStatus::Serving);

    sidecar.stop().await;
    directory.stop().await;
    tokio::time::sleep(Duration::ZERO).await;
}
