//! The directory's database pool gauges, read from a real store on each
//! scrape.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use workteams_directory::pool_metrics::PoolCollector;
use workteams_storage::StoreConfig;
use workteams_storage::testing::TestDatabase;
use workteams_telemetry::Metrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_gauges_follow_the_store() {
    for database in TestDatabase::all().await {
        let store = database.store().await;
        let metrics = Metrics::new().unwrap();
        metrics
            .registry()
            .register(Box::new(PoolCollector::new(store.clone()).unwrap()))
            .unwrap();

        let usage = store.pool_usage();
        let text = metrics.render().unwrap();
        let max = StoreConfig::new(database.url().to_owned()).max_connections;

        assert!(usage.size >= 1, "{usage:?}");
        assert!(usage.idle <= usage.size, "{usage:?}");
        assert_eq!(usage.max, max);
        let expected_max = format!(r#"workteams_directory_db_connections{{state="max"}} {max}"#);
        assert!(text.lines().any(|line| line == expected_max), "{text}");
        for state in ["open", "idle", "in_use"] {
            let prefix = format!(r#"workteams_directory_db_connections{{state="{state}"}} "#);
            assert!(text.lines().any(|line| line.starts_with(&prefix)), "{state}: {text}");
        }

        database.cleanup().await;
    }
}
