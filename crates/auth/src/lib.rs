//! Authentication of Work Teams callers by bearer token.
//!
//! An [`Authenticator`] verifies the JWT in a call's `authorization`
//! metadata against the keys of its [`AuthSettings`]: an HS256 shared secret
//! for development, or RS256 and ES256 keys from a JWKS file or URL. It checks
//! the issuer, audience, expiry and not-before time, and turns the subject
//! into a [`workteams_domain::Caller`]. The crate also creates development
//! credentials ([`DevCredentials`]), mints tokens ([`mint`]), sends a token
//! from a gRPC client ([`BearerToken`]), and limits and logs calls per
//! caller ([`CallerRateLimiter`], [`DenialLog`]). It contains no gRPC server
//! code: each service wires these pieces into its own call path.

pub mod authenticator;
pub mod client;
pub mod dev;
pub mod error;
pub mod keys;
pub mod limit;
pub mod mint;
pub mod service_accounts;
pub mod settings;

pub use authenticator::{AUTHORIZATION_METADATA, Authenticator};
pub use client::BearerToken;
pub use dev::DevCredentials;
pub use error::{AuthError, SetupError};
pub use limit::{CallerRateLimiter, DenialLog, RateLimit};
pub use mint::{TokenClaims, mint, mint_hs256};
pub use service_accounts::{ServiceAccounts, parse_scope};
pub use settings::{AuthSettings, KeySource};

/// The `jsonwebtoken` crate, for tests and tools that sign tokens with
/// their own keys.
pub use jsonwebtoken as jwt;
