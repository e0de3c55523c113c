//! Page tokens of `ListEffectiveAccess`.
//!
//! A token records the last id a page returned, the directory revision and
//! installation the page was read at, and a fingerprint of the query. The next
//! page continues after that id in id order, so an item that stays in the
//! index between two pages is listed exactly once. The revision lets a sidecar
//! that is behind the one that served the previous page wait until it has
//! caught up instead of answering from older data.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;
use workteams_domain::{Revision, ValidationError};

const TOKEN_PREFIX: &str = "wtp1.";
const POSITION_BYTES: usize = 16;
const PAYLOAD_BYTES: usize = 8 + 16 + 8 + POSITION_BYTES;
const CHECKSUM_BYTES: usize = 4;

/// The position where the next page of a listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    /// Identifies the query: the target and its filters.
    pub query_fingerprint: u64,
    /// The epoch of the directory installation the page was read from.
    pub epoch: Uuid,
    pub revision: Revision,
    /// The last id the previous page returned: a resource id when listing a
    /// user's access, a user id when listing a resource's users.
    pub last_id: Uuid,
}

impl PageToken {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_BYTES + CHECKSUM_BYTES);
        bytes.extend_from_slice(&self.query_fingerprint.to_be_bytes());
        bytes.extend_from_slice(self.epoch.as_bytes());
        bytes.extend_from_slice(&self.revision.0.to_be_bytes());
        bytes.extend_from_slice(self.last_id.as_bytes());
        let checksum = checksum(&bytes);
        bytes.extend_from_slice(&checksum.to_be_bytes());
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Decodes a token and checks it was issued for the same query.
    pub fn decode(field: &str, text: &str, query_fingerprint: u64) -> Result<Self, ValidationError> {
        let malformed = || {
            ValidationError::opaque(
                field,
                text,
                "not a page token; pass next_page_token exactly as the previous response returned it",
            )
        };

        let encoded = text.strip_prefix(TOKEN_PREFIX).ok_or_else(malformed)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| malformed())?;
        if bytes.len() != PAYLOAD_BYTES + CHECKSUM_BYTES {
            return Err(malformed());
        }
        let (payload, stored_checksum) = bytes.split_at(PAYLOAD_BYTES);
        if checksum(payload).to_be_bytes() != stored_checksum {
            return Err(malformed());
        }

        let (fingerprint, rest) = payload.split_at(8);
        let (epoch, rest) = rest.split_at(16);
        let (revision, last_id) = rest.split_at(8);
        let token = Self {
            query_fingerprint: u64::from_be_bytes(fingerprint.try_into().map_err(|_| malformed())?),
            epoch: Uuid::from_slice(epoch).map_err(|_| malformed())?,
            revision: Revision(i64::from_be_bytes(revision.try_into().map_err(|_| malformed())?)),
            last_id: Uuid::from_slice(last_id).map_err(|_| malformed())?,
        };
        if token.revision.0 < 0 {
            return Err(malformed());
        }
        if token.query_fingerprint != query_fingerprint {
            return Err(ValidationError::opaque(
                field,
                text,
                "the page token belongs to a listing with another target or other filters; \
                 repeat the request that returned it",
            ));
        }
        Ok(token)
    }
}

/// Fingerprints a query from its parts, so a token cannot continue a
/// different listing. The parts are separated so that ("ab", "c") and
/// ("a", "bc") differ.
pub fn query_fingerprint<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hash = Fnv64::new();
    for part in parts {
        hash.write(part.as_bytes());
        hash.write(&[0xff]);
    }
    hash.finish()
}

/// FNV-1a over the payload: detects edited tokens. Tokens carry no secret,
/// so this is an integrity check, not a signature.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

struct Fnv64(u64);

impl Fnv64 {
    const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    const fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> PageToken {
        PageToken {
            query_fingerprint: query_fingerprint(["user", "0190f0c2-7b1e-7c3a-9d4e-5f6a7b8c9d0e"]),
            epoch: Uuid::now_v7(),
            revision: Revision(17),
            last_id: Uuid::now_v7(),
        }
    }

    #[test]
    fn page_token_round_trips() {
        let token = token();
        let decoded = PageToken::decode("page_token", &token.encode(), token.query_fingerprint);
        assert_eq!(decoded, Ok(token));
    }

    #[test]
    fn token_of_other_query_is_rejected() {
        let token = token();
        let other = query_fingerprint(["resource", "0190f0c2-7b1e-7c3a-9d4e-5f6a7b8c9d0e"]);
        let error = PageToken::decode("page_token", &token.encode(), other).unwrap_err();
        assert_eq!(error.field, "page_token");
        assert!(error.reason.contains("another target"));
    }

    #[test]
    fn edited_token_is_rejected() {
        let token = token();
        let encoded = token.encode();
        let mut chars: Vec<char> = encoded.chars().collect();
        let position = TOKEN_PREFIX.len() + 12;
        chars[position] = if chars[position] == 'A' { 'B' } else { 'A' };
        let edited: String = chars.into_iter().collect();
        assert!(PageToken::decode("page_token", &edited, token.query_fingerprint).is_err());
    }

    #[test]
    fn rejected_token_text_is_not_shown() {
        let token = token();
        let encoded = token.encode();
        let error = PageToken::decode("page_token", &format!("{encoded}A"), token.query_fingerprint).unwrap_err();
        assert!(!error.to_string().contains(&encoded));
        let error = PageToken::decode("page_token", &encoded, token.query_fingerprint ^ 1).unwrap_err();
        assert!(!error.to_string().contains(&encoded));
    }

    #[test]
    fn garbage_tokens_are_rejected() {
        let fingerprint = token().query_fingerprint;
        for text in ["", "wtp1.", "wtp1.!!", "wt1.AAAA", "next"] {
            assert!(PageToken::decode("page_token", text, fingerprint).is_err(), "{text:?}");
        }
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(query_fingerprint(["ab", "c"]), query_fingerprint(["a", "bc"]));
    }
}
