//! The gate every directory call passes before its handler runs: bearer
//! token authentication, which fills [`CallContext::caller`], then the
//! caller's rate limit. Rejections are logged at a limited rate.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use workteams_auth::{Authenticator, CallerRateLimiter, DenialLog, RateLimit};

use crate::context::CallContext;
use crate::error::ApiError;

/// Authentication and rate limiting of calls, shared by every handler.
#[derive(Debug, Clone)]
pub struct CallGate {
    shared: Arc<GateState>,
}

#[derive(Debug)]
struct GateState {
    /// `None` in insecure mode: every call is accepted without credentials.
    authenticator: Option<Authenticator>,
    rate_limiter: Option<CallerRateLimiter>,
    denials: DenialLog,
}

impl CallGate {
    pub fn new(authenticator: Option<Authenticator>, rate_limit: Option<RateLimit>) -> Self {
        Self {
            shared: Arc::new(GateState {
                authenticator,
                rate_limiter: rate_limit.map(CallerRateLimiter::new),
                denials: DenialLog::default(),
            }),
        }
    }

    /// Authenticates the call and charges its caller's rate limit.
    ///
    /// With authentication on, the caller named by the token replaces any
    /// actor the client sent in metadata, so the change log records who
    /// really made the call. In insecure mode the caller stays
    /// `Unauthenticated` and the client's actor is recorded as sent.
    pub fn admit(&self, call: &mut CallContext, metadata: &MetadataMap) -> Result<(), ApiError> {
        let state = &self.shared;
        if let Some(authenticator) = &state.authenticator {
            let caller = authenticator.authenticate_metadata(metadata).map_err(|error| {
                call.span.in_scope(|| state.denials.record(call.method, &error));
                ApiError::Unauthenticated(error)
            })?;
            call.actor = caller.actor_name();
            call.caller = caller;
        }

        if let Some(limiter) = &state.rate_limiter
            && let Err(retry_after) = limiter.check(&call.caller)
        {
            call.span
                .in_scope(|| state.denials.record_rate_limited(call.method, &call.caller));
            return Err(ApiError::RateLimited { retry_after });
        }
        Ok(())
    }
}
