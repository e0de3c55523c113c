//! Operations wiring of the directory: the metrics endpoint and the server
//! layers in front of the directory service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tonic::Code;
use workteams_directory::{ServeListeners, serve_with};
use workteams_proto::directory::v1 as proto;
use workteams_storage::testing::TestDatabase;

/// A directory with its metrics endpoint, both on port 0.
struct MeteredServer {
    client: Client,
    metrics_address: SocketAddr,
    stop: oneshot::Sender<()>,
    _data_dir: tempfile::TempDir,
}

async fn start_metered(concurrency_limit: usize) -> MeteredServer {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&TestDatabase::sqlite(), data_dir.path());
    config.concurrency_limit = concurrency_limit;

    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = grpc.local_addr().unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_address = metrics.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = ServeListeners {
        grpc,
        metrics: Some(metrics),
    };
    tokio::spawn(serve_with(config, listeners, async {
        let _ = stopped.await;
    }));

    MeteredServer {
        client: connect(address).await,
        metrics_address,
        stop,
        _data_dir: data_dir,
    }
}

async fn scrape(address: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Finds the value of one per-RPC sample on a metrics page, 0 when absent.
fn sample(page: &str, family: &str, method: &str, code: &str) -> u64 {
    let series = format!(
        r#"{family}{{grpc_code="{code}",grpc_method="{method}",grpc_service="workteams.directory.v1.DirectoryService"}} "#
    );
    page.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_directory_calls() {
    let mut server = start_metered(64).await;
    // `connect` already made calls while waiting for the server.
    let before = scrape(server.metrics_address).await;
    for _ in 0..2 {
        server
            .client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap();
    }
    let invalid = server
        .client
        .get_organization(proto::GetOrganizationRequest {
            lookup: Some(proto::get_organization_request::Lookup::Id(
                "not-a-uuid".to_owned(),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);

    let page = scrape(server.metrics_address).await;

    let handled = "grpc_server_handled_total";
    let revision_calls = sample(&page, handled, "GetRevision", "OK")
        - sample(&before, handled, "GetRevision", "OK");
    let invalid_calls = sample(&page, handled, "GetOrganization", "INVALID_ARGUMENT");
    assert_eq!(revision_calls, 2, "{page}");
    assert_eq!(invalid_calls, 1, "{page}");
    let _ = server.stop.send(());
}

#[tokio::test]
async fn metrics_include_latency() {
    let mut server = start_metered(64).await;
    let before = scrape(server.metrics_address).await;
    server
        .client
        .get_revision(proto::GetRevisionRequest {})
        .await
        .unwrap();

    let page = scrape(server.metrics_address).await;

    let family = "grpc_server_handling_seconds_count";
    let observed = sample(&page, family, "GetRevision", "OK")
        - sample(&before, family, "GetRevision", "OK");
    assert_eq!(observed, 1, "{page}");
    let _ = server.stop.send(());
}

#[tokio::test]
async fn directory_echoes_request_id() {
    let mut server = start_metered(64).await;
    let mut request = tonic::Request::new(proto::GetRevisionRequest {});
    request
        .metadata_mut()
        .insert("x-request-id", "deploy-check-7".parse().unwrap());

    let response = server.client.get_revision(request).await.unwrap();

    let echoed = response.metadata().get("x-request-id").unwrap();
    assert_eq!(echoed, "deploy-check-7");
    let _ = server.stop.send(());
}

#[tokio::test]
async fn error_response_has_request_id() {
    let mut server = start_metered(64).await;

    let status = server
        .client
        .get_organization(proto::GetOrganizationRequest {
            lookup: Some(proto::get_organization_request::Lookup::Id(
                "not-a-uuid".to_owned(),
            )),
        })
        .await
        .unwrap_err();

    assert!(status.metadata().get("x-request-id").is_some(), "{status:?}");
    let _ = server.stop.send(());
}

/// Watch holds its concurrency slot only until the stream opens, so open
/// streams cannot starve unary calls.
#[tokio::test]
async fn open_watch_keeps_no_slot() {
    let mut server = start_metered(1).await;
    let mut stream = server
        .client
        .watch(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    assert!(first.is_ok());

    let unary = server
        .client
        .get_revision(proto::GetRevisionRequest {})
        .await;

    assert!(unary.is_ok(), "{unary:?}");
    let _ = server.stop.send(());
}
