//! Typed entity ids.
//!
//! Ids are UUIDs in their canonical text form: lowercase, hyphenated, 36
//! characters. Any other spelling of the same UUID (uppercase, braces, no
//! hyphens) is rejected rather than normalized, so two ids that differ only
//! by letter case can never alias each other. New ids are UUIDv7, which sort
//! by creation time and keep keyset pagination stable under inserts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ValidationError;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $noun:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Creates a new, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Parses the canonical text form, naming `field` in the error.
            pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
                parse_canonical_uuid(field, text, $noun).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse("id", text)
            }
        }
    };
}

typed_id!(
    /// Identifies an organization.
    OrganizationId,
    "organization"
);
typed_id!(
    /// Identifies a user across organizations.
    UserId,
    "user"
);
typed_id!(
    /// Identifies a team.
    TeamId,
    "team"
);
typed_id!(
    /// Identifies a resource.
    ResourceId,
    "resource"
);
typed_id!(
    /// Identifies an invitation.
    InvitationId,
    "invitation"
);

/// Parses a UUID that must already be in canonical lowercase hyphenated form.
pub fn parse_canonical_uuid(field: &str, text: &str, noun: &str) -> Result<Uuid, ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::new(
            field,
            text,
            format!("a {noun} id is required"),
        ));
    }
    let parsed = Uuid::try_parse(text).ok().filter(|uuid| {
        let mut buffer = Uuid::encode_buffer();
        uuid.as_hyphenated().encode_lower(&mut buffer) == text
    });
    parsed.ok_or_else(|| {
        ValidationError::new(
            field,
            text,
            format!(
                "not a {noun} id; ids are lowercase hyphenated UUIDs such as \
                 0190f0c2-7b1e-7c3a-9d4e-5f6a7b8c9d0e"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_id_round_trips() {
        let id = TeamId::generate();
        let parsed = TeamId::parse("team_id", &id.to_string());
        assert_eq!(parsed, Ok(id));
    }

    #[test]
    fn uppercase_id_is_rejected() {
        let id = TeamId::generate().to_string().to_uppercase();
        let error = TeamId::parse("team_id", &id).unwrap_err();
        assert_eq!(error.field, "team_id");
    }

    #[test]
    fn unhyphenated_and_braced_ids_are_rejected() {
        let id = UserId::generate();
        let simple = id.as_uuid().simple().to_string();
        let braced = id.as_uuid().braced().to_string();
        assert!(UserId::parse("user_id", &simple).is_err());
        assert!(UserId::parse("user_id", &braced).is_err());
    }

    #[test]
    fn empty_id_says_it_is_required() {
        let error = UserId::parse("user_id", "").unwrap_err();
        assert!(error.reason.contains("required"));
    }
}
