//! Test databases for the storage, service and end-to-end tests.
//!
//! [`TestDatabase::all`] returns a SQLite database in a temporary directory
//! and, when the environment variable `WORKTEAMS_TEST_DATABASE_URL` names a
//! PostgreSQL server (for example
//! `postgres://postgres@127.0.0.1:5432/postgres`), a fresh database
//! `wt_<random>` created on that server. The PostgreSQL database is dropped
//! by [`TestDatabase::cleanup`], or on drop as a fallback.

use sea_orm::{ConnectionTrait, Database};

use crate::{Backend, Store, StoreConfig, StoreError};

/// The environment variable naming the PostgreSQL server for tests.
pub const DATABASE_URL_VARIABLE: &str = "WORKTEAMS_TEST_DATABASE_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    /// Keeps the SQLite directory until the test ends.
    _directory: Option<tempfile::TempDir>,
    /// Server URL and database name, for dropping a PostgreSQL database.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// SQLite, plus PostgreSQL when `WORKTEAMS_TEST_DATABASE_URL` is set.
    ///
    /// # Panics
    /// When the database cannot be created: tests cannot run without it.
    pub async fn all() -> Vec<Self> {
        let mut databases = vec![Self::sqlite()];
        if let Some(server_url) = Self::postgres_server_url() {
            match Self::postgres(&server_url).await {
                Ok(database) => databases.push(database),
                Err(error) => panic!("cannot create a PostgreSQL test database on {server_url}: {error}"),
            }
        }
        databases
    }

    /// The PostgreSQL server URL from `WORKTEAMS_TEST_DATABASE_URL`, if set.
    pub fn postgres_server_url() -> Option<String> {
        std::env::var(DATABASE_URL_VARIABLE).ok().filter(|url| !url.is_empty())
    }

    /// A SQLite database file in a new temporary directory.
    ///
    /// # Panics
    /// When no temporary directory can be created.
    pub fn sqlite() -> Self {
        let directory = match tempfile::tempdir() {
            Ok(directory) => directory,
            Err(error) => panic!("cannot create a temporary directory: {error}"),
        };
        let url = StoreConfig::sqlite_in(directory.path()).url;
        Self {
            url,
            backend: Backend::Sqlite,
            _directory: Some(directory),
            postgres: None,
        }
    }

    /// A new, empty database `wt_<random>` on the PostgreSQL server at
    /// `server_url` (a URL of any database on that server).
    pub async fn postgres(server_url: &str) -> Result<Self, StoreError> {
        let name = format!("wt_{}", uuid::Uuid::new_v4().simple());
        let server = Database::connect(server_url).await?;
        server
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        server.close().await?;

        Ok(Self {
            url: database_url(server_url, &name),
            backend: Backend::Postgres,
            _directory: None,
            postgres: Some((server_url.to_owned(), name)),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A store configuration for this database with a short poll interval.
    pub fn config(&self) -> StoreConfig {
        let mut config = StoreConfig::new(self.url.clone());
        config.watch_poll_interval = std::time::Duration::from_millis(200);
        config
    }

    /// Connects a store (running the migrations).
    ///
    /// # Panics
    /// When the store cannot connect.
    pub async fn store(&self) -> Store {
        match Store::connect(self.config()).await {
            Ok(store) => store,
            Err(error) => panic!("cannot connect to test database {}: {error}", self.url),
        }
    }

    /// Drops the PostgreSQL database; a SQLite directory goes with `self`.
    pub async fn cleanup(mut self) {
        if let Some((server_url, name)) = self.postgres.take() {
            drop_postgres_database(&server_url, &name).await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop cannot await, and may run inside a runtime: use a thread
        // with its own runtime.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(drop_postgres_database(&server_url, &name));
            }
        });
        let _ = dropper.join();
    }
}

async fn drop_postgres_database(server_url: &str, name: &str) {
    let result = async {
        let server = Database::connect(server_url).await?;
        server
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        server.close().await
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(%error, database = name, "cannot drop PostgreSQL test database");
    }
}

/// Replaces the database name of a PostgreSQL URL, keeping its parameters.
fn database_url(server_url: &str, name: &str) -> String {
    let (base, parameters) = match server_url.split_once('?') {
        Some((base, parameters)) => (base, Some(parameters)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let host_part = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match parameters {
        Some(parameters) => format!("{host_part}/{name}?{parameters}"),
        None => format!("{host_part}/{name}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_name() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "wt_1"),
            "postgres://postgres@127.0.0.1:5432/wt_1"
        );
        assert_eq!(
            database_url("postgres://u@h/postgres?sslmode=disable", "wt_1"),
            "postgres://u@h/wt_1?sslmode=disable"
        );
        assert_eq!(database_url("postgres://u@h", "wt_1"), "postgres://u@h/wt_1");
    }
}
