//! The published index and what the request handlers know about its
//! freshness.
//!
//! The follower is the only writer. It builds a new [`Index`] version off to
//! the side and swaps it in with one atomic pointer store, so a reader sees
//! either a whole change batch or none of it, and never waits for the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use uuid::Uuid;
use workteams_domain::{ConsistencyToken, Revision};
use workteams_evaluation::Index;

/// One published version of the index.
#[derive(Debug, Clone)]
pub struct PublishedIndex {
    pub index: Index,
    /// The epoch of the directory installation the index was loaded from.
    pub epoch: Uuid,
}

impl PublishedIndex {
    pub fn revision(&self) -> Revision {
        self.index.revision()
    }

    pub fn token(&self) -> ConsistencyToken {
        ConsistencyToken::new(self.epoch, self.revision())
    }
}

/// Marks "never" in the atomic instant fields.
const NEVER: u64 = u64::MAX;

/// The index shared between the follower and the request handlers.
#[derive(Debug)]
pub struct SharedIndex {
    published: ArcSwapOption<PublishedIndex>,
    /// The position of the published index; requests that need a minimum
    /// revision wait on it.
    position: watch::Sender<Option<ConsistencyToken>>,
    /// Reference point of the atomic instants below.
    started: Instant,
    /// When the index was last confirmed up to date with the directory's
    /// head, in nanoseconds since `started`.
    last_fresh_nanos: AtomicU64,
    /// Whether a change stream from the directory is open.
    connected: AtomicBool,
    /// The directory's head revision as last reported.
    head_revision: AtomicI64,
}

impl Default for SharedIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedIndex {
    pub fn new() -> Self {
        Self {
            published: ArcSwapOption::empty(),
            position: watch::Sender::new(None),
            started: Instant::now(),
            last_fresh_nanos: AtomicU64::new(NEVER),
            connected: AtomicBool::new(false),
            head_revision: AtomicI64::new(0),
        }
    }

    /// Returns the current index, or `None` before the first snapshot is loaded.
    pub fn load(&self) -> Option<Arc<PublishedIndex>> {
        self.published.load_full()
    }

    /// Makes `index` the version every new request reads.
    pub fn publish(&self, index: Arc<PublishedIndex>) {
        let token = index.token();
        self.published.store(Some(index));
        self.position.send_replace(Some(token));
    }

    /// Watches the position of the published index.
    pub fn subscribe(&self) -> watch::Receiver<Option<ConsistencyToken>> {
        self.position.subscribe()
    }

    /// Records that the index was up to date with the directory at `now`.
    pub fn mark_fresh(&self, now: Instant) {
        let nanos = now.saturating_duration_since(self.started).as_nanos();
        self.last_fresh_nanos
            .store(u64::try_from(nanos).unwrap_or(NEVER - 1), Ordering::Release);
    }

    /// Time since the index was last confirmed up to date, or `None` if it
    /// never was.
    pub fn staleness(&self, now: Instant) -> Option<Duration> {
        let nanos = self.last_fresh_nanos.load(Ordering::Acquire);
        if nanos == NEVER {
            return None;
        }
        let fresh_at = self.started + Duration::from_nanos(nanos);
        Some(now.saturating_duration_since(fresh_at))
    }

    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub fn set_head_revision(&self, revision: Revision) {
        self.head_revision.store(revision.0, Ordering::Release);
    }

    pub fn head_revision(&self) -> Revision {
        Revision(self.head_revision.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workteams_domain::ResourceTypeRegistry;

    #[test]
    fn staleness_unknown_until_fresh() {
        let shared = SharedIndex::new();
        assert_eq!(shared.staleness(Instant::now()), None);
    }

    #[test]
    fn staleness_counts_from_mark() {
        let shared = SharedIndex::new();
        let fresh_at = Instant::now();
        shared.mark_fresh(fresh_at);
        let staleness = shared.staleness(fresh_at + Duration::from_secs(3));
        assert_eq!(staleness, Some(Duration::from_secs(3)));
    }

    #[test]
    fn publish_moves_position() {
        let shared = SharedIndex::new();
        let receiver = shared.subscribe();
        let mut index = Index::new(ResourceTypeRegistry::default());
        index.set_revision(Revision(7));
        let epoch = Uuid::now_v7();

        shared.publish(Arc::new(PublishedIndex { index, epoch }));

        let position = *receiver.borrow();
        assert_eq!(position, Some(ConsistencyToken::new(epoch, Revision(7))));
        assert!(shared.load().is_some());
    }
}
