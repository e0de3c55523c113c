//! The server around the service: health, reflection, shutdown, and the
//! `workteams-directory` binary's configuration handling and signals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use workteams_proto::directory::v1 as proto;
use workteams_storage::testing::TestDatabase;

const DIRECTORY_SERVICE: &str = "workteams.directory.v1.DirectoryService";

async fn channel(server: &TestServer) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(server.channel_address())
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn health_reports_serving() {
    let mut server = TestServer::start(TestDatabase::sqlite()).await;
    let mut health = HealthClient::new(channel(&server).await);

    for service in [DIRECTORY_SERVICE, ""] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_watch_sees_not_serving() {
    let mut server = TestServer::start(TestDatabase::sqlite()).await;
    let mut health = HealthClient::new(channel(&server).await);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: DIRECTORY_SERVICE.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = updates.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    server.shutdown().await.unwrap();

    let mut statuses = Vec::new();
    while let Ok(Some(update)) = updates.message().await {
        statuses.push(update.status());
    }
    assert_eq!(statuses, vec![ServingStatus::NotServing]);
}

#[tokio::test]
async fn reflection_lists_services() {
    let mut server = TestServer::start(TestDatabase::sqlite()).await;
    let mut reflection = ServerReflectionClient::new(channel(&server).await);

    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "workteams.directory.v1.CreateTeamRequest".to_owned(),
            )),
        },
    ];
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();

    let services = match responses.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect::<Vec<_>>(),
        other => panic!("unexpected reflection response {other:?}"),
    };
    assert!(
        services.contains(&DIRECTORY_SERVICE.to_owned()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_owned()),
        "{services:?}"
    );

    match responses.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => {
            assert!(!files.file_descriptor_proto.is_empty());
        }
        other => panic!("unexpected reflection response {other:?}"),
    }

    drop(responses);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_watch() {
    let mut server = TestServer::start(TestDatabase::sqlite()).await;
    let mut stream = server
        .client
        .watch(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();

    server.shutdown().await.unwrap();

    let ended = loop {
        match stream.message().await {
            Ok(Some(heartbeat)) => assert!(heartbeat.batches.is_empty()),
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
}

#[tokio::test]
async fn dropped_watch_does_not_block_shutdown() {
    let mut server = TestServer::start(TestDatabase::sqlite()).await;
    let stream = server
        .client
        .watch(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    drop(stream);

    create_organization(&mut server.client, &unique("after-drop")).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_message_rejected() {
    let database = TestDatabase::sqlite();
    let mut server =
        TestServer::start_with(database, |config| config.max_message_size = 64 * 1024).await;

    let status = server
        .client
        .create_team(proto::CreateTeamRequest {
            organization_id: uuid::Uuid::now_v7().to_string(),
            name: "Big".to_owned(),
            description: "x".repeat(100 * 1024),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn removed_type_in_use_is_config_error() {
    let database = TestDatabase::sqlite();
    let data_dir = tempfile::tempdir().unwrap();
    let wiki = workteams_domain::ResourceTypeDef {
        name: "wiki.space".to_owned(),
        permissions: vec!["read".to_owned()],
        ordered_levels: false,
        combining: workteams_domain::Combining::Cumulative,
        grants_propagate: false,
        case_insensitive_external_ids: false,
        nestable: false,
    };
    let mut with_wiki = test_config(&database, data_dir.path());
    with_wiki.extra_resource_types = vec![wiki];

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn(workteams_directory::serve(with_wiki, listener, async {
        let _ = stopped.await;
    }));
    let mut client = connect(address).await;
    let organization = create_organization(&mut client, &unique("wiki")).await;
    create_resource(
        &mut client,
        &organization.id,
        new_resource("wiki.space", "handbook"),
    )
    .await;
    drop(client);
    stop.send(()).unwrap();
    first.await.unwrap().unwrap();

    let without_wiki = test_config(&database, data_dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = workteams_directory::serve(without_wiki, listener, std::future::ready(()))
        .await
        .unwrap_err();
    match error {
        workteams_directory::ServeError::Config(error) => {
            assert_eq!(error.setting, "resource_types_file")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }

    database.cleanup().await;
}

/// The `workteams-directory` binary, killed on drop if still running.
struct Binary {
    child: Child,
    /// Collects the log lines after the serving line until the binary exits.
    log_reader: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Binary {
    fn spawn(args: &[&str]) -> Self {
        Self::spawn_with_log_filter(args, "info")
    }

    /// Starts the binary with `RUST_LOG` set to `log_filter`.
    fn spawn_with_log_filter(args: &[&str], log_filter: &str) -> Self {
        // Authentication has its own binary tests; these test the rest.
        let child = Command::new(env!("CARGO_BIN_EXE_workteams-directory"))
            .args(args)
            .env("RUST_LOG", log_filter)
            .env("WORKTEAMS_DIRECTORY_INSECURE_NO_AUTH", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            child,
            log_reader: None,
        }
    }

    /// Reads the log until the server logs its serving address.
    fn serving_address(&mut self) -> std::net::SocketAddr {
        let stdout = self.child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains("directory serving") {
                let start = line.find("127.0.0.1:").unwrap();
                let address: String = line[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                // Keep draining the log so the server never blocks on a
                // full pipe.
                self.log_reader = Some(std::thread::spawn(move || {
                    lines.map_while(Result::ok).collect()
                }));
                return address.parse().unwrap();
            }
        }
        panic!("the binary exited before serving");
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_with_timeout(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the binary did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit without blocking the test's runtime, so the
    /// test's clients can still close their connections.
    async fn wait_async(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the binary did not exit in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Returns the log lines written after the serving line. Call it after the
    /// exit.
    fn log_after_serving(&mut self) -> Vec<String> {
        self.log_reader
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default()
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut text).unwrap();
        text
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn binary_serves_until_sigterm() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut binary = Binary::spawn(&[
        "--listen-address",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
        "--heartbeat-interval",
        "1s",
    ]);
    let address = binary.serving_address();

    let mut client = connect(address).await;
    let organization = create_organization(&mut client, &unique("binary")).await;
    assert!(!organization.id.is_empty());
    assert!(data_dir.path().join("directory.db").exists());
    drop(client);

    binary.terminate();
    let status = binary.wait_async(Duration::from_secs(60)).await;
    assert!(status.success(), "{status:?}");
    let log = binary.log_after_serving();
    assert!(
        log.iter().any(|line| line.contains("directory stopped")),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|line| line.contains("grace period")),
        "{log:?}"
    );
}

/// A client whose runtime is blocked never acknowledges the HTTP/2
/// shutdown; the grace period bounds how long the binary waits for it.
#[tokio::test]
async fn stalled_client_cannot_block_exit() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut binary = Binary::spawn(&[
        "--listen-address",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
        "--shutdown-grace-period",
        "1s",
    ]);
    let address = binary.serving_address();
    let mut client = connect(address).await;
    create_organization(&mut client, &unique("stalled")).await;

    binary.terminate();
    // `wait_with_timeout` blocks this test's only runtime thread, so the
    // client cannot acknowledge the server's shutdown handshake.
    let status = binary.wait_with_timeout(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let log = binary.log_after_serving();
    assert!(
        log.iter().any(|line| line.contains("grace period")),
        "{log:?}"
    );
    drop(client);
}

#[test]
fn binary_bad_setting_exits_64() {
    let cases: [&[&str]; 8] = [
        &["--heartbeat-interval", "0s"],
        &["--listen-address", "localhost"],
        &["--database-url", "mysql://localhost/db"],
        &["--no-such-flag"],
        &["--log-format", "xml"],
        &["--metrics-listen-address", "localhost"],
        &["--concurrency-limit", "0"],
        &["--default-deadline", "0s"],
    ];
    for args in cases {
        let mut binary = Binary::spawn(args);
        let status = binary.wait_with_timeout(Duration::from_secs(30));
        assert_eq!(status.code(), Some(64), "{args:?}");
    }
}

#[test]
fn binary_error_names_setting() {
    let mut binary = Binary::spawn(&["--change-log-retention", "0s"]);
    binary.wait_with_timeout(Duration::from_secs(30));
    assert!(binary.stderr().contains("change_log_retention"));
}

#[test]
fn binary_bad_log_filter_exits_64() {
    let mut binary = Binary::spawn_with_log_filter(&[], "workteams=loud");
    let status = binary.wait_with_timeout(Duration::from_secs(30));
    assert_eq!(status.code(), Some(64));
    assert!(binary.stderr().contains("RUST_LOG"));
}

#[test]
fn binary_bad_limit_names_setting() {
    let mut binary = Binary::spawn(&["--concurrency-limit", "0"]);
    binary.wait_with_timeout(Duration::from_secs(30));
    assert!(binary.stderr().contains("concurrency_limit"));
}

#[tokio::test]
async fn binary_serves_metrics() {
    let data_dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago; the binary binds it right away.
    let metrics_address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let metrics_flag = metrics_address.to_string();
    let mut binary = Binary::spawn(&[
        "--listen-address",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
        "--metrics-listen-address",
        &metrics_flag,
    ]);
    let address = binary.serving_address();
    let client = connect(address).await;

    let mut stream = tokio::net::TcpStream::connect(metrics_address).await.unwrap();
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: {metrics_address}\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut page = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut page)
        .await
        .unwrap();

    assert!(
        page.contains(r#"grpc_server_handled_total{grpc_code="OK",grpc_method="GetRevision",grpc_service="workteams.directory.v1.DirectoryService"}"#),
        "{page}"
    );
    drop(client);
    binary.terminate();
    let status = binary.wait_async(Duration::from_secs(60)).await;
    assert!(status.success(), "{status:?}");
}

#[test]
fn binary_help_exits_zero() {
    let mut binary = Binary::spawn(&["--help"]);
    let status = binary.wait_with_timeout(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
}
