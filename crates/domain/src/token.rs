//! Revisions and the opaque consistency tokens that carry them.
//!
//! A token names a revision of one directory database: it contains the
//! database's epoch (a UUID chosen when the database was first migrated), so
//! a token from another installation is rejected instead of being compared
//! with revisions it has nothing to do with.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ValidationError;

/// Position in the change log. Revision 0 is the empty directory; every
/// committed transaction that changes something takes the next number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(pub i64);

impl Revision {
    pub const ZERO: Self = Self(0);

    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

const TOKEN_PREFIX: &str = "wt1.";
const TOKEN_BYTES: usize = 16 + 8 + 4;

/// A revision of one directory database, as handed to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsistencyToken {
    pub epoch: Uuid,
    pub revision: Revision,
}

impl ConsistencyToken {
    pub const fn new(epoch: Uuid, revision: Revision) -> Self {
        Self { epoch, revision }
    }

    /// Encodes the token as opaque text.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.extend_from_slice(self.epoch.as_bytes());
        bytes.extend_from_slice(&self.revision.0.to_be_bytes());
        let checksum = fnv1a(&bytes);
        bytes.extend_from_slice(&checksum.to_be_bytes());
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Decodes a token, naming `field` when it is malformed or tampered with.
    pub fn decode(field: &str, text: &str) -> Result<Self, ValidationError> {
        let malformed = || {
            ValidationError::opaque(
                field,
                text,
                "not a consistency token; pass a token exactly as a directory response returned it",
            )
        };
        let encoded = text.strip_prefix(TOKEN_PREFIX).ok_or_else(malformed)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| malformed())?;
        if bytes.len() != TOKEN_BYTES {
            return Err(malformed());
        }
        let (payload, checksum) = bytes.split_at(24);
        if fnv1a(payload).to_be_bytes() != checksum {
            return Err(malformed());
        }
        let epoch = Uuid::from_slice(&payload[..16]).map_err(|_| malformed())?;
        let mut revision = [0_u8; 8];
        revision.copy_from_slice(&payload[16..24]);
        let revision = i64::from_be_bytes(revision);
        if revision < 0 {
            return Err(malformed());
        }
        Ok(Self::new(epoch, Revision(revision)))
    }

    /// Decodes a token and checks it belongs to the database with `epoch`.
    pub fn decode_for(field: &str, text: &str, epoch: Uuid) -> Result<Self, ValidationError> {
        let token = Self::decode(field, text)?;
        if token.epoch != epoch {
            return Err(ValidationError::opaque(
                field,
                text,
                "the token comes from another directory installation; take a new snapshot or token from this one",
            ));
        }
        Ok(token)
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// FNV-1a over the payload: detects accidental and casual edits of a token.
/// Tokens carry no secret, so this is an integrity check, not a signature.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(42));
        let decoded = ConsistencyToken::decode("token", &token.encode());
        assert_eq!(decoded, Ok(token));
    }

    #[test]
    fn tampered_token_is_rejected() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(42)).encode();
        let mut chars: Vec<char> = token.chars().collect();
        let position = chars.len() - 8;
        chars[position] = if chars[position] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(ConsistencyToken::decode("token", &tampered).is_err());
    }

    #[test]
    fn token_of_another_installation_is_rejected() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(1)).encode();
        let error = ConsistencyToken::decode_for("token", &token, Uuid::now_v7()).unwrap_err();
        assert!(error.reason.contains("another directory"));
    }

    #[test]
    fn rejected_token_text_is_not_shown() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(42)).encode();
        let tampered = format!("{token}x");
        let error = ConsistencyToken::decode("token", &tampered).unwrap_err();
        assert!(!error.to_string().contains(&token));
        let error = ConsistencyToken::decode_for("token", &token, Uuid::now_v7()).unwrap_err();
        assert!(!error.to_string().contains(&token));
    }

    #[test]
    fn garbage_is_rejected() {
        for text in ["", "wt1.", "wt1.!!!", "hello", "wt1.AAAA"] {
            assert!(ConsistencyToken::decode("token", text).is_err(), "{text}");
        }
    }
}
