//! Per-request consistency: which index version may serve a request, and how
//! long the request may wait for a newer one.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use workteams_domain::{ConsistencyToken, Revision, ValidationError};
use workteams_proto::authz::v1 as proto;

use crate::error::AuthzError;

/// A request's freshness requirement for the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Use the index as it is.
    MinimizeLatency,
    /// Wait until the index has reached this token. The epoch is checked
    /// against the index when the request runs.
    AtLeastAsFresh(ConsistencyToken),
    /// Read the directory's head first, then wait for it.
    FullyConsistent,
}

impl TryFrom<Option<proto::Consistency>> for Requirement {
    type Error = ValidationError;

    fn try_from(consistency: Option<proto::Consistency>) -> Result<Self, Self::Error> {
        use proto::consistency::Requirement as Kind;

        let Some(proto::Consistency { requirement }) = consistency else {
            return Ok(Self::MinimizeLatency);
        };
        match requirement {
            None | Some(Kind::MinimizeLatency(_)) => Ok(Self::MinimizeLatency),
            Some(Kind::AtLeastAsFresh(token)) => {
                ConsistencyToken::decode("at_least_as_fresh", &token).map(Self::AtLeastAsFresh)
            }
            Some(Kind::FullyConsistent(true)) => Ok(Self::FullyConsistent),
            Some(Kind::FullyConsistent(false)) => Err(ValidationError::new(
                "fully_consistent",
                "false",
                "set fully_consistent to true, or choose another consistency",
            )),
        }
    }
}

/// How long a request may wait for the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBudget {
    pub deadline: Instant,
    /// Whether the deadline comes from the request's `grpc-timeout` rather
    /// than the configured default wait.
    pub from_request: bool,
}

impl WaitBudget {
    /// Computes the budget for a request that arrived at `now` with an
    /// optional `grpc-timeout`. The wait ends a little before the request deadline so
    /// the caller receives this service's explanation rather than a bare
    /// cancellation.
    pub fn new(now: Instant, request_timeout: Option<Duration>, default_wait: Duration) -> Self {
        match request_timeout {
            Some(timeout) => {
                let margin = (timeout / 20).min(Duration::from_millis(100));
                Self {
                    deadline: now + timeout.saturating_sub(margin),
                    from_request: true,
                }
            }
            None => Self {
                deadline: now + default_wait,
                from_request: false,
            },
        }
    }
}

/// Parses a `grpc-timeout` header value: at most 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u` or `n`), as the gRPC HTTP/2 protocol defines it.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let duration = match unit {
        "H" => Duration::from_secs(amount.checked_mul(3_600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(duration)
}

/// The behavior of a wait when the published index belongs to another
/// directory installation than the awaited token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherEpoch<'a> {
    /// Fail with INVALID_ARGUMENT naming this request field: the caller's
    /// token belongs to another installation.
    Reject { field: &'a str },
    /// Keep waiting: the token came from the directory itself, so the
    /// follower is about to load a snapshot of the new installation.
    Wait,
}

/// Waits until the published index reaches `target`, or fails when the
/// budget runs out. Also waits for the first snapshot if none is loaded yet.
pub async fn wait_for_revision(
    mut position: watch::Receiver<Option<ConsistencyToken>>,
    target: ConsistencyToken,
    budget: WaitBudget,
    other_epoch: OtherEpoch<'_>,
) -> Result<(), AuthzError> {
    let started = Instant::now();
    let done = |current: &Option<ConsistencyToken>| {
        current.is_some_and(|token| {
            let replaced = token.epoch != target.epoch;
            if replaced {
                matches!(other_epoch, OtherEpoch::Reject { .. })
            } else {
                token.revision >= target.revision
            }
        })
    };

    let waited = tokio::time::timeout_at(budget.deadline, position.wait_for(done))
        .await
        .map(|result| result.map(|current| *current));
    let current = match waited {
        Ok(Ok(current)) => current,
        Ok(Err(_closed)) => return Err(AuthzError::ShuttingDown),
        Err(_elapsed) => {
            let reached = *position.borrow();
            let Some(reached) = reached else {
                return Err(AuthzError::NotReady);
            };
            // An index of another installation has reached nothing of the
            // requested one.
            let reached = if reached.epoch == target.epoch {
                reached.revision
            } else {
                Revision::ZERO
            };
            let waited = started.elapsed();
            return Err(if budget.from_request {
                AuthzError::DeadlineBeforeRevision {
                    requested: target.revision,
                    reached,
                    waited,
                }
            } else {
                AuthzError::RevisionNotReached {
                    requested: target.revision,
                    reached,
                    waited,
                }
            });
        }
    };

    match (current, other_epoch) {
        (Some(token), _) if token.epoch == target.epoch => Ok(()),
        (_, OtherEpoch::Reject { field }) => Err(another_installation(field, target)),
        // `done` only accepts another epoch when rejecting.
        (_, OtherEpoch::Wait) => Err(AuthzError::ShuttingDown),
    }
}

/// Builds the error for a token whose epoch is not the followed directory's.
pub fn another_installation(field: &str, token: ConsistencyToken) -> AuthzError {
    AuthzError::InvalidArgument(ValidationError::new(
        field,
        token.encode(),
        "the token comes from another directory installation than the one this sidecar follows",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const REJECT: OtherEpoch<'static> = OtherEpoch::Reject { field: "token" };

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3_600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn grpc_timeout_rejects_malformed() {
        for value in ["", "S", "5", "123456789S", "5s", "-5S", "5 S"] {
            assert_eq!(parse_grpc_timeout(value), None, "{value:?}");
        }
    }

    #[test]
    fn default_consistency_is_minimize_latency() {
        assert_eq!(Requirement::try_from(None), Ok(Requirement::MinimizeLatency));
        let empty = proto::Consistency { requirement: None };
        assert_eq!(Requirement::try_from(Some(empty)), Ok(Requirement::MinimizeLatency));
    }

    #[test]
    fn malformed_token_names_field() {
        let consistency = proto::Consistency {
            requirement: Some(proto::consistency::Requirement::AtLeastAsFresh("abc".to_owned())),
        };
        let error = Requirement::try_from(Some(consistency)).unwrap_err();
        assert_eq!(error.field, "at_least_as_fresh");
    }

    #[test]
    fn request_deadline_keeps_margin() {
        let now = Instant::now();
        let budget = WaitBudget::new(now, Some(Duration::from_secs(1)), Duration::from_secs(5));
        assert!(budget.from_request);
        assert_eq!(budget.deadline, now + Duration::from_millis(950));
    }

    #[tokio::test]
    async fn wait_returns_once_reached() {
        let epoch = Uuid::now_v7();
        let (sender, receiver) = watch::channel(Some(ConsistencyToken::new(epoch, Revision(1))));
        let budget = WaitBudget::new(Instant::now(), None, Duration::from_secs(30));

        let target = ConsistencyToken::new(epoch, Revision(3));
        let waiting = tokio::spawn(wait_for_revision(receiver, target, budget, REJECT));
        sender.send_replace(Some(ConsistencyToken::new(epoch, Revision(2))));
        sender.send_replace(Some(ConsistencyToken::new(epoch, Revision(3))));

        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_times_out_as_deadline_exceeded() {
        let epoch = Uuid::now_v7();
        let (_sender, receiver) = watch::channel(Some(ConsistencyToken::new(epoch, Revision(1))));
        let budget = WaitBudget::new(Instant::now(), Some(Duration::from_millis(200)), Duration::from_secs(5));

        let target = ConsistencyToken::new(epoch, Revision(3));
        let result = wait_for_revision(receiver, target, budget, REJECT).await;

        assert!(matches!(result, Err(AuthzError::DeadlineBeforeRevision { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn default_wait_times_out_as_unavailable() {
        let epoch = Uuid::now_v7();
        let (_sender, receiver) = watch::channel(Some(ConsistencyToken::new(epoch, Revision(1))));
        let budget = WaitBudget::new(Instant::now(), None, Duration::from_millis(200));

        let target = ConsistencyToken::new(epoch, Revision(3));
        let result = wait_for_revision(receiver, target, budget, REJECT).await;

        assert!(matches!(result, Err(AuthzError::RevisionNotReached { .. })));
    }

    #[tokio::test]
    async fn wait_rejects_other_epoch() {
        let (_sender, receiver) = watch::channel(Some(ConsistencyToken::new(Uuid::now_v7(), Revision(9))));
        let budget = WaitBudget::new(Instant::now(), None, Duration::from_secs(5));

        let target = ConsistencyToken::new(Uuid::now_v7(), Revision(3));
        let result = wait_for_revision(receiver, target, budget, REJECT).await;

        assert!(matches!(result, Err(AuthzError::InvalidArgument(_))));
    }

    #[tokio::test]
    async fn wait_follows_epoch_change() {
        let (sender, receiver) = watch::channel(Some(ConsistencyToken::new(Uuid::now_v7(), Revision(9))));
        let budget = WaitBudget::new(Instant::now(), None, Duration::from_secs(30));
        let target = ConsistencyToken::new(Uuid::now_v7(), Revision(3));

        let waiting = tokio::spawn(wait_for_revision(receiver, target, budget, OtherEpoch::Wait));
        sender.send_replace(Some(target));

        assert_eq!(waiting.await.unwrap(), Ok(()));
    }
}
