//! Test harness: a real directory server on 127.0.0.1 port 0 for each
//! configured database (SQLite always, PostgreSQL when
//! `WORKTEAMS_TEST_DATABASE_URL` is set), the generated client, entity
//! helpers and assertions on rich error details.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;
use workteams_directory::{Authentication, DirectoryConfig, ServeError, serve};
use workteams_proto::directory::v1 as proto;
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use workteams_storage::testing::TestDatabase;
use workteams_storage::{Backend, Store, StoreConfig};

pub type Client = DirectoryServiceClient<Channel>;

/// A running directory server and a client connected to it.
pub struct TestServer {
    pub client: Client,
    pub address: SocketAddr,
    pub backend: Backend,
    database: TestDatabase,
    data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

/// Test settings: short heartbeats so Watch tests run quickly.
pub fn test_config(database: &TestDatabase, data_dir: &std::path::Path) -> DirectoryConfig {
    let mut config = DirectoryConfig::with_data_dir(data_dir.to_path_buf());
    config.database_url = database.url().to_owned();
    // These suites test the API itself; authentication has its own suite,
    // and without it the actor metadata names who made each change.
    config.authentication = Authentication::InsecureNoAuth;
    config.rate_limit = None;
    config.heartbeat_interval = Duration::from_millis(300);
    config
}

impl TestServer {
    pub async fn start(database: TestDatabase) -> Self {
        Self::start_with(database, |_| {}).await
    }

    /// Starts a server with the test configuration changed by `adjust`.
    pub async fn start_with(
        database: TestDatabase,
        adjust: impl FnOnce(&mut DirectoryConfig),
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&database, data_dir.path());
        adjust(&mut config);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(config, listener, async {
            let _ = stopped.await;
        }));

        let client = connect(address).await;
        let backend = database.backend();
        Self {
            client,
            address,
            backend,
            database,
            data_dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Connects a second client on its own connection.
    pub async fn new_client(&self) -> Client {
        connect(self.address).await
    }

    pub fn channel_address(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Opens the server's database directly, to compare the API with the
    /// stored change log.
    pub async fn open_store(&self) -> Store {
        Store::connect(StoreConfig::new(self.database.url().to_owned()))
            .await
            .unwrap()
    }

    /// Stops the server, waits for it to drain and drops its database.
    pub async fn stop(mut self) {
        self.shutdown().await.unwrap();
        self.database.cleanup().await;
    }

    /// Signals shutdown and returns what `serve` returned.
    pub async fn shutdown(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the server did not stop within 30 seconds")
                .unwrap(),
            None => Ok(()),
        }
    }
}

/// Connects to a server that may still be starting (it migrates first).
pub async fn connect(address: SocketAddr) -> Client {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.unwrap();
    let client = DirectoryServiceClient::new(channel);

    // The kernel queues connections on the bound listener while the server
    // migrates, so wait until the service responds.
    for _ in 0..300 {
        let mut probe = client.clone();
        match probe.get_revision(proto::GetRevisionRequest {}).await {
            Ok(_) => return client,
            // A server with authentication on rejects the bare probe once it
            // serves, which is all this waits for.
            Err(status) if status.code() == Code::Unauthenticated => return client,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the directory at {address} did not respond within about 15 seconds");
}

/// Runs `test` against a fresh server on every configured database.
pub async fn each_backend(test: impl AsyncFn(&mut TestServer)) {
    for database in TestDatabase::all().await {
        let mut server = TestServer::start(database).await;
        test(&mut server).await;
        server.stop().await;
    }
}

/// Runs `test` against a fresh server with adjusted configuration on every
/// configured database.
pub async fn each_backend_with(
    adjust: impl Fn(&mut DirectoryConfig),
    test: impl AsyncFn(&mut TestServer),
) {
    for database in TestDatabase::all().await {
        let mut server = TestServer::start_with(database, &adjust).await;
        test(&mut server).await;
        server.stop().await;
    }
}

/// Returns a unique name, so tests never collide on case-insensitive keys.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Returns the field names of the BadRequest details of an INVALID_ARGUMENT
/// status.
pub fn bad_request_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .iter()
                .map(|violation| violation.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT with a field violation on `field`.
#[track_caller]
pub fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        bad_request_fields(status),
        vec![field.to_owned()],
        "{status:?}"
    );
}

/// Asserts `code` and that the ErrorInfo names `field`.
#[track_caller]
pub fn assert_code_on_field(status: &Status, code: Code, field: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    let named = details
        .error_info()
        .and_then(|info| info.metadata.get("field").cloned());
    assert_eq!(named.as_deref(), Some(field), "{status:?}");
}

/// Asserts FAILED_PRECONDITION with a violation whose subject is `field`.
#[track_caller]
pub fn assert_precondition(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let details = status.get_error_details();
    let subjects: Vec<String> = details
        .precondition_failure()
        .map(|failure| {
            failure
                .violations
                .iter()
                .map(|violation| violation.subject.clone())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(subjects, vec![field.to_owned()], "{status:?}");
}

/// Returns the revision in a consistency token.
pub fn revision_of(token: &str) -> i64 {
    workteams_domain::ConsistencyToken::decode("token", token)
        .unwrap()
        .revision
        .0
}

pub async fn head_revision(client: &mut Client) -> i64 {
    client
        .get_revision(proto::GetRevisionRequest {})
        .await
        .unwrap()
        .into_inner()
        .revision
}

/// Adds the actor metadata to a request.
pub fn as_actor<T>(message: T, actor: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-workteams-actor", actor.parse().unwrap());
    request
}

pub async fn create_organization(client: &mut Client, name: &str) -> proto::Organization {
    client
        .create_organization(proto::CreateOrganizationRequest {
            name: name.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
}

pub async fn create_user(client: &mut Client, login: &str) -> proto::User {
    client
        .create_user(proto::CreateUserRequest {
            login: login.to_owned(),
            email: format!("{login}@example.com"),
            display_name: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
}

pub async fn add_member(
    client: &mut Client,
    organization_id: &str,
    user_id: &str,
    role: proto::MemberRole,
) {
    client
        .add_organization_member(proto::AddOrganizationMemberRequest {
            organization_id: organization_id.to_owned(),
            user_id: user_id.to_owned(),
            role: role.into(),
            status: proto::MemberStatus::Unspecified.into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap();
}

/// Creates a user who is a collaborator of the organization.
pub async fn create_member(client: &mut Client, organization_id: &str, login: &str) -> proto::User {
    let user = create_user(client, login).await;
    add_member(
        client,
        organization_id,
        &user.id,
        proto::MemberRole::Collaborator,
    )
    .await;
    user
}

pub async fn create_team(client: &mut Client, organization_id: &str, name: &str) -> proto::Team {
    create_team_under(client, organization_id, name, "").await
}

pub async fn create_team_under(
    client: &mut Client,
    organization_id: &str,
    name: &str,
    parent_team_id: &str,
) -> proto::Team {
    client
        .create_team(proto::CreateTeamRequest {
            organization_id: organization_id.to_owned(),
            name: name.to_owned(),
            parent_team_id: parent_team_id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap()
}

pub async fn add_team_member(client: &mut Client, team_id: &str, user_id: &str) {
    client
        .add_team_members(proto::AddTeamMembersRequest {
            team_id: team_id.to_owned(),
            members: vec![proto::NewTeamMember {
                user_id: user_id.to_owned(),
                expire_time: None,
            }],
            idempotency_key: String::new(),
        })
        .await
        .unwrap();
}

pub fn new_resource(resource_type: &str, external_id: &str) -> proto::NewResource {
    proto::NewResource {
        resource_type: resource_type.to_owned(),
        external_id: external_id.to_owned(),
        ..Default::default()
    }
}

pub async fn create_resource(
    client: &mut Client,
    organization_id: &str,
    resource: proto::NewResource,
) -> proto::Resource {
    client
        .create_resource(proto::CreateResourceRequest {
            organization_id: organization_id.to_owned(),
            resource: Some(resource),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap()
}

pub fn team_subject(team_id: &str) -> Option<proto::Subject> {
    Some(proto::Subject {
        kind: Some(proto::subject::Kind::TeamId(team_id.to_owned())),
    })
}

pub fn user_subject(user_id: &str) -> Option<proto::Subject> {
    Some(proto::Subject {
        kind: Some(proto::subject::Kind::UserId(user_id.to_owned())),
    })
}

pub fn field_mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

/// Returns a timestamp `offset` from now.
pub fn timestamp_in(offset: Duration) -> Option<prost_types::Timestamp> {
    let time = chrono::Utc::now() + chrono::Duration::from_std(offset).unwrap();
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap(),
    })
}
