//! Migrations: several stores starting on one database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::future::join_all;
use sea_orm::{ConnectionTrait, Database, Statement};
use workteams_storage::testing::TestDatabase;
use workteams_storage::{Store, StoreConfig};

/// Stores that start together on one fresh PostgreSQL database.
const REPLICAS: usize = 4;

async fn count_rows(url: &str, table: &str) -> i64 {
    let db = Database::connect(url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS count FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    let count = row.try_get("", "count").unwrap();
    db.close().await.unwrap();
    count
}

#[tokio::test]
async fn replicas_migrate_concurrently() {
    let Some(server_url) = TestDatabase::postgres_server_url() else {
        eprintln!("skipped: set WORKTEAMS_TEST_DATABASE_URL to run this test on PostgreSQL");
        return;
    };
    for round in 0..3 {
        let database = TestDatabase::postgres(&server_url).await.unwrap();
        let config = StoreConfig::new(database.url());

        let connected = join_all((0..REPLICAS).map(|_| Store::connect(config.clone()))).await;

        let stores: Vec<Store> = connected
            .into_iter()
            .enumerate()
            .map(|(replica, store)| store.unwrap_or_else(|error| panic!("round {round}, replica {replica}: {error}")))
            .collect();
        let epoch = stores[0].epoch();
        assert!(stores.iter().all(|store| store.epoch() == epoch));
        assert_eq!(count_rows(database.url(), "seaql_migrations").await, 2);
        assert_eq!(count_rows(database.url(), "installation").await, 1);
        drop(stores);
        database.cleanup().await;
    }
}

#[tokio::test]
async fn reconnect_keeps_installation() {
    for database in TestDatabase::all().await {
        let first = database.store().await;
        let epoch = first.epoch();
        drop(first);

        let second = database.store().await;

        assert_eq!(second.epoch(), epoch);
        assert_eq!(count_rows(database.url(), "seaql_migrations").await, 2);
        drop(second);
        database.cleanup().await;
    }
}
