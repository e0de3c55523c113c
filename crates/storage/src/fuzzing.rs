//! Entry points for the fuzz targets under `fuzz/`. They are not part of the
//! crate's API and may change with the page token format.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::StoreError;
use crate::page::{PageCodec, PageRequest};

/// Checks `token` as a page token of list `kind` with `filter` under
/// `secret`, and returns the key of the last item of the previous page.
pub fn decode_page_token(
    secret: &[u8],
    token: &str,
    kind: &str,
    filter: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let codec = PageCodec::new(secret)?;
    let request = PageRequest {
        page_size: 1,
        page_token: token.to_owned(),
    };
    Ok(codec.position(&request, kind, filter)?.after)
}

/// Builds the page token that continues list `kind` with `filter` after the
/// item with `last_key`, signed with `secret`.
pub fn encode_page_token(
    secret: &[u8],
    kind: &str,
    filter: &str,
    last_key: Vec<String>,
) -> Result<String, StoreError> {
    Ok(PageCodec::new(secret)?.token(kind, filter, last_key))
}

/// Wraps arbitrary `payload` bytes in a page token with a valid signature,
/// so a fuzz target reaches the payload decoding behind the signature check.
pub fn sign_page_token_payload(secret: &[u8], payload: &[u8]) -> Result<String, StoreError> {
    let signature = PageCodec::new(secret)?.sign(payload);
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    ))
}
