//! Keyset pagination and its signed, opaque page tokens.
//!
//! A page token carries the list kind, a hash of the list's filter and the
//! key of the last item returned, signed with HMAC-SHA256 under the
//! installation secret. Lists are ordered by a unique key, and ids are
//! UUIDv7, so new items sort last. The next page starts strictly after the
//! last key, so concurrent inserts and deletes never make a page repeat or
//! skip an item that exists from the first page to the last.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use workteams_domain::ValidationError;

use crate::error::StoreError;

/// Page size when the request gives 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page size; larger requests are served this many items.
pub const MAX_PAGE_SIZE: usize = 1_000;

const PAGE_TOKEN_FIELD: &str = "page_token";

/// A request for one page of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// 0 takes [`DEFAULT_PAGE_SIZE`]; negative is rejected; values above
    /// [`MAX_PAGE_SIZE`] are capped.
    pub page_size: i32,
    /// Empty for the first page, otherwise a `next_page_token` of the same
    /// list with the same filter.
    pub page_token: String,
}

impl PageRequest {
    pub fn first(page_size: i32) -> Self {
        Self {
            page_size,
            page_token: String::new(),
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub next_page_token: Option<String>,
}

/// The start and length of a requested page.
#[derive(Debug)]
pub(crate) struct PagePosition {
    pub size: usize,
    /// The key of the last item of the previous page.
    pub after: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct TokenPayload {
    /// List kind.
    k: String,
    /// Hash of the filter, hex.
    f: String,
    /// Key of the last item returned.
    a: Vec<String>,
}

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks page tokens with the installation secret.
#[derive(Clone)]
pub(crate) struct PageCodec {
    /// The MAC keyed with the installation secret, cloned for each use.
    keyed_mac: HmacSha256,
}

impl std::fmt::Debug for PageCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageCodec { .. }")
    }
}

impl PageCodec {
    pub fn new(secret: &[u8]) -> Result<Self, StoreError> {
        let keyed_mac = HmacSha256::new_from_slice(secret)
            .map_err(|_| StoreError::corrupt("the installation secret is not a valid HMAC key"))?;
        Ok(Self { keyed_mac })
    }

    /// Checks the page size and token of a request for list `kind` with
    /// `filter` (any text that differs when the filter differs).
    pub fn position(&self, request: &PageRequest, kind: &str, filter: &str) -> Result<PagePosition, StoreError> {
        let size = page_size(request.page_size)?;
        if request.page_token.is_empty() {
            return Ok(PagePosition { size, after: None });
        }

        let payload = self.verified_payload(&request.page_token)?;

        if payload.k != kind {
            return Err(invalid_token(
                &request.page_token,
                "the page token belongs to another list",
            ));
        }
        if payload.f != filter_hash(filter) {
            return Err(invalid_token(
                &request.page_token,
                "the page token was issued for a different filter; repeat the first request's filter or start without a token",
            ));
        }
        Ok(PagePosition {
            size,
            after: Some(payload.a),
        })
    }

    /// Builds the next page's token after an item with `last_key`.
    pub fn token(&self, kind: &str, filter: &str, last_key: Vec<String>) -> String {
        let payload = TokenPayload {
            k: kind.to_owned(),
            f: filter_hash(filter),
            a: last_key,
        };
        // serde_json fails only on non-string map keys and failing Serialize
        // impls, and the payload has neither.
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        let signature = self.sign(&bytes);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&bytes), URL_SAFE_NO_PAD.encode(signature))
    }

    /// Builds a page from up to `size + 1` fetched rows. The extra row only
    /// shows that another page follows.
    pub fn page<T>(
        &self,
        kind: &str,
        filter: &str,
        size: usize,
        mut items: Vec<T>,
        key_of: impl Fn(&T) -> Vec<String>,
    ) -> crate::Page<T> {
        let more = items.len() > size;
        items.truncate(size);
        let next_page_token = match items.last() {
            Some(last) if more => Some(self.token(kind, filter, key_of(last))),
            _ => None,
        };
        crate::Page {
            items,
            next_page_token,
        }
    }

    fn verified_payload(&self, token: &str) -> Result<TokenPayload, StoreError> {
        let malformed = || invalid_token(token, "not a page token of this list; pass next_page_token exactly as returned");
        let (payload, signature) = token.split_once('.').ok_or_else(malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;

        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&signature).map_err(|_| malformed())?;

        serde_json::from_slice(&payload).map_err(|_| malformed())
    }

    pub(crate) fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(bytes);
        mac.finalize().into_bytes().to_vec()
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed_mac.clone()
    }
}

fn page_size(requested: i32) -> Result<usize, StoreError> {
    match usize::try_from(requested) {
        Err(_) => Err(ValidationError::new(
            "page_size",
            requested.to_string(),
            "must not be negative; use 0 for the default page size",
        )
        .into()),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

fn filter_hash(filter: &str) -> String {
    let digest = Sha256::digest(filter.as_bytes());
    digest[..12].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn invalid_token(token: &str, reason: &str) -> StoreError {
    ValidationError::opaque(PAGE_TOKEN_FIELD, token, reason).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn codec() -> PageCodec {
        PageCodec::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn request(token: String) -> PageRequest {
        PageRequest {
            page_size: 10,
            page_token: token,
        }
    }

    #[test]
    fn token_round_trips() {
        let codec = codec();
        let token = codec.token("teams", "org=1", vec!["abc".to_owned()]);
        let position = codec.position(&request(token), "teams", "org=1").unwrap();
        assert_eq!(position.after, Some(vec!["abc".to_owned()]));
    }

    #[test]
    fn token_of_other_list_rejected() {
        let codec = codec();
        let token = codec.token("teams", "org=1", vec!["abc".to_owned()]);
        let error = codec.position(&request(token), "users", "org=1").unwrap_err();
        assert!(matches!(error, StoreError::Validation(ref v) if v.field == "page_token"));
    }

    #[test]
    fn token_with_other_filter_rejected() {
        let codec = codec();
        let token = codec.token("teams", "org=1", vec!["abc".to_owned()]);
        assert!(codec.position(&request(token), "teams", "org=2").is_err());
    }

    #[test]
    fn tampered_token_rejected() {
        let codec = codec();
        let token = codec.token("teams", "org=1", vec!["abc".to_owned()]);
        let (payload, signature) = token.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"k":"teams","f":"x","a":["zzz"]}"#);
        let forged = format!("{forged_payload}.{signature}");
        assert!(codec.position(&request(forged), "teams", "org=1").is_err());
        assert!(codec.position(&request(format!("{payload}.AAAA")), "teams", "org=1").is_err());
    }

    #[test]
    fn rejected_token_text_is_not_shown() {
        let codec = codec();
        let token = codec.token("teams", "org=1", vec!["abc".to_owned()]);
        for (tried, kind) in [(format!("{token}A"), "teams"), (token.clone(), "users")] {
            let error = codec.position(&request(tried), kind, "org=1").unwrap_err();
            assert!(!error.to_string().contains(&token), "{error}");
        }
    }

    #[test]
    fn token_of_other_secret_rejected() {
        let token = codec().token("teams", "org=1", vec!["abc".to_owned()]);
        let other = PageCodec::new(b"another secret").unwrap();
        assert!(other.position(&request(token), "teams", "org=1").is_err());
    }

    #[test]
    fn page_size_rules() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(5000).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }
}
