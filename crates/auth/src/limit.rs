//! Per-caller rate limiting and rate-limited logging of rejected
//! credentials, both token buckets from `governor`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use workteams_domain::Caller;

use crate::error::AuthError;

/// Bucket key of calls made without authentication (insecure mode).
const UNAUTHENTICATED_KEY: &str = "unauthenticated";
/// Number of caller buckets above which idle full buckets are dropped.
const MAX_IDLE_BUCKETS: usize = 10_000;
/// Denials logged per second; the rest are counted and reported with the
/// next logged one.
const DENIAL_LOGS_PER_SECOND: u32 = 5;
/// Denials logged in a burst before the per-second rate applies.
const DENIAL_LOG_BURST: u32 = 20;

/// A token bucket per caller: `per_second` calls on average, up to `burst`
/// at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// Limits each caller (user, service account, or all unauthenticated calls
/// together) to its own token bucket.
#[derive(Debug)]
pub struct CallerRateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl CallerRateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
        }
    }

    /// Takes one call from the caller's bucket, or returns how long the
    /// caller should wait before the next call can pass.
    pub fn check(&self, caller: &Caller) -> Result<(), Duration> {
        let key = caller
            .actor_name()
            .unwrap_or_else(|| UNAUTHENTICATED_KEY.to_owned());
        if self.limiter.len() > MAX_IDLE_BUCKETS {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Logs rejected credentials at `info`, at most a few lines per second; the
/// lines it drops are counted in the next line it writes.
#[derive(Debug)]
pub struct DenialLog {
    limiter: DefaultDirectRateLimiter,
    suppressed: AtomicU64,
}

impl Default for DenialLog {
    fn default() -> Self {
        let per_second = NonZeroU32::new(DENIAL_LOGS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(DENIAL_LOG_BURST).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            limiter: DefaultDirectRateLimiter::direct(quota),
            suppressed: AtomicU64::new(0),
        }
    }
}

impl DenialLog {
    /// Records one rejected call of `method`. Only the reason is logged,
    /// never the token.
    pub fn record(&self, method: &str, error: &AuthError) {
        if self.limiter.check().is_err() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        tracing::info!(
            rpc.method = method,
            auth.reason = error.reason(),
            auth.detail = %error,
            denials.suppressed = suppressed,
            "call rejected: authentication failed"
        );
    }

    /// Records one call of `caller` rejected by the rate limit.
    pub fn record_rate_limited(&self, method: &str, caller: &Caller) {
        if self.limiter.check().is_err() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        tracing::info!(
            rpc.method = method,
            caller = caller.actor_name().as_deref().unwrap_or(UNAUTHENTICATED_KEY),
            denials.suppressed = suppressed,
            "call rejected: caller over its rate limit"
        );
    }
}
