//! The sidecar as operators run it: load shedding, graceful shutdown with a
//! call in flight, the metrics endpoint, the Unix domain socket, and
//! Envoy's external authorization mapped onto real directory data.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttributeRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use workteams_authz::{AuthzConfig, ServeListeners};
use workteams_domain::{ConsistencyToken, Revision};
use workteams_proto::authz::v1 as authz;
use workteams_proto::authz::v1::authorization_service_client::AuthorizationServiceClient;
use workteams_tests::testing::TestDatabase;
use workteams_tests::{
    Directory, GrantTo, RunningDirectory, SETUP_TIMEOUT, fresh_as, init_logging, resource_id, test_sidecar_config,
    user_id,
};

const MAILBOX: &str = "mail.mailbox";

/// The Envoy mapping the ext_authz tests use.
const MAPPING: &str = "\
organization: acme
user:
  header: x-user-id
methods:
  GET: read
  HEAD: read
  POST: send
routes:
  - template: /mailboxes/{mailbox}/messages/**
    resource_type: mail.mailbox
";

/// A sidecar started in this test with every listener the binary has.
struct Sidecar {
    address: SocketAddr,
    metrics: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), String>>,
}

impl Sidecar {
    async fn start(config: AuthzConfig, unix: Option<&Path>, with_metrics: bool) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = grpc.local_addr().unwrap();
        let mut listeners = ServeListeners::tcp(grpc);
        if with_metrics {
            listeners.metrics = Some(workteams_authz::bind_metrics("127.0.0.1:0".parse().unwrap()).await.unwrap());
        }
        let metrics = listeners.metrics.as_ref().map(|listener| listener.local_addr().unwrap());
        if let Some(path) = unix {
            listeners.unix = Some(workteams_authz::bind_unix_socket(path, 0o660).unwrap());
        }

        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            workteams_authz::serve_with(config, listeners, async move {
                let _ = stopped.await;
            })
            .await
            .map_err(|error| error.to_string())
        });
        Self {
            address,
            metrics,
            stop: Some(stop),
            task,
        }
    }

    async fn channel(&self) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.address)).unwrap();
        let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
        loop {
            match endpoint.connect().await {
                Ok(channel) => return channel,
                Err(error) => {
                    assert!(tokio::time::Instant::now() < deadline, "cannot connect: {error}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    async fn client(&self) -> AuthorizationServiceClient<Channel> {
        AuthorizationServiceClient::new(self.channel().await)
    }

    /// Waits for the first snapshot and returns the index status.
    async fn ready(&self) -> authz::GetIndexStatusResponse {
        let mut client = self.client().await;
        let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
        loop {
            let status = client
                .get_index_status(authz::GetIndexStatusRequest {})
                .await
                .unwrap()
                .into_inner();
            if status.ready {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "the sidecar never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts shutdown and waits for the server to stop.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(SETUP_TIMEOUT, self.task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "the sidecar did not stop cleanly: {result:?}");
    }
}

/// Directory data the tests check against: Ada reads the support mailbox,
/// Bob is a member without grants.
struct Fixture {
    user: String,
    other_user: String,
    mailbox: String,
    token: String,
}

async fn fixture(admin: &Directory) -> Fixture {
    let organization = admin.organization("acme").await.id;
    let user = admin.collaborator(&organization, "ada").await.id;
    let other_user = admin.collaborator(&organization, "bob").await.id;
    let mailbox = admin
        .resource(&organization, MAILBOX, "support@example.com", None, true)
        .await
        .id;
    let token = admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;
    Fixture {
        user,
        other_user,
        mailbox,
        token,
    }
}

fn config(directory: &RunningDirectory) -> AuthzConfig {
    AuthzConfig {
        // Held calls wait for a revision; only the test ends them.
        consistency_wait: Duration::from_secs(600),
        shutdown_grace_period: Duration::from_secs(600),
        ..test_sidecar_config(&directory.url())
    }
}

/// Builds a check that waits until the index reaches the revision after
/// the current one.
fn held_check(fixture: &Fixture, status: &authz::GetIndexStatusResponse) -> authz::CheckAccessRequest {
    let current = ConsistencyToken::decode("consistency_token", &status.consistency_token).unwrap();
    let next = ConsistencyToken::new(current.epoch, Revision(current.revision.0 + 1));
    authz::CheckAccessRequest {
        user: Some(user_id(&fixture.user)),
        resource: Some(resource_id(&fixture.mailbox)),
        permission: "read".to_owned(),
        consistency: Some(fresh_as(&next.encode())),
    }
}

/// Calls until a call is shed, which shows the held call occupies the only
/// slot. Returns the shed call's status.
async fn wait_until_shed(client: &mut AuthorizationServiceClient<Channel>) -> tonic::Status {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        match client.get_index_status(authz::GetIndexStatusRequest {}).await {
            Err(status) if status.code() == Code::ResourceExhausted => return status,
            Err(status) => panic!("unexpected status {status:?}"),
            Ok(_) => {
                assert!(tokio::time::Instant::now() < deadline, "the held call never arrived");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_call_shed_at_limit_one() {
    init_logging();
    let database = TestDatabase::sqlite();
    let directory = RunningDirectory::start(database.url()).await;
    let admin = directory.client().await;
    let fixture = fixture(&admin).await;
    let sidecar = Sidecar::start(
        AuthzConfig {
            concurrency_limit: 1,
            ..config(&directory)
        },
        None,
        false,
    )
    .await;
    let status = sidecar.ready().await;
    let mut client = sidecar.client().await;

    let mut held_client = client.clone();
    let held_request = held_check(&fixture, &status);
    let held = tokio::spawn(async move { held_client.check_access(held_request).await });
    let shed = wait_until_shed(&mut client).await;

    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(shed.message().contains("limit of 1"), "{}", shed.message());
    assert!(!held.is_finished());

    // A new revision releases the held call, and its slot with it.
    admin.user("carol").await;
    let released = held.await.unwrap().unwrap().into_inner();
    assert!(released.allowed);
    client.get_index_status(authz::GetIndexStatusRequest {}).await.unwrap();

    sidecar.stop().await;
    directory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_call_in_flight() {
    init_logging();
    let database = TestDatabase::sqlite();
    let directory = RunningDirectory::start(database.url()).await;
    let admin = directory.client().await;
    let fixture = fixture(&admin).await;
    let sidecar = Sidecar::start(
        AuthzConfig {
            concurrency_limit: 1,
            ..config(&directory)
        },
        None,
        false,
    )
    .await;
    let status = sidecar.ready().await;
    let channel = sidecar.channel().await;
    let mut client = AuthorizationServiceClient::new(channel.clone());
    let mut health = HealthClient::new(channel)
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving_status(health.message().await.unwrap()), ServingStatus::Serving);

    let mut held_client = client.clone();
    let held_request = held_check(&fixture, &status);
    let held = tokio::spawn(async move { held_client.check_access(held_request).await });
    wait_until_shed(&mut client).await;
    let Sidecar {
        stop, task: server, ..
    } = sidecar;
    stop.unwrap().send(()).unwrap();

    assert_eq!(serving_status(health.message().await.unwrap()), ServingStatus::NotServing);
    assert!(!server.is_finished());
    assert!(!held.is_finished());

    // The follower still runs while calls drain, so the held call gets the
    // revision it waits for and completes normally.
    admin.user("carol").await;
    let released = held.await.unwrap().unwrap().into_inner();
    assert!(released.allowed);
    let stopped = tokio::time::timeout(SETUP_TIMEOUT, server).await.unwrap().unwrap();
    assert_eq!(stopped, Ok(()));

    directory.stop().await;
}

fn serving_status(message: Option<HealthCheckResponse>) -> ServingStatus {
    ServingStatus::try_from(message.expect("a health message").status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_and_decisions() {
    init_logging();
    let database = TestDatabase::sqlite();
    let directory = RunningDirectory::start(database.url()).await;
    let admin = directory.client().await;
    let fixture = fixture(&admin).await;
    let sidecar = Sidecar::start(config(&directory), None, true).await;
    sidecar.ready().await;
    let mut client = sidecar.client().await;

    for (user, permission) in [
        (&fixture.user, "read"),
        (&fixture.user, "read"),
        (&fixture.user, "send"),
        (&fixture.other_user, "read"),
    ] {
        client
            .check_access(authz::CheckAccessRequest {
                user: Some(user_id(user)),
                resource: Some(resource_id(&fixture.mailbox)),
                permission: permission.to_owned(),
                consistency: Some(fresh_as(&fixture.token)),
            })
            .await
            .unwrap();
    }
    let text = scrape(sidecar.metrics.unwrap()).await;

    let expected = [
        r#"grpc_server_handled_total{grpc_code="OK",grpc_method="CheckAccess",grpc_service="workteams.authz.v1.AuthorizationService"} 4"#,
        r#"workteams_authz_checks_total{decision="allow",resource_type="mail.mailbox"} 2"#,
        r#"workteams_authz_checks_total{decision="deny",resource_type="mail.mailbox"} 2"#,
        r#"workteams_authz_index_entities{kind="resources"} 1"#,
        r#"workteams_authz_index_entities{kind="users"} 2"#,
        r#"workteams_authz_index_entities{kind="grants"} 1"#,
        "workteams_authz_index_ready 1",
        "workteams_authz_snapshot_load_seconds_count 1",
        "workteams_authz_revision_lag 0",
        r#"workteams_authz_follower_state{state="up_to_date"} 1"#,
        r#"workteams_authz_follower_state{state="resyncing"} 0"#,
    ];
    for line in expected {
        assert!(text.lines().any(|text_line| text_line == line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("grpc_server_handling_seconds_bucket"), "{text}");
    assert!(!text.contains(&fixture.user), "a user id became a label");

    sidecar.stop().await;
    directory.stop().await;
}

/// Reads `/metrics` over plain HTTP/1.1.
async fn scrape(address: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    })
    .await
    .unwrap()
}

// === Envoy external authorization ===

struct EnvoyStack {
    directory: RunningDirectory,
    sidecar: Sidecar,
    client: AuthorizationClient<Channel>,
    fixture: Fixture,
    _files: tempfile::TempDir,
}

impl EnvoyStack {
    async fn start(database: &TestDatabase) -> Self {
        init_logging();
        let files = tempfile::tempdir().unwrap();
        let mapping = files.path().join("ext-authz.yaml");
        std::fs::write(&mapping, MAPPING).unwrap();

        let directory = RunningDirectory::start(database.url()).await;
        let admin = directory.client().await;
        let fixture = fixture(&admin).await;
        let sidecar = Sidecar::start(
            AuthzConfig {
                ext_authz_config: Some(mapping),
                ..config(&directory)
            },
            None,
            false,
        )
        .await;
        sidecar.ready().await;
        // Envoy's checks read the current index; wait until it has the grant.
        let mut authz_client = sidecar.client().await;
        authz_client
            .check_access(authz::CheckAccessRequest {
                user: Some(user_id(&fixture.user)),
                resource: Some(resource_id(&fixture.mailbox)),
                permission: "read".to_owned(),
                consistency: Some(fresh_as(&fixture.token)),
            })
            .await
            .unwrap();
        let client = AuthorizationClient::new(sidecar.channel().await);

        Self {
            directory,
            sidecar,
            client,
            fixture,
            _files: files,
        }
    }

    async fn check(&self, method: &str, path: &str, user: Option<&str>) -> CheckResponse {
        self.client
            .clone()
            .check(envoy_check(method, path, user))
            .await
            .expect("Check answers every request")
            .into_inner()
    }

    async fn stop(self) {
        self.sidecar.stop().await;
        self.directory.stop().await;
    }
}

fn envoy_check(method: &str, path: &str, user: Option<&str>) -> CheckRequest {
    let mut headers = HashMap::from([(":authority".to_owned(), "mail.example.com".to_owned())]);
    if let Some(user) = user {
        headers.insert("x-user-id".to_owned(), user.to_owned());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttributeRequest {
                http: Some(HttpRequest {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// Returns the HTTP status and reason header of a denied response, or `None`
/// when the response allows the request.
fn denial(response: &CheckResponse) -> Option<(i32, String)> {
    let code = response.status.as_ref().map_or(0, |status| status.code);
    match &response.http_response {
        Some(HttpResponse::OkResponse(_)) => {
            assert_eq!(code, 0, "an allow must carry status OK");
            None
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            assert_ne!(code, 0, "a deny must not carry status OK");
            let reason = denied
                .headers
                .iter()
                .filter_map(|option| option.header.as_ref())
                .find(|header| header.key == "x-workteams-denied-reason")
                .map(|header| header.value.clone())
                .expect("a reason header");
            Some((denied.status.as_ref().unwrap().code, reason))
        }
        other => panic!("no HTTP answer: {other:?}"),
    }
}

fn forbidden(reason: &str) -> Option<(i32, String)> {
    Some((403, reason.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_authz_maps_requests_to_checks() {
    for database in TestDatabase::all().await {
        let stack = EnvoyStack::start(&database).await;
        let path = "/mailboxes/support%40example.com/messages";

        let allowed = stack.check("GET", path, Some("ada")).await;
        let nested = stack.check("GET", "/mailboxes/Support%40Example.com/messages/42", Some("ada")).await;
        let query = stack.check("HEAD", "/mailboxes/support%40example.com/messages?limit=5", Some("ADA")).await;
        let send = stack.check("POST", path, Some("ada")).await;
        let no_grant = stack.check("GET", path, Some("bob")).await;
        let unknown_user = stack.check("GET", path, Some("zed")).await;
        let unknown_mailbox = stack.check("GET", "/mailboxes/nobody%40example.com/messages", Some("ada")).await;
        let unmapped_route = stack.check("GET", "/teams/support", Some("ada")).await;
        let unmapped_method = stack.check("DELETE", path, Some("ada")).await;
        let missing_user = stack.check("GET", path, None).await;

        assert_eq!(denial(&allowed), None);
        assert_eq!(denial(&nested), None);
        assert_eq!(denial(&query), None);
        assert_eq!(denial(&send), forbidden("permission_not_held"));
        assert_eq!(denial(&no_grant), forbidden("no_grant"));
        assert_eq!(denial(&unknown_user), forbidden("unknown_user"));
        assert_eq!(denial(&unknown_mailbox), forbidden("unknown_resource"));
        assert_eq!(denial(&unmapped_route), forbidden("unmapped_route"));
        assert_eq!(denial(&unmapped_method), forbidden("unmapped_method"));
        assert_eq!(denial(&missing_user), forbidden("missing_user"));
        assert_eq!(send.status.unwrap().code, Code::PermissionDenied as i32);

        stack.stop().await;
        database.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_authz_method_map_follows_grants() {
    let database = TestDatabase::sqlite();
    let stack = EnvoyStack::start(&database).await;
    let path = "/mailboxes/support%40example.com/messages";
    assert_eq!(denial(&stack.check("POST", path, Some("ada")).await), forbidden("permission_not_held"));

    let admin = stack.directory.client().await;
    let token = admin
        .grant(&stack.fixture.mailbox, GrantTo::User(&stack.fixture.user), &["send"], None)
        .await;
    stack
        .sidecar
        .client()
        .await
        .check_access(authz::CheckAccessRequest {
            user: Some(user_id(&stack.fixture.user)),
            resource: Some(resource_id(&stack.fixture.mailbox)),
            permission: "send".to_owned(),
            consistency: Some(fresh_as(&token)),
        })
        .await
        .unwrap();

    assert_eq!(denial(&stack.check("POST", path, Some("ada")).await), None);
    stack.stop().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_serves_ext_authz() {
    use std::os::unix::fs::PermissionsExt as _;

    init_logging();
    let database = TestDatabase::sqlite();
    let files = tempfile::tempdir().unwrap();
    let mapping = files.path().join("ext-authz.yaml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let socket = files.path().join("authz.sock");
    // A socket file left by an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());

    let directory = RunningDirectory::start(database.url()).await;
    let admin = directory.client().await;
    let fixture = fixture(&admin).await;
    let sidecar = Sidecar::start(
        AuthzConfig {
            ext_authz_config: Some(mapping),
            ..config(&directory)
        },
        Some(&socket),
        false,
    )
    .await;
    sidecar.ready().await;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    let channel = unix_channel(socket.clone()).await;
    let mut authz_client = AuthorizationServiceClient::new(channel.clone());
    let fresh = authz_client
        .check_access(authz::CheckAccessRequest {
            user: Some(user_id(&fixture.user)),
            resource: Some(resource_id(&fixture.mailbox)),
            permission: "read".to_owned(),
            consistency: Some(fresh_as(&fixture.token)),
        })
        .await
        .unwrap()
        .into_inner();
    let allowed = AuthorizationClient::new(channel.clone())
        .check(envoy_check("GET", "/mailboxes/support%40example.com/messages", Some("ada")))
        .await
        .unwrap()
        .into_inner();
    let denied = AuthorizationClient::new(channel)
        .check(envoy_check("GET", "/mailboxes/support%40example.com/messages", Some("bob")))
        .await
        .unwrap()
        .into_inner();

    assert!(fresh.allowed);
    assert_eq!(denial(&allowed), None);
    assert_eq!(denial(&denied), forbidden("no_grant"));

    sidecar.stop().await;
    directory.stop().await;
}

#[test]
fn unix_socket_keeps_other_files() {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("not-a-socket");
    std::fs::write(&path, "data").unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let error = runtime.block_on(async { workteams_authz::bind_unix_socket(&path, 0o660).unwrap_err() });

    assert!(error.to_string().contains("--unix-socket"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
}

async fn unix_channel(path: PathBuf) -> Channel {
    // The URI is required by the API but unused: the connector dials the
    // socket.
    Endpoint::from_static("http://127.0.0.1:1")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap()
}
