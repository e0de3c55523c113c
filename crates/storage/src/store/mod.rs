//! The [`Store`]: connection, migrations, and the write transaction that
//! every mutation goes through.

pub(crate) mod audit;
pub mod changes;
pub(crate) mod grants;
pub(crate) mod invitations;
mod lookup;
pub(crate) mod members;
pub(crate) mod memberships;
mod organizations;
mod ownership;
mod resource_types;
mod resources;
mod roles;
mod rows;
pub mod snapshot;
mod teams;
mod time;
pub(crate) mod users;
mod write;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait, Statement};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use workteams_domain::{ConsistencyToken, ResourceTypeDef, ResourceTypeRegistry, Revision, ValidationError};

use crate::error::StoreError;
use crate::page::PageCodec;
use crate::schema::migrations;
use crate::schema::tables::resource_types as resource_type_rows;

pub(crate) use write::Begun;

/// The PostgreSQL channel on which every commit announces its revision.
pub(crate) const CHANGES_CHANNEL: &str = "workteams_changes";

/// How long a SQLite connection waits for another process's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(ValidationError::new(
                "database_url",
                url,
                "unsupported database; use sqlite://<path>?mode=rwc or postgres://user@host:port/database",
            )
            .into())
        }
    }
}

/// How to connect and how long to keep things.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://<path>?mode=rwc` or `postgres://user@host:port/database`.
    pub url: String,
    /// How long an idempotency record replays its result (default 24 hours).
    pub idempotency_retention: Duration,
    /// How often a watch stream polls the head when no notification arrives
    /// (default 1 second).
    pub watch_poll_interval: Duration,
    /// Maximum pooled connections (default 10). SQLite writers are
    /// serialized in-process whatever this is.
    pub max_connections: u32,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            idempotency_retention: Duration::from_secs(24 * 60 * 60),
            watch_poll_interval: Duration::from_secs(1),
            max_connections: 10,
        }
    }

    /// The default SQLite database in `data_dir`.
    pub fn sqlite_in(data_dir: &std::path::Path) -> Self {
        Self::new(format!("sqlite://{}/directory.db?mode=rwc", data_dir.display()))
    }
}

/// The directory's persistence. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

/// Connections of the database pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    /// The pool's configured maximum.
    pub max: u32,
}

struct StoreInner {
    config: StoreConfig,
    backend: Backend,
    db: DatabaseConnection,
    epoch: Uuid,
    pages: PageCodec,
    /// Serializes write transactions on SQLite, whose single writer lock
    /// would otherwise make concurrent writers fail with SQLITE_BUSY.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// The latest revision known to be committed.
    head: watch::Sender<Revision>,
    resource_types: std::sync::RwLock<ResourceTypeRegistry>,
    /// Receives other replicas' commit notifications (PostgreSQL only).
    listener: Option<JoinHandle<()>>,
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("epoch", &self.inner.epoch)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, runs pending migrations and loads the stored resource
    /// types. On PostgreSQL it also starts listening for other replicas'
    /// commits.
    pub async fn connect(config: StoreConfig) -> Result<Self, StoreError> {
        let backend = Backend::of_url(&config.url)?;

        let mut options = ConnectOptions::new(config.url.clone());
        options.max_connections(config.max_connections).sqlx_logging(false);
        if backend == Backend::Sqlite {
            options.map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
            });
        }
        let db = Database::connect(options).await?;

        migrations::migrate(&db).await?;

        let (epoch, secret) = read_installation(&db).await?;
        let pages = PageCodec::new(&secret)?;
        let head_revision = read_head(&db).await?;
        let (head, _) = watch::channel(head_revision);
        let registry = read_resource_types(&db).await?;

        let listener = match backend {
            Backend::Postgres => Some(changes::spawn_listener(db.get_postgres_connection_pool().clone(), head.clone())),
            Backend::Sqlite => None,
        };

        tracing::info!(?backend, %epoch, revision = head_revision.0, "directory store connected");
        Ok(Self {
            inner: Arc::new(StoreInner {
                sqlite_writer: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
                config,
                backend,
                db,
                epoch,
                pages,
                head,
                resource_types: std::sync::RwLock::new(registry),
                listener,
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The database's epoch, chosen when it was first migrated.
    pub fn epoch(&self) -> Uuid {
        self.inner.epoch
    }

    /// A token for `revision` of this database.
    pub fn token(&self, revision: Revision) -> ConsistencyToken {
        ConsistencyToken::new(self.inner.epoch, revision)
    }

    /// Reads the head revision from the database.
    pub async fn current_token(&self) -> Result<ConsistencyToken, StoreError> {
        let revision = read_head(&self.inner.db).await?;
        self.observe_head(revision);
        Ok(self.token(revision))
    }

    /// The latest head revision this process has seen committed (by itself,
    /// through a PostgreSQL notification or by polling); for heartbeats.
    pub fn subscribe_head(&self) -> watch::Receiver<Revision> {
        self.inner.head.subscribe()
    }

    /// Deletes idempotency records older than the configured retention and
    /// returns how many it deleted.
    pub async fn purge_idempotency_records(&self) -> Result<u64, StoreError> {
        let retention = chrono::Duration::from_std(self.inner.config.idempotency_retention)
            .unwrap_or(chrono::Duration::MAX);
        let cutoff = time::now().checked_sub_signed(retention).map_or(i64::MIN, |time| time.timestamp_micros());
        let result = self
            .inner
            .db
            .execute_raw(Statement::from_sql_and_values(
                self.inner.db.get_database_backend(),
                "DELETE FROM idempotency_records WHERE create_time_us < $1",
                [cutoff.into()],
            ))
            .await?;
        Ok(result.rows_affected())
    }

    /// Returns how many database connections are open and idle.
    pub fn pool_usage(&self) -> PoolUsage {
        let (size, idle) = match self.inner.backend {
            Backend::Sqlite => {
                let pool = self.inner.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Backend::Postgres => {
                let pool = self.inner.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        PoolUsage {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.inner.config.max_connections,
        }
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub(crate) fn pages(&self) -> &PageCodec {
        &self.inner.pages
    }

    pub(crate) fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Records that `revision` is committed, waking watchers when it is
    /// newer than what they saw.
    pub(crate) fn observe_head(&self, revision: Revision) {
        changes::advance_head(&self.inner.head, revision);
    }

    pub(crate) fn registry(&self) -> ResourceTypeRegistry {
        match self.inner.resource_types.read() {
            Ok(registry) => registry.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn replace_registry(&self, registry: ResourceTypeRegistry) {
        match self.inner.resource_types.write() {
            Ok(mut current) => *current = registry,
            Err(poisoned) => *poisoned.into_inner() = registry,
        }
    }
}

async fn read_installation(db: &DatabaseConnection) -> Result<(Uuid, Vec<u8>), StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT epoch, page_token_secret FROM installation WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| StoreError::corrupt("the installation row is missing"))?;
    let epoch: String = row.try_get("", "epoch")?;
    let secret: String = row.try_get("", "page_token_secret")?;
    let epoch = Uuid::parse_str(&epoch).map_err(StoreError::corrupt)?;
    let secret = STANDARD.decode(secret).map_err(StoreError::corrupt)?;
    Ok((epoch, secret))
}

pub(crate) async fn read_head(db: &impl ConnectionTrait) -> Result<Revision, StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT revision FROM change_head WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| StoreError::corrupt("the change head row is missing"))?;
    Ok(Revision(row.try_get("", "revision")?))
}

async fn read_resource_types(db: &DatabaseConnection) -> Result<ResourceTypeRegistry, StoreError> {
    let mut registry = ResourceTypeRegistry::default();
    for row in resource_type_rows::Entity::find().all(db).await? {
        let definition: ResourceTypeDef = serde_json::from_str(&row.definition)?;
        registry.insert(definition).map_err(StoreError::corrupt)?;
    }
    Ok(registry)
}
