//! The sidecar's optional service token: with token keys configured, its
//! authorization API accepts only configured service accounts, while health
//! stays open. It follows an authenticated directory with its own token.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use workteams_proto::authz::v1 as authz;
use workteams_proto::authz::v1::authorization_service_client::AuthorizationServiceClient;
use workteams_proto::authz::v1::authorization_service_server::SERVICE_NAME as AUTHZ_SERVICE_NAME;
use workteams_tests::testing::TestDatabase;
use workteams_tests::{
    RunningDirectory, RunningSidecar, SETUP_TIMEOUT, TEST_ADMIN_ACCOUNT, TEST_AUDIENCE,
    TEST_ISSUER, TEST_SIDECAR_ACCOUNT, test_auth, test_sidecar_config,
};

fn index_status(token: Option<&str>) -> Request<authz::GetIndexStatusRequest> {
    let mut request = Request::new(authz::GetIndexStatusRequest {});
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// Polls health until the sidecar reports SERVING, which it does once it has
/// loaded the directory's snapshot with its own token.
async fn wait_for_serving(sidecar: &RunningSidecar) {
    let mut health = HealthClient::new(sidecar.channel().await);
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: AUTHZ_SERVICE_NAME.to_owned(),
            })
            .await
            .map(|response| response.into_inner().status());
        if matches!(status, Ok(ServingStatus::Serving)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sidecar never reported SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sidecar_requires_service_token() {
    let database = TestDatabase::sqlite();
    let directory = RunningDirectory::start(database.url()).await;
    let settings = test_auth().settings();
    let workteams_auth::KeySource::SharedSecretFile(secret_file) = settings.keys else {
        panic!("the test credentials use a shared secret");
    };
    let config = workteams_authz::AuthzConfig {
        auth_secret_file: Some(secret_file),
        auth_issuer: Some(TEST_ISSUER.to_owned()),
        auth_audience: Some(TEST_AUDIENCE.to_owned()),
        auth_service_accounts_file: settings.service_accounts_file,
        ..test_sidecar_config(&directory.url())
    };
    let sidecar = RunningSidecar::start_with(config).await;
    wait_for_serving(&sidecar).await;
    let mut client = AuthorizationServiceClient::new(sidecar.channel().await);

    let anonymous = client.get_index_status(index_status(None)).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");

    let user = test_auth().user_token("0190c3a4-5b6e-7f80-9a1b-2c3d4e5f6a70");
    let as_user = client.get_index_status(index_status(Some(&user))).await.unwrap_err();
    assert_eq!(as_user.code(), Code::Unauthenticated, "{as_user:?}");
    assert!(as_user.message().contains("service accounts"), "{}", as_user.message());

    let mut expired_claims = test_auth().claims(TEST_SIDECAR_ACCOUNT);
    expired_claims.exp = expired_claims.iat - 60;
    let expired = test_auth().mint(&expired_claims);
    let as_expired = client.get_index_status(index_status(Some(&expired))).await.unwrap_err();
    assert_eq!(as_expired.code(), Code::Unauthenticated, "{as_expired:?}");

    let service = test_auth().token(TEST_ADMIN_ACCOUNT);
    let status = client
        .get_index_status(index_status(Some(&service)))
        .await
        .unwrap()
        .into_inner();
    assert!(status.ready);

    sidecar.stop().await;
    directory.stop().await;
    database.cleanup().await;
}

#[tokio::test]
async fn sidecar_without_directory_token_never_ready() {
    let database = TestDatabase::sqlite();
    let directory = RunningDirectory::start(database.url()).await;
    let config = workteams_authz::AuthzConfig {
        directory_token_file: None,
        ..test_sidecar_config(&directory.url())
    };
    let sidecar = RunningSidecar::start_with(config).await;
    let mut client = AuthorizationServiceClient::new(sidecar.channel().await);

    // The directory rejects the sidecar's calls, so the sidecar keeps
    // failing closed instead of serving an empty index.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = client
        .get_index_status(index_status(None))
        .await
        .unwrap()
        .into_inner();
    assert!(!status.ready);

    sidecar.stop().await;
    directory.stop().await;
    database.cleanup().await;
}
