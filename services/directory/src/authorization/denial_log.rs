//! Rate-limited logging of denials.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::context::CallContext;

/// Denials logged per window; later ones in the window are counted and the
/// count goes out with the next logged denial.
const DENIAL_LOGS_PER_WINDOW: u32 = 20;
const DENIAL_LOG_WINDOW: Duration = Duration::from_secs(1);

struct DenialLog {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// Shared by every server in the process, so a flood of denials on one
/// port cannot fill the log either.
static DENIAL_LOG: Mutex<DenialLog> = Mutex::new(DenialLog {
    window_start: None,
    logged: 0,
    suppressed: 0,
});

/// Logs a denial at `info` unless the window's budget is spent. Returns the
/// count of denials not logged since the last logged one, or `None` when
/// this one is not logged either.
fn admit_denial_log(now: Instant) -> Option<u64> {
    let mut log = match DENIAL_LOG.lock() {
        Ok(log) => log,
        Err(poisoned) => poisoned.into_inner(),
    };
    let window_over = log
        .window_start
        .is_none_or(|start| now.duration_since(start) >= DENIAL_LOG_WINDOW);
    if window_over {
        log.window_start = Some(now);
        log.logged = 0;
    }
    if log.logged >= DENIAL_LOGS_PER_WINDOW {
        log.suppressed += 1;
        return None;
    }
    log.logged += 1;
    Some(std::mem::take(&mut log.suppressed))
}

pub(super) fn log_denial(call: &CallContext, field: Option<&str>, reason: &str) {
    let Some(suppressed) = admit_denial_log(Instant::now()) else {
        return;
    };
    let actor = call
        .caller
        .actor_name()
        .unwrap_or_else(|| "unauthenticated".to_owned());
    call.span.in_scope(|| {
        tracing::info!(
            caller.actor = %actor,
            rpc.method = call.method,
            field,
            reason,
            denials_not_logged = suppressed,
            "permission denied"
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_log_is_rate_limited() {
        let start = Instant::now() + Duration::from_secs(3600);
        let admitted = (0..DENIAL_LOGS_PER_WINDOW * 2)
            .filter(|_| admit_denial_log(start).is_some())
            .count();
        assert!(admitted <= DENIAL_LOGS_PER_WINDOW as usize, "{admitted}");

        let next_window = start + DENIAL_LOG_WINDOW;
        let suppressed = admit_denial_log(next_window);
        assert!(
            suppressed.is_some_and(|count| count >= u64::from(DENIAL_LOGS_PER_WINDOW)),
            "{suppressed:?}"
        );
    }
}
