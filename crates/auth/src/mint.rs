//! Minting tokens: development credentials, tests and tools. Production
//! tokens come from the identity provider that owns the JWKS.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The claims of a minted token. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenClaims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl TokenClaims {
    /// Claims issued now that expire after `lifetime`.
    pub fn new(
        subject: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        lifetime: Duration,
    ) -> Self {
        let now = unix_now();
        Self {
            sub: subject.into(),
            iss: issuer.into(),
            aud: audience.into(),
            exp: now.saturating_add(lifetime.as_secs()),
            iat: now,
            nbf: None,
        }
    }
}

/// Returns the current time in seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Signs `claims` with an HS256 secret.
pub fn mint_hs256(secret: &[u8], claims: &TokenClaims) -> Result<String, jsonwebtoken::errors::Error> {
    let key = EncodingKey::from_secret(secret)?;
    mint(&key, Algorithm::HS256, None, claims)
}

/// Signs `claims` with any key and algorithm, naming `key_id` in the header.
pub fn mint(
    key: &EncodingKey,
    algorithm: Algorithm,
    key_id: Option<&str>,
    claims: &TokenClaims,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(algorithm);
    header.kid = key_id.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key)
}
