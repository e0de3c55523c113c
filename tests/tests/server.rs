//! The sidecar's standard gRPC services: health and server reflection.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use workteams_tests::for_each_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serving_once_ready() {
    for_each_database(|stack| async move {
        let mut health = HealthClient::new(stack.sidecar.channel().await);

        let service = health
            .check(HealthCheckRequest {
                service: "workteams.authz.v1.AuthorizationService".to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        let overall = health
            .check(HealthCheckRequest { service: String::new() })
            .await
            .unwrap()
            .into_inner();

        assert_eq!(service.status(), ServingStatus::Serving);
        assert_eq!(overall.status(), ServingStatus::Serving);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_authorization_service() {
    for_each_database(|stack| async move {
        let mut reflection = ServerReflectionClient::new(stack.sidecar.channel().await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };

        let mut responses = reflection
            .server_reflection_info(one_request(request))
            .await
            .unwrap()
            .into_inner();
        let response = responses.message().await.unwrap().unwrap();

        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("expected a service list, got {response:?}");
        };
        let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
        assert!(
            names.iter().any(|name| name == "workteams.authz.v1.AuthorizationService"),
            "{names:?}"
        );
        stack
    })
    .await;
}

/// Builds a request stream with one message.
fn one_request(request: ServerReflectionRequest) -> impl tonic::codegen::tokio_stream::Stream<Item = ServerReflectionRequest> {
    tonic::codegen::tokio_stream::iter([request])
}
