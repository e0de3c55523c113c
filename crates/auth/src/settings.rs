//! Settings of an [`crate::Authenticator`]: where the verification keys
//! come from, the required issuer and audience, the clock leeway and the
//! optional service-accounts file.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::SetupError;

/// Default tolerance for clock differences when checking `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest accepted leeway: more would keep expired tokens usable.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default interval between two fetches of a JWKS URL.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
/// Shortest accepted interval between two fetches of a JWKS URL.
pub const MIN_JWKS_REFRESH: Duration = Duration::from_secs(10);
/// Shortest accepted HS256 secret, in bytes: RFC 7518 section 3.2 requires
/// a key at least as long as the hash output.
pub const MIN_SECRET_BYTES: usize = 32;

/// Token verification settings: keys, required claims and service accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub keys: KeySource,
    /// The exact `iss` every token must carry.
    pub issuer: String,
    /// A value the `aud` claim of every token must contain.
    pub audience: String,
    /// Tolerance for clock differences when checking `exp` and `nbf`.
    pub leeway: Duration,
    /// YAML file of service accounts and their scopes; without it, only
    /// user subjects are accepted.
    pub service_accounts_file: Option<PathBuf>,
}

/// Source of the verification keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// HS256 with a secret read from a file, meant for development: every
    /// holder of the secret can mint tokens.
    SharedSecretFile(PathBuf),
    /// RS256 and ES256 public keys from a JSON Web Key Set file, read once
    /// at start.
    JwksFile(PathBuf),
    /// RS256 and ES256 public keys from a JSON Web Key Set served over
    /// https, fetched at start and then every `refresh`.
    JwksUrl {
        url: String,
        refresh: Duration,
        /// PEM file of extra certificate authorities trusted for the URL,
        /// added to the built-in web roots.
        ca_file: Option<PathBuf>,
    },
}

impl AuthSettings {
    /// Checks the settings that need neither files nor the network.
    pub fn validate(&self) -> Result<(), SetupError> {
        if self.issuer.trim().is_empty() {
            return Err(SetupError::new(
                "auth_issuer",
                "is empty; set the issuer (iss) that tokens must carry",
            ));
        }
        if self.audience.trim().is_empty() {
            return Err(SetupError::new(
                "auth_audience",
                "is empty; set the audience (aud) that tokens must be issued for",
            ));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(SetupError::new(
                "auth_leeway",
                format!(
                    "{}s is longer than the maximum of {}s",
                    self.leeway.as_secs(),
                    MAX_LEEWAY.as_secs()
                ),
            ));
        }
        if let KeySource::JwksUrl { url, refresh, .. } = &self.keys {
            if !url.starts_with("https://") {
                return Err(SetupError::new(
                    "auth_jwks_url",
                    format!("{url:?} is not an https:// URL; keys are only fetched over TLS"),
                ));
            }
            if *refresh < MIN_JWKS_REFRESH {
                return Err(SetupError::new(
                    "auth_jwks_refresh",
                    format!(
                        "{}s is shorter than the minimum of {}s",
                        refresh.as_secs(),
                        MIN_JWKS_REFRESH.as_secs()
                    ),
                ));
            }
        }
        Ok(())
    }
}
