//! Gauges of the database connection pool, read from the store each time
//! the metrics endpoint is scraped.

use workteams_storage::Store;
use workteams_telemetry::prometheus::core::{Collector, Desc};
use workteams_telemetry::prometheus::proto::MetricFamily;
use workteams_telemetry::prometheus::{self, IntGaugeVec, Opts};

/// Exports `workteams_directory_db_connections{state}`: `open`, `idle`,
/// `in_use` and the configured `max`.
pub struct PoolCollector {
    store: Store,
    connections: IntGaugeVec,
}

impl PoolCollector {
    pub fn new(store: Store) -> Result<Self, prometheus::Error> {
        let connections = IntGaugeVec::new(
            Opts::new(
                "workteams_directory_db_connections",
                "Database pool connections by state: open, idle, in_use, and the configured max.",
            ),
            &["state"],
        )?;
        Ok(Self { store, connections })
    }
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.connections.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let usage = self.store.pool_usage();
        let in_use = usage.size.saturating_sub(usage.idle);
        for (state, count) in [
            ("open", usage.size),
            ("idle", usage.idle),
            ("in_use", in_use),
            ("max", usage.max),
        ] {
            self.connections
                .with_label_values(&[state])
                .set(i64::from(count));
        }
        self.connections.collect()
    }
}
