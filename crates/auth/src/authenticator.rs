//! The [`Authenticator`]: verifies a call's bearer token and names its
//! caller.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use tonic::metadata::MetadataMap;
use workteams_domain::{Caller, UserId};

use crate::error::{AuthError, SetupError};
use crate::keys::{JwksFetcher, KeySet, read_jwks_file, read_secret_file};
use crate::service_accounts::ServiceAccounts;
use crate::settings::{AuthSettings, KeySource};

/// Metadata key of the bearer token.
pub const AUTHORIZATION_METADATA: &str = "authorization";
/// Longest accepted token, in bytes; real tokens are far shorter.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Prefix of a user subject; a bare canonical user id is accepted too.
const USER_SUBJECT_PREFIX: &str = "user:";

/// Verifies bearer tokens. Cloning shares the keys, so a refreshed JWKS
/// reaches every clone.
#[derive(Debug, Clone)]
pub struct Authenticator {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    keys: RwLock<Arc<KeySet>>,
    issuer: String,
    audience: String,
    leeway: Duration,
    accounts: ServiceAccounts,
}

/// The claims read after the signature and the standard claims are checked.
#[derive(Debug, Deserialize)]
struct SubjectClaims {
    sub: String,
}

impl Authenticator {
    /// Reads the keys and service accounts named by `settings`. A JWKS URL is
    /// fetched now, and then by a background task every refresh interval for
    /// as long as the authenticator lives. A failed refresh keeps the
    /// previous keys and is logged.
    pub async fn load(settings: &AuthSettings) -> Result<Self, SetupError> {
        settings.validate()?;

        let accounts = match &settings.service_accounts_file {
            Some(path) => ServiceAccounts::load(path)?,
            None => ServiceAccounts::default(),
        };
        let (keys, refresh) = match &settings.keys {
            KeySource::SharedSecretFile(path) => (read_secret_file(path)?, None),
            KeySource::JwksFile(path) => (read_jwks_file(path)?, None),
            KeySource::JwksUrl {
                url,
                refresh,
                ca_file,
            } => {
                let fetcher = JwksFetcher::new(url, ca_file.as_deref())?;
                let keys = fetcher
                    .fetch()
                    .await
                    .map_err(|message| SetupError::new("auth_jwks_url", message))?;
                (keys, Some((fetcher, *refresh)))
            }
        };

        let authenticator = Self::with_keys(keys, settings, accounts);
        if let Some((fetcher, interval)) = refresh {
            tokio::spawn(refresh_periodically(
                Arc::downgrade(&authenticator.shared),
                fetcher,
                interval,
            ));
        }
        Ok(authenticator)
    }

    fn with_keys(keys: KeySet, settings: &AuthSettings, accounts: ServiceAccounts) -> Self {
        Self {
            shared: Arc::new(Shared {
                keys: RwLock::new(Arc::new(keys)),
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                leeway: settings.leeway,
                accounts,
            }),
        }
    }

    /// Returns how many service accounts are configured.
    pub fn service_account_count(&self) -> usize {
        self.shared.accounts.len()
    }

    /// Authenticates the `authorization` header of an HTTP request.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, AuthError> {
        let value = headers.get(http::header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
        self.authenticate_header(value)
    }

    /// Authenticates the `authorization` metadata of a gRPC call.
    pub fn authenticate_metadata(&self, metadata: &MetadataMap) -> Result<Caller, AuthError> {
        let value = metadata
            .get(AUTHORIZATION_METADATA)
            .map(|value| value.as_encoded_bytes());
        self.authenticate_header(value)
    }

    /// Like [`Self::authenticate_metadata`], but accepts only service
    /// accounts, as the sidecar does.
    pub fn authenticate_service(&self, metadata: &MetadataMap) -> Result<Caller, AuthError> {
        match self.authenticate_metadata(metadata)? {
            caller @ Caller::Service(_) => Ok(caller),
            Caller::User(_) | Caller::Unauthenticated => Err(AuthError::ServiceAccountRequired),
        }
    }

    fn authenticate_header(&self, value: Option<&[u8]>) -> Result<Caller, AuthError> {
        let value = value.ok_or(AuthError::MissingToken)?;
        let text = std::str::from_utf8(value).map_err(|_| AuthError::MalformedHeader)?;
        let (scheme, token) = text.split_once(' ').ok_or(AuthError::MalformedHeader)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::MalformedHeader);
        }
        self.authenticate_token(token.trim())
    }

    /// Verifies a bare JWT and returns its caller.
    pub fn authenticate_token(&self, token: &str) -> Result<Caller, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::MalformedToken("longer than 8 KiB"));
        }

        let keys = self.current_keys();
        let (algorithm, key_id) = read_header(token, &keys)?;
        let validation = self.validation(algorithm);

        let candidates = keys.candidates(algorithm, key_id.as_deref());
        if candidates.is_empty() {
            return Err(AuthError::UnknownKey);
        }
        let mut rejection = AuthError::BadSignature;
        for key in candidates {
            match jsonwebtoken::decode::<SubjectClaims>(token, key, &validation) {
                Ok(data) => return self.caller_for(&data.claims.sub),
                Err(error) => {
                    rejection = map_error(error.kind());
                    // Only a signature mismatch can succeed with another key.
                    if rejection != AuthError::BadSignature {
                        return Err(rejection);
                    }
                }
            }
        }
        Err(rejection)
    }

    fn current_keys(&self) -> Arc<KeySet> {
        match self.shared.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            // A panic while swapping keys leaves a whole Arc behind, so
            // the value is still consistent.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.shared.issuer]);
        validation.set_audience(&[&self.shared.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.shared.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation
    }

    fn caller_for(&self, subject: &str) -> Result<Caller, AuthError> {
        let user_id = subject.strip_prefix(USER_SUBJECT_PREFIX).unwrap_or(subject);
        if let Ok(user_id) = UserId::parse("sub", user_id) {
            return Ok(Caller::User(user_id));
        }
        self.shared
            .accounts
            .get(subject)
            .map(Caller::Service)
            .ok_or(AuthError::UnknownSubject)
    }
}

/// Reads the token's header and checks its algorithm against the keys
/// before any signature work, so `alg: none` and algorithm confusion are
/// rejected by name.
fn read_header(token: &str, keys: &KeySet) -> Result<(Algorithm, Option<String>), AuthError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: Option<String>,
        kid: Option<String>,
    }

    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken("expected three dot-separated parts"));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::MalformedToken("the header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header)
        .map_err(|_| AuthError::MalformedToken("the header is not a JSON object"))?;

    let rejected = AuthError::AlgorithmRejected {
        accepted: keys.accepted_algorithms(),
    };
    let algorithm: Algorithm = header
        .alg
        .as_deref()
        .and_then(|name| name.parse().ok())
        .ok_or_else(|| rejected.clone())?;
    if !keys.accepts(algorithm) {
        return Err(rejected);
    }
    Ok((algorithm, header.kid))
}

fn map_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim_name(claim)),
        ErrorKind::InvalidClaimFormat(_) => AuthError::MalformedToken("a claim has the wrong type"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
            AuthError::AlgorithmRejected {
                accepted: "the algorithm of the configured keys",
            }
        }
        ErrorKind::Base64(_) => AuthError::MalformedToken("a part is not base64url"),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            AuthError::MalformedToken("the claims are not a JSON object with a string sub")
        }
        _ => AuthError::MalformedToken("the token cannot be verified"),
    }
}

/// Maps a claim name from the library to a static string, so no text from
/// the token reaches the error.
fn claim_name(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        "nbf" => "nbf",
        _ => "(unknown)",
    }
}

/// Fetches the JWKS again every `interval` until the authenticator is
/// dropped. A failed fetch keeps the previous keys.
async fn refresh_periodically(shared: Weak<Shared>, fetcher: JwksFetcher, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once, and the keys were just fetched.
    ticks.tick().await;

    loop {
        ticks.tick().await;
        let fetched = fetcher.fetch().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match fetched {
            Ok(keys) => {
                let replaced = Arc::new(keys);
                match shared.keys.write() {
                    Ok(mut current) => *current = replaced,
                    Err(poisoned) => *poisoned.into_inner() = replaced,
                }
                tracing::debug!("JWKS refreshed");
            }
            Err(error) => {
                tracing::warn!(%error, "JWKS refresh failed; keeping the previous keys until the next attempt");
            }
        }
    }
}
