//! Schema migrations, applied in order by [`Store::connect`](crate::Store::connect).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sea_orm::{ConnectionTrait, DbErr, Statement};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait};

/// Length of the random secret that signs page tokens.
const PAGE_TOKEN_SECRET_BYTES: usize = 32;

pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(InitialSchema)]
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
