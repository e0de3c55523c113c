//! Real directory and sidecar servers for the CLI tests, on 127.0.0.1 with
//! ports chosen by the system, on SQLite and, when
//! `WORKTEAMS_TEST_DATABASE_URL` is set, on PostgreSQL.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use workteams_cli::commands::up::{RunningServices, start_services};
use workteams_auth::DevCredentials;
use workteams_cli::connect::{AuthzClient, CallerToken, DirectoryClient, Endpoints, find_token};
use workteams_cli::error::CliError;
use workteams_cli::sync::{Source, SyncOptions, SyncReport, run_sync};
use workteams_directory::{Authentication, DirectoryConfig};
use workteams_proto::authz::v1 as authz;
use workteams_storage::testing::TestDatabase;

/// Both services on one test database, and a client data folder.
pub struct Services {
    pub endpoints: Endpoints,
    pub backend: String,
    running: Option<RunningServices>,
    database: Option<TestDatabase>,
    _folder: tempfile::TempDir,
}

/// Starts one set of services per test database (SQLite, then PostgreSQL if set).
pub async fn all_services() -> Vec<Services> {
    let mut services = Vec::new();
    for database in TestDatabase::all().await {
        services.push(Services::start(database).await);
    }
    services
}

impl Services {
    pub async fn start(database: TestDatabase) -> Self {
        let folder = tempfile::tempdir().expect("temporary folder");
        let client_dir = folder.path().join("client");
        // The development credentials `workteams up` makes, in the client's
        // data folder, where the commands look for the token.
        let credentials = DevCredentials::ensure(&client_dir).expect("development credentials");
        let mut config = DirectoryConfig::with_data_dir(folder.path().join("server"));
        config.database_url = database.url().to_owned();
        config.authentication = Authentication::Tokens(credentials.settings());
        let loopback = "127.0.0.1:0".parse().expect("address");
        let running = start_services(config, loopback, loopback, Some(&credentials.token_file))
            .await
            .expect("services start");

        let endpoints = Endpoints {
            directory: format!("http://{}", running.directory_address),
            authz: format!("http://{}", running.authz_address),
            timeout: Duration::from_secs(120),
            token: find_token(None, None, &client_dir).expect("development token"),
            authz_token: CallerToken::default(),
            data_dir: client_dir,
        };
        let services = Self {
            endpoints,
            backend: format!("{:?}", database.backend()),
            running: Some(running),
            database: Some(database),
            _folder: folder,
        };
        services.wait_until_ready().await;
        services
    }

    /// Waits until the sidecar has loaded its first snapshot.
    async fn wait_until_ready(&self) {
        for _ in 0..200 {
            if let Ok(mut client) = self.endpoints.authz().await
                && let Ok(status) = client
                    .get_index_status(authz::GetIndexStatusRequest {})
                    .await
                && status.into_inner().ready
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sidecar did not become ready");
    }

    pub async fn directory(&self) -> DirectoryClient {
        self.endpoints.directory().await.expect("directory client")
    }

    pub async fn authz(&self) -> AuthzClient {
        self.endpoints.authz().await.expect("sidecar client")
    }

    /// Runs a sync and returns its report with what it printed.
    pub async fn sync(
        &self,
        source: Source,
        options: SyncOptions,
    ) -> (Result<SyncReport, CliError>, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let result = run_sync(&self.endpoints, &source, options, &mut out, &mut err).await;
        (
            result,
            String::from_utf8(out).expect("UTF-8 output"),
            String::from_utf8(err).expect("UTF-8 warnings"),
        )
    }

    pub async fn apply(
        &self,
        path: &Path,
        options: SyncOptions,
    ) -> (Result<SyncReport, CliError>, String, String) {
        self.sync(Source::Manifest(path.to_path_buf()), options)
            .await
    }

    pub async fn import(
        &self,
        path: &Path,
        options: SyncOptions,
    ) -> (Result<SyncReport, CliError>, String, String) {
        self.sync(Source::Peribolos(path.to_path_buf()), options)
            .await
    }

    /// Stops both services and drops the test database.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("services stop cleanly");
        }
        if let Some(database) = self.database.take() {
            database.cleanup().await;
        }
    }
}

/// Returns the repository's `examples` folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Writes `text` to `relative` under `root`, creating folders.
pub fn write(root: &Path, relative: &str, text: &str) -> PathBuf {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent folder")).expect("create folder");
    std::fs::write(&path, text).expect("write file");
    path
}
