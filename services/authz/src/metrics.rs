//! The sidecar's Prometheus metrics: decisions by resource type, and the
//! state of the index and its follower, read from the shared index when
//! the endpoint is scraped.
//!
//! Labels never carry user or resource ids, so their number stays bounded
//! by the resource types.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use workteams_telemetry::prometheus::core::{Collector, Desc};
use workteams_telemetry::prometheus::proto::MetricFamily;
use workteams_telemetry::prometheus::{
    self, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::state::SharedIndex;

/// Label value of checks whose resource is unknown, so no type is known.
pub const UNKNOWN_RESOURCE_TYPE: &str = "unknown";

/// Upper bounds of the snapshot load buckets, in seconds.
const SNAPSHOT_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The follower states, each exported as a 0 or 1 gauge.
const FOLLOWER_STATES: [&str; 4] = ["up_to_date", "catching_up", "resyncing", "disconnected"];

/// Index contents exported by `kind`.
const ENTITY_KINDS: [&str; 7] = [
    "organizations",
    "users",
    "members",
    "teams",
    "memberships",
    "resources",
    "grants",
];

/// The metrics the request handlers and the follower record. Cloning is
/// cheap; clones record into the same families.
#[derive(Debug, Clone)]
pub struct SidecarMetrics {
    checks: IntCounterVec,
    snapshot_load_seconds: Histogram,
    resyncing: Arc<AtomicBool>,
    allowed: Arc<AtomicU64>,
    denied: Arc<AtomicU64>,
}

impl SidecarMetrics {
    /// Creates the families and registers them, with the index gauges that
    /// read `shared`, in `registry`.
    pub fn register(registry: &Registry, shared: Arc<SharedIndex>) -> Result<Self, prometheus::Error> {
        let checks = IntCounterVec::new(
            Opts::new(
                "workteams_authz_checks_total",
                "Access checks decided, by resource type and decision (allow or deny).",
            ),
            &["resource_type", "decision"],
        )?;
        let snapshot_load_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "workteams_authz_snapshot_load_seconds",
                "Time to download a directory snapshot and build the index from it, in seconds.",
            )
            .buckets(SNAPSHOT_BUCKETS.to_vec()),
        )?;
        let resyncing = Arc::new(AtomicBool::new(true));

        registry.register(Box::new(checks.clone()))?;
        registry.register(Box::new(snapshot_load_seconds.clone()))?;
        registry.register(Box::new(IndexCollector::new(shared, Arc::clone(&resyncing))?))?;

        Ok(Self {
            checks,
            snapshot_load_seconds,
            resyncing,
            allowed: Arc::default(),
            denied: Arc::default(),
        })
    }

    /// Counts one decision. `resource_type` must be a defined type's name
    /// or [`UNKNOWN_RESOURCE_TYPE`].
    pub fn record_decision(&self, resource_type: &str, allowed: bool) {
        let (decision, total) = if allowed {
            ("allow", &self.allowed)
        } else {
            ("deny", &self.denied)
        };
        self.checks.with_label_values(&[resource_type, decision]).inc();
        total.fetch_add(1, Ordering::Relaxed);
    }

    /// Checks allowed since the start.
    pub fn allowed(&self) -> u64 {
        self.allowed.load(Ordering::Relaxed)
    }

    /// Checks denied since the start.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Marks the follower as loading a snapshot.
    pub fn snapshot_started(&self) {
        self.resyncing.store(true, Ordering::Release);
    }

    /// Records a snapshot loaded into the index.
    pub fn snapshot_loaded(&self, elapsed: Duration) {
        self.snapshot_load_seconds.observe(elapsed.as_secs_f64());
        self.resyncing.store(false, Ordering::Release);
    }
}

/// Gauges of the published index and the follower, set from the shared
/// index at each scrape so they never lag behind it.
struct IndexCollector {
    shared: Arc<SharedIndex>,
    resyncing: Arc<AtomicBool>,
    applied_revision: IntGauge,
    head_revision: IntGauge,
    revision_lag: IntGauge,
    ready: IntGauge,
    staleness_seconds: Gauge,
    entities: IntGaugeVec,
    follower_state: IntGaugeVec,
    descriptions: Vec<Desc>,
}

impl IndexCollector {
    fn new(shared: Arc<SharedIndex>, resyncing: Arc<AtomicBool>) -> Result<Self, prometheus::Error> {
        let applied_revision = IntGauge::new(
            "workteams_authz_index_revision",
            "Directory revision the published index has applied.",
        )?;
        let head_revision = IntGauge::new(
            "workteams_authz_directory_head_revision",
            "Directory head revision as last reported by the change stream.",
        )?;
        let revision_lag = IntGauge::new(
            "workteams_authz_revision_lag",
            "Revisions the index is behind the directory's head (head minus applied).",
        )?;
        let ready = IntGauge::new(
            "workteams_authz_index_ready",
            "1 once the first snapshot is loaded and checks are answered, else 0.",
        )?;
        let staleness_seconds = Gauge::new(
            "workteams_authz_index_staleness_seconds",
            "Seconds since the index was last confirmed up to date with the directory; -1 before the first time.",
        )?;
        let entities = IntGaugeVec::new(
            Opts::new("workteams_authz_index_entities", "Entities in the published index, by kind."),
            &["kind"],
        )?;
        let follower_state = IntGaugeVec::new(
            Opts::new(
                "workteams_authz_follower_state",
                "1 for the follower's current state (up_to_date, catching_up, resyncing, disconnected), 0 for the others.",
            ),
            &["state"],
        )?;

        let collectors: [&dyn Collector; 7] = [
            &applied_revision,
            &head_revision,
            &revision_lag,
            &ready,
            &staleness_seconds,
            &entities,
            &follower_state,
        ];
        let descriptions = collectors
            .iter()
            .flat_map(|collector| collector.desc().into_iter().cloned())
            .collect();

        Ok(Self {
            shared,
            resyncing,
            applied_revision,
            head_revision,
            revision_lag,
            ready,
            staleness_seconds,
            entities,
            follower_state,
            descriptions,
        })
    }

    fn update(&self) {
        let published = self.shared.load();
        let applied = published.as_ref().map_or(0, |published| published.revision().0);
        let head = self.shared.head_revision().0;
        let lag = head.saturating_sub(applied).max(0);

        self.applied_revision.set(applied);
        self.head_revision.set(head);
        self.revision_lag.set(lag);
        self.ready.set(i64::from(published.is_some()));
        let staleness = self.shared.staleness(Instant::now());
        self.staleness_seconds.set(staleness.map_or(-1.0, |staleness| staleness.as_secs_f64()));

        let stats = published.map(|published| published.index.stats()).unwrap_or_default();
        let counts = [
            stats.organizations,
            stats.users,
            stats.members,
            stats.teams,
            stats.memberships,
            stats.resources,
            stats.grants,
        ];
        for (kind, count) in ENTITY_KINDS.into_iter().zip(counts) {
            self.entities
                .with_label_values(&[kind])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }

        let state = if self.resyncing.load(Ordering::Acquire) {
            "resyncing"
        } else if !self.shared.is_connected() {
            "disconnected"
        } else if lag > 0 {
            "catching_up"
        } else {
            "up_to_date"
        };
        for candidate in FOLLOWER_STATES {
            self.follower_state
                .with_label_values(&[candidate])
                .set(i64::from(candidate == state));
        }
    }
}

impl Collector for IndexCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descriptions.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.update();

        let mut families = Vec::new();
        families.extend(self.applied_revision.collect());
        families.extend(self.head_revision.collect());
        families.extend(self.revision_lag.collect());
        families.extend(self.ready.collect());
        families.extend(self.staleness_seconds.collect());
        families.extend(self.entities.collect());
        families.extend(self.follower_state.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use workteams_domain::{ResourceTypeRegistry, Revision};
    use workteams_evaluation::Index;

    use super::*;
    use crate::state::PublishedIndex;

    fn render(registry: &Registry) -> String {
        use prometheus::Encoder as _;

        let mut buffer = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buffer)
            .unwrap();
        String::from_utf8(buffer).unwrap()
    }

    #[test]
    fn lag_and_state_follow_the_index() {
        let registry = Registry::new();
        let shared = Arc::new(SharedIndex::new());
        let metrics = SidecarMetrics::register(&registry, Arc::clone(&shared)).unwrap();

        let before = render(&registry);
        assert!(before.contains("workteams_authz_index_ready 0"), "{before}");
        assert!(before.contains(r#"workteams_authz_follower_state{state="resyncing"} 1"#), "{before}");

        let mut index = Index::new(ResourceTypeRegistry::default());
        index.set_revision(Revision(5));
        shared.publish(Arc::new(PublishedIndex {
            index,
            epoch: uuid::Uuid::now_v7(),
        }));
        shared.set_head_revision(Revision(8));
        shared.set_connected(true);
        metrics.snapshot_loaded(Duration::from_millis(30));

        let after = render(&registry);
        assert!(after.contains("workteams_authz_revision_lag 3"), "{after}");
        assert!(after.contains(r#"workteams_authz_follower_state{state="catching_up"} 1"#), "{after}");
        assert!(after.contains("workteams_authz_snapshot_load_seconds_count 1"), "{after}");
    }

    #[test]
    fn decisions_counted_by_type() {
        let registry = Registry::new();
        let metrics = SidecarMetrics::register(&registry, Arc::new(SharedIndex::new())).unwrap();

        metrics.record_decision("mail.mailbox", true);
        metrics.record_decision("mail.mailbox", false);
        metrics.record_decision(UNKNOWN_RESOURCE_TYPE, false);

        let text = render(&registry);
        assert!(
            text.contains(r#"workteams_authz_checks_total{decision="deny",resource_type="mail.mailbox"} 1"#),
            "{text}"
        );
        assert_eq!((metrics.allowed(), metrics.denied()), (1, 2));
    }
}
