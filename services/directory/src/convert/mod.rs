//! Conversions between protobuf messages and domain types: requests into
//! validated domain commands and queries, domain results into responses.

pub mod audit;
pub mod commands;
pub mod entities;
pub mod fields;
pub mod queries;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use workteams_domain::{UserId, ValidationError};

pub use entities::IntoProto;

/// Facts about the call and the installation that a conversion needs
/// besides the message.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts {
    /// When the call arrived; expiry times must lie after it.
    pub now: DateTime<Utc>,
    /// The calling user, recorded as who added a membership or grant.
    pub actor_user_id: Option<UserId>,
    /// The database epoch that consistency tokens must carry.
    pub epoch: Uuid,
}

/// Converts a request message into a validated domain value.
///
/// The directory cannot implement `TryFrom<proto> for domain` because both
/// types come from other crates (the orphan rule), hence this local trait.
pub trait TryIntoDomain {
    type Domain;

    fn try_into_domain(self, facts: &RequestFacts) -> Result<Self::Domain, ValidationError>;
}
