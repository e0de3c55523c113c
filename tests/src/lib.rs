//! End-to-end test support: runs a real directory and a real authorization
//! sidecar in the test process on 127.0.0.1, and drives them through their
//! generated gRPC clients.
//!
//! Setup failures panic with the reason, because a test cannot go on
//! without its servers.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use workteams_auth::{AuthSettings, BearerToken, KeySource, TokenClaims, mint_hs256};
use workteams_authz::AuthzConfig;
use workteams_directory::{Authentication, DirectoryConfig};
use workteams_proto::authz::v1 as authz;
use workteams_proto::authz::v1::authorization_service_client::AuthorizationServiceClient;
use workteams_proto::directory::v1 as directory;
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use workteams_storage::testing::TestDatabase;

pub use workteams_storage::testing;

/// Heartbeat interval of test directories: short, so a filtered or idle
/// sidecar confirms freshness quickly.
pub const TEST_HEARTBEAT: Duration = Duration::from_millis(200);
/// Upper bound for waits that only a broken system exceeds.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Issuer of the tokens of test directories.
pub const TEST_ISSUER: &str = "workteams-tests";
/// Audience of the tokens of test directories.
pub const TEST_AUDIENCE: &str = "workteams-directory";
/// Service account with scope `admin` that test clients call as.
pub const TEST_ADMIN_ACCOUNT: &str = "e2e-admin";
/// Service account with scope `read` that test sidecars follow the
/// directory as.
pub const TEST_SIDECAR_ACCOUNT: &str = "e2e-sidecar";
/// Lifetime of minted test tokens: longer than any test.
const TEST_TOKEN_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);

/// A directory client that sends a bearer token with every call.
pub type DirectoryClient = DirectoryServiceClient<InterceptedService<Channel, BearerToken>>;

/// The HS256 key, service accounts and sidecar token shared by every test
/// directory of this process, so a token minted once works on all of them.
pub struct TestAuth {
    secret: Vec<u8>,
    folder: PathBuf,
    /// Keeps the folder for the life of the process.
    _folder_guard: tempfile::TempDir,
}

impl TestAuth {
    /// Returns the settings every test directory verifies tokens with.
    pub fn settings(&self) -> AuthSettings {
        AuthSettings {
            keys: KeySource::SharedSecretFile(self.folder.join("secret")),
            issuer: TEST_ISSUER.to_owned(),
            audience: TEST_AUDIENCE.to_owned(),
            leeway: Duration::ZERO,
            service_accounts_file: Some(self.folder.join("service-accounts.yaml")),
        }
    }

    /// Signs a token with these claims: change them to make expired,
    /// wrong-audience or other bad tokens.
    pub fn mint(&self, claims: &TokenClaims) -> String {
        mint_hs256(&self.secret, claims).expect("sign a test token")
    }

    /// Returns valid claims for `subject` (`user:<id>`, a user id, or a
    /// service account name).
    pub fn claims(&self, subject: &str) -> TokenClaims {
        TokenClaims::new(subject, TEST_ISSUER, TEST_AUDIENCE, TEST_TOKEN_LIFETIME)
    }

    /// Returns a valid token for `subject`.
    pub fn token(&self, subject: &str) -> String {
        self.mint(&self.claims(subject))
    }

    /// Returns a valid token for the user with this id.
    pub fn user_token(&self, user_id: &str) -> String {
        self.token(&format!("user:{user_id}"))
    }

    /// Returns the file holding the sidecar's token for the directory.
    pub fn sidecar_token_file(&self) -> PathBuf {
        self.folder.join("sidecar-token")
    }
}

/// Returns the process-wide test credentials, creating them on first use.
pub fn test_auth() -> &'static TestAuth {
    static AUTH: OnceLock<TestAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let folder_guard = tempfile::tempdir().expect("temporary folder for test credentials");
        let folder = folder_guard.path().to_path_buf();
        let secret = format!("test-secret-{}", uuid::Uuid::new_v4().simple()).into_bytes();
        std::fs::write(folder.join("secret"), &secret).expect("write the test secret");
        std::fs::write(
            folder.join("service-accounts.yaml"),
            format!(
                "service_accounts:\n  - name: {TEST_ADMIN_ACCOUNT}\n    scopes: [admin]\n  - name: {TEST_SIDECAR_ACCOUNT}\n    scopes: [read]\n"
            ),
        )
        .expect("write the test service accounts");
        let auth = TestAuth {
            secret,
            folder,
            _folder_guard: folder_guard,
        };
        std::fs::write(auth.sidecar_token_file(), auth.token(TEST_SIDECAR_ACCOUNT))
            .expect("write the sidecar token");
        auth
    })
}

/// Wraps `channel` in a directory client that sends `token`.
pub fn directory_client(channel: Channel, token: &str) -> DirectoryClient {
    let token = BearerToken::new(token).expect("a token is printable ASCII");
    DirectoryServiceClient::with_interceptor(channel, token)
}

/// Sends test logs to the test harness's captured output. `RUST_LOG`
/// selects what is shown (for example `RUST_LOG=workteams_authz=debug`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A server task started in this process, stopped through its shutdown
/// channel.
struct ServerTask<E> {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), E>>>,
}

impl<E: std::fmt::Display> ServerTask<E> {
    fn spawn<F, S>(serve: S) -> Self
    where
        S: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(shutdown));
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(&mut self, what: &str) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(SETUP_TIMEOUT, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => panic!("{what} stopped with an error: {error}"),
                Ok(Err(error)) => panic!("{what} task failed: {error}"),
                Err(_) => panic!("{what} did not stop within {SETUP_TIMEOUT:?}"),
            }
        }
    }
}

impl<E> Drop for ServerTask<E> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A directory server running on a loopback port.
pub struct RunningDirectory {
    address: SocketAddr,
    database_url: String,
    server: ServerTask<workteams_directory::ServeError>,
    _data_dir: tempfile::TempDir,
}

impl RunningDirectory {
    /// Starts a directory on a free loopback port over `database_url`.
    pub async fn start(database_url: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        Self::serve_on(listener, database_url, |_| {})
    }

    /// Starts a directory on a free loopback port with settings changed by
    /// `configure`.
    pub async fn start_with(database_url: &str, configure: impl FnOnce(&mut DirectoryConfig)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        Self::serve_on(listener, database_url, configure)
    }

    /// Starts a directory on `address`, as a restarted directory does. The
    /// previous server's socket may take a moment to close, so binding is
    /// retried for a bounded time.
    pub async fn start_at(address: SocketAddr, database_url: &str) -> Self {
        Self::start_at_with(address, database_url, |_| {}).await
    }

    /// Starts a directory on `address` with settings changed by `configure`.
    pub async fn start_at_with(
        address: SocketAddr,
        database_url: &str,
        configure: impl FnOnce(&mut DirectoryConfig),
    ) -> Self {
        let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
        loop {
            match TcpListener::bind(address).await {
                Ok(listener) => return Self::serve_on(listener, database_url, configure),
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%address, %error, "address still in use; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot bind {address} again: {error}"),
            }
        }
    }

    fn serve_on(listener: TcpListener, database_url: &str, configure: impl FnOnce(&mut DirectoryConfig)) -> Self {
        let address = listener.local_addr().expect("listener address");
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = DirectoryConfig {
            listen_address: address,
            database_url: database_url.to_owned(),
            heartbeat_interval: TEST_HEARTBEAT,
            authentication: Authentication::Tokens(test_auth().settings()),
            // Tests send many calls as one admin account; the limit has its
            // own tests.
            rate_limit: None,
            ..DirectoryConfig::with_data_dir(data_dir.path().to_path_buf())
        };
        configure(&mut config);
        let server = ServerTask::spawn(move |shutdown| workteams_directory::serve(config, listener, shutdown));
        Self {
            address,
            database_url: database_url.to_owned(),
            server,
            _data_dir: data_dir,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Returns the URL a sidecar follows.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connects a client that calls as the admin service account, waiting
    /// until the server accepts connections.
    pub async fn client(&self) -> Directory {
        self.client_with_token(&test_auth().token(TEST_ADMIN_ACCOUNT)).await
    }

    /// Connects a client that sends `token` with every call.
    pub async fn client_with_token(&self, token: &str) -> Directory {
        Directory {
            client: directory_client(connect(&self.url()).await, token),
        }
    }

    /// Connects a client without credentials.
    pub async fn anonymous_client(&self) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::new(connect(&self.url()).await)
    }

    /// Stops the server and waits until it has shut down.
    pub async fn stop(mut self) {
        self.server.stop("the directory").await;
    }
}

/// An authorization sidecar running on a loopback port.
pub struct RunningSidecar {
    address: SocketAddr,
    server: ServerTask<workteams_authz::ServeError>,
}

impl RunningSidecar {
    /// Starts a sidecar that follows the directory at `directory_url`, with
    /// short reconnection delays.
    pub async fn start(directory_url: &str) -> Self {
        Self::start_with(test_sidecar_config(directory_url)).await
    }

    pub async fn start_with(config: AuthzConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("listener address");
        let server = ServerTask::spawn(move |shutdown| workteams_authz::serve(config, listener, shutdown));
        Self { address, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub async fn client(&self) -> AuthorizationServiceClient<Channel> {
        AuthorizationServiceClient::new(connect(&self.url()).await)
    }

    pub async fn channel(&self) -> Channel {
        connect(&self.url()).await
    }

    /// Waits until the sidecar has loaded its first snapshot.
    pub async fn wait_until_ready(&self) -> authz::GetIndexStatusResponse {
        let mut client = self.client().await;
        let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
        loop {
            let status = client
                .get_index_status(authz::GetIndexStatusRequest {})
                .await
                .expect("GetIndexStatus")
                .into_inner();
            if status.ready {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sidecar did not load a snapshot within {SETUP_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        self.server.stop("the sidecar").await;
    }
}

/// Sidecar settings for tests: the defaults with short reconnection delays.
pub fn test_sidecar_config(directory_url: &str) -> AuthzConfig {
    AuthzConfig {
        directory_address: directory_url.to_owned(),
        reconnect_min_backoff: Duration::from_millis(20),
        reconnect_max_backoff: Duration::from_millis(500),
        directory_token_file: Some(test_auth().sidecar_token_file()),
        ..AuthzConfig::default()
    }
}

/// Connects to a loopback server, retrying until it accepts connections.
async fn connect(url: &str) -> Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("a valid URL")
        .tcp_nodelay(true);
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(url, %error, "server not accepting yet; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("cannot connect to {url}: {error}"),
        }
    }
}

/// A directory and a sidecar that follows it, over one test database.
pub struct Stack {
    pub directory: RunningDirectory,
    pub sidecar: RunningSidecar,
    pub admin: Directory,
    pub authz: Authz,
}

impl Stack {
    /// Starts both servers and waits until the sidecar is ready.
    pub async fn start(database: &TestDatabase) -> Self {
        init_logging();
        let directory = RunningDirectory::start(database.url()).await;
        let admin = directory.client().await;
        let sidecar = RunningSidecar::start(&directory.url()).await;
        sidecar.wait_until_ready().await;
        let authz = Authz::new(sidecar.client().await);
        Self {
            directory,
            sidecar,
            admin,
            authz,
        }
    }

    pub async fn stop(self) {
        self.sidecar.stop().await;
        self.directory.stop().await;
    }
}

/// Runs `scenario` once per test database (SQLite, and PostgreSQL when
/// `WORKTEAMS_TEST_DATABASE_URL` is set), each with its own stack.
pub async fn for_each_database<F, Fut>(scenario: F)
where
    F: Fn(Stack) -> Fut,
    Fut: Future<Output = Stack>,
{
    for database in TestDatabase::all().await {
        tracing::info!(url = database.url(), "running scenario");
        let stack = Stack::start(&database).await;
        let stack = scenario(stack).await;
        stack.stop().await;
        database.cleanup().await;
    }
}

/// The directory's client with shorthands for building test fixtures.
/// Every mutation returns what it created and the consistency token of the
/// revision it made.
#[derive(Clone)]
pub struct Directory {
    pub client: DirectoryClient,
}

/// A consistency token as the directory returns it.
pub type Token = String;

impl Directory {
    pub async fn organization(&self, name: &str) -> directory::Organization {
        self.organization_with(name, None).await
    }

    pub async fn organization_with(
        &self,
        name: &str,
        settings: Option<directory::OrganizationSettings>,
    ) -> directory::Organization {
        let response = self
            .client
            .clone()
            .create_organization(directory::CreateOrganizationRequest {
                name: name.to_owned(),
                display_name: name.to_owned(),
                settings,
                ..Default::default()
            })
            .await
            .expect("CreateOrganization")
            .into_inner();
        response.organization.expect("organization in response")
    }

    pub async fn user(&self, login: &str) -> directory::User {
        self.user_with_email(login, &format!("{login}@example.com")).await
    }

    pub async fn user_with_email(&self, login: &str, email: &str) -> directory::User {
        let response = self
            .client
            .clone()
            .create_user(directory::CreateUserRequest {
                login: login.to_owned(),
                email: email.to_owned(),
                display_name: login.to_owned(),
                ..Default::default()
            })
            .await
            .expect("CreateUser")
            .into_inner();
        response.user.expect("user in response")
    }

    /// Adds `user` to `organization` as an active member with `role`.
    pub async fn member(&self, organization: &str, user: &str, role: directory::MemberRole) -> Token {
        self.client
            .clone()
            .add_organization_member(directory::AddOrganizationMemberRequest {
                organization_id: organization.to_owned(),
                user_id: user.to_owned(),
                role: role.into(),
                status: directory::MemberStatus::Active.into(),
                ..Default::default()
            })
            .await
            .expect("AddOrganizationMember")
            .into_inner()
            .consistency_token
    }

    /// Creates a user who is an active collaborator of `organization`.
    pub async fn collaborator(&self, organization: &str, login: &str) -> directory::User {
        let user = self.user(login).await;
        self.member(organization, &user.id, directory::MemberRole::Collaborator).await;
        user
    }

    pub async fn suspend(&self, organization: &str, user: &str) -> Token {
        self.client
            .clone()
            .update_organization_member(directory::UpdateOrganizationMemberRequest {
                organization_id: organization.to_owned(),
                user_id: user.to_owned(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".to_owned()],
                }),
                status: directory::MemberStatus::Suspended.into(),
                ..Default::default()
            })
            .await
            .expect("UpdateOrganizationMember")
            .into_inner()
            .consistency_token
    }

    /// Creates a team with direct members (each with an optional expiry).
    pub async fn team(
        &self,
        organization: &str,
        name: &str,
        parent: Option<&str>,
        members: &[(&str, Option<DateTime<Utc>>)],
    ) -> (directory::Team, Token) {
        let response = self
            .client
            .clone()
            .create_team(directory::CreateTeamRequest {
                organization_id: organization.to_owned(),
                name: name.to_owned(),
                parent_team_id: parent.unwrap_or_default().to_owned(),
                members: members
                    .iter()
                    .map(|(user, expiry)| directory::NewTeamMember {
                        user_id: (*user).to_owned(),
                        expire_time: expiry.map(timestamp),
                    })
                    .collect(),
                ..Default::default()
            })
            .await
            .expect("CreateTeam")
            .into_inner();
        (response.team.expect("team in response"), response.consistency_token)
    }

    pub async fn remove_team_members(&self, team: &str, users: &[&str]) -> Token {
        self.client
            .clone()
            .remove_team_members(directory::RemoveTeamMembersRequest {
                team_id: team.to_owned(),
                user_ids: users.iter().map(|user| (*user).to_owned()).collect(),
                ..Default::default()
            })
            .await
            .expect("RemoveTeamMembers")
            .into_inner()
            .consistency_token
    }

    /// Gives a team an organization role; `Unspecified` takes it away.
    pub async fn set_team_role(&self, team: &str, role: directory::MemberRole) -> Token {
        self.client
            .clone()
            .set_team_role(directory::SetTeamRoleRequest {
                team_id: team.to_owned(),
                role: role.into(),
                ..Default::default()
            })
            .await
            .expect("SetTeamRole")
            .into_inner()
            .consistency_token
    }

    pub async fn resource(
        &self,
        organization: &str,
        resource_type: &str,
        external_id: &str,
        parent: Option<&str>,
        inherits: bool,
    ) -> directory::Resource {
        let response = self
            .client
            .clone()
            .create_resource(directory::CreateResourceRequest {
                organization_id: organization.to_owned(),
                resource: Some(directory::NewResource {
                    resource_type: resource_type.to_owned(),
                    external_id: external_id.to_owned(),
                    display_name: external_id.to_owned(),
                    parent_resource_id: parent.unwrap_or_default().to_owned(),
                    parent_external_id: String::new(),
                    inherits: Some(inherits),
                }),
                ..Default::default()
            })
            .await
            .expect("CreateResource")
            .into_inner();
        response.resource.expect("resource in response")
    }

    /// Grants `permissions` on `resource` to a team or a user.
    pub async fn grant(
        &self,
        resource: &str,
        subject: GrantTo<'_>,
        permissions: &[&str],
        expire_time: Option<DateTime<Utc>>,
    ) -> Token {
        self.client
            .clone()
            .grant_access(directory::GrantAccessRequest {
                resource_id: resource.to_owned(),
                subject: Some(subject.into_proto()),
                permissions: permissions.iter().map(|name| (*name).to_owned()).collect(),
                no_access: false,
                expire_time: expire_time.map(timestamp),
                ..Default::default()
            })
            .await
            .expect("GrantAccess")
            .into_inner()
            .consistency_token
    }

    /// Gives a user an explicit "no access" on `resource`.
    pub async fn deny(&self, resource: &str, user: &str) -> Token {
        self.client
            .clone()
            .grant_access(directory::GrantAccessRequest {
                resource_id: resource.to_owned(),
                subject: Some(GrantTo::User(user).into_proto()),
                permissions: Vec::new(),
                no_access: true,
                ..Default::default()
            })
            .await
            .expect("GrantAccess with no_access")
            .into_inner()
            .consistency_token
    }

    /// Reads the directory's current head token.
    pub async fn head(&self) -> Token {
        self.client
            .clone()
            .get_revision(directory::GetRevisionRequest {})
            .await
            .expect("GetRevision")
            .into_inner()
            .consistency_token
    }
}

/// The subject of a grant.
#[derive(Debug, Clone, Copy)]
pub enum GrantTo<'a> {
    Team(&'a str),
    User(&'a str),
}

impl GrantTo<'_> {
    fn into_proto(self) -> directory::Subject {
        let kind = match self {
            Self::Team(id) => directory::subject::Kind::TeamId(id.to_owned()),
            Self::User(id) => directory::subject::Kind::UserId(id.to_owned()),
        };
        directory::Subject { kind: Some(kind) }
    }
}

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The sidecar's client with shorthands for checks.
#[derive(Clone)]
pub struct Authz {
    pub client: AuthorizationServiceClient<Channel>,
}

impl Authz {
    pub fn new(client: AuthorizationServiceClient<Channel>) -> Self {
        Self { client }
    }

    /// Checks by ids once the sidecar has reached `token`.
    pub async fn check(&self, user: &str, resource: &str, permission: &str, token: &str) -> authz::CheckAccessResponse {
        self.try_check(user_id(user), resource_id(resource), permission, fresh_as(token))
            .await
            .expect("CheckAccess")
    }

    /// Checks whether the user has the permission once the sidecar has
    /// reached `token`.
    pub async fn allowed(&self, user: &str, resource: &str, permission: &str, token: &str) -> bool {
        self.check(user, resource, permission, token).await.allowed
    }

    pub async fn try_check(
        &self,
        user: authz::UserRef,
        resource: authz::ResourceRef,
        permission: &str,
        consistency: authz::Consistency,
    ) -> Result<authz::CheckAccessResponse, tonic::Status> {
        self.client
            .clone()
            .check_access(authz::CheckAccessRequest {
                user: Some(user),
                resource: Some(resource),
                permission: permission.to_owned(),
                consistency: Some(consistency),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Collects every page of a listing.
    pub async fn list_all(
        &self,
        request: authz::ListEffectiveAccessRequest,
    ) -> Vec<authz::AccessEntry> {
        let mut entries = Vec::new();
        let mut page_token = String::new();
        for _ in 0..10_000 {
            let response = self
                .client
                .clone()
                .list_effective_access(authz::ListEffectiveAccessRequest {
                    page_token: page_token.clone(),
                    ..request.clone()
                })
                .await
                .expect("ListEffectiveAccess")
                .into_inner();
            entries.extend(response.entries);
            if response.next_page_token.is_empty() {
                return entries;
            }
            page_token = response.next_page_token;
        }
        panic!("the listing did not end after 10,000 pages");
    }
}

pub fn user_id(id: &str) -> authz::UserRef {
    authz::UserRef {
        kind: Some(authz::user_ref::Kind::Id(id.to_owned())),
    }
}

pub fn user_login(login: &str) -> authz::UserRef {
    authz::UserRef {
        kind: Some(authz::user_ref::Kind::Login(login.to_owned())),
    }
}

pub fn user_email(email: &str) -> authz::UserRef {
    authz::UserRef {
        kind: Some(authz::user_ref::Kind::Email(email.to_owned())),
    }
}

pub fn resource_id(id: &str) -> authz::ResourceRef {
    authz::ResourceRef {
        kind: Some(authz::resource_ref::Kind::Id(id.to_owned())),
    }
}

/// Names a resource by organization name, type and external id.
pub fn resource_key(organization_name: &str, resource_type: &str, external_id: &str) -> authz::ResourceRef {
    authz::ResourceRef {
        kind: Some(authz::resource_ref::Kind::Key(authz::ResourceKey {
            organization: Some(authz::OrganizationRef {
                kind: Some(authz::organization_ref::Kind::Name(organization_name.to_owned())),
            }),
            resource_type: resource_type.to_owned(),
            external_id: external_id.to_owned(),
        })),
    }
}

pub fn fresh_as(token: &str) -> authz::Consistency {
    authz::Consistency {
        requirement: Some(authz::consistency::Requirement::AtLeastAsFresh(token.to_owned())),
    }
}

pub fn fully_consistent() -> authz::Consistency {
    authz::Consistency {
        requirement: Some(authz::consistency::Requirement::FullyConsistent(true)),
    }
}

pub fn minimize_latency() -> authz::Consistency {
    authz::Consistency {
        requirement: Some(authz::consistency::Requirement::MinimizeLatency(true)),
    }
}
