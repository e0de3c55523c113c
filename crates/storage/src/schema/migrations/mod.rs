//! Schema migrations, applied in order by [`Store::connect`](crate::Store::connect).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, RuntimeErr, Statement};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait};

/// Length of the random secret that signs page tokens.
const PAGE_TOKEN_SECRET_BYTES: usize = 32;

/// Key of the PostgreSQL advisory lock held while migrating: the ASCII
/// bytes of "wtmigrat". Other applications sharing the database must not
/// use it.
const MIGRATION_LOCK_KEY: i64 = 0x7774_6d69_6772_6174;

/// Applies pending migrations. On PostgreSQL, replicas starting together
/// take turns under a session advisory lock: the first applies the
/// migrations and the others, once they get the lock, find none pending.
/// On SQLite it takes no lock, because a SQLite database serves a single
/// directory process.
pub(crate) async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Migrator::up(db, None).await;
    }

    // The lock belongs to a session, so it is taken and released on one
    // connection outside the pool the migrations run on. Should this
    // process die while holding it, PostgreSQL releases it with the session.
    let options = db.get_postgres_connection_pool().connect_options();
    let mut lock_connection = options.connect().await.map_err(connection_error)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut lock_connection)
        .await
        .map_err(connection_error)?;
    tracing::debug!("migration lock taken");

    let migrated = Migrator::up(db, None).await;

    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut lock_connection)
        .await;
    if let Err(error) = unlocked {
        // Closing the session below releases the lock as well.
        tracing::warn!(%error, "releasing the migration lock failed; closing its connection");
    }
    if let Err(error) = lock_connection.close().await {
        tracing::warn!(%error, "closing the migration lock connection failed");
    }
    migrated
}

fn connection_error(error: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error)))
}

pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(InitialSchema), Box::new(SecuritySchema)]
    }
}

/// Creates every table, the installation's epoch and secret, and the change
/// head at revision 0.
struct InitialSchema;

impl MigrationName for InitialSchema {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for InitialSchema {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();

        for statement in sql_statements(include_str!("m0001_initial.sql")) {
            connection.execute_unprepared(&statement).await?;
        }

        let epoch = uuid::Uuid::now_v7().to_string();
        let mut secret = [0_u8; PAGE_TOKEN_SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let now = chrono::Utc::now().timestamp_micros();
        let backend = connection.get_database_backend();
        connection
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO installation (id, epoch, page_token_secret, create_time_us) VALUES (1, $1, $2, $3)",
                [epoch.into(), STANDARD.encode(secret).into(), now.into()],
            ))
            .await?;
        connection
            .execute_unprepared("INSERT INTO change_head (id, revision, purged_through) VALUES (1, 0, 0)")
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Adds the audit events and the organization role column of teams.
struct SecuritySchema;

impl MigrationName for SecuritySchema {
    fn name(&self) -> &str {
        "m0002_security"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SecuritySchema {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        for statement in sql_statements(include_str!("m0002_security.sql")) {
            connection.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Splits a script into statements, dropping `--` comment lines.
fn sql_statements(script: &str) -> Vec<String> {
    let without_comments: String = script
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}
