//! Verification keys: an HS256 secret, or the RS256 and ES256 keys of a
//! JSON Web Key Set read from a file or fetched over https.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::SetupError;
use crate::settings::MIN_SECRET_BYTES;

/// Time limit of one JWKS fetch, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted JWKS document, in bytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The keys a token may be signed with.
#[derive(Clone)]
pub enum KeySet {
    /// One HS256 secret.
    Shared(DecodingKey),
    /// Public keys, each usable with exactly one algorithm.
    Public(Vec<PublicKey>),
}

/// One public key of a JWKS.
#[derive(Clone)]
pub struct PublicKey {
    pub key_id: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shared(_) => formatter.write_str("KeySet::Shared(..)"),
            Self::Public(keys) => formatter
                .debug_list()
                .entries(keys.iter().map(|key| (&key.key_id, key.algorithm)))
                .finish(),
        }
    }
}

impl KeySet {
    /// Returns the algorithms tokens may use with these keys, for messages.
    pub fn accepted_algorithms(&self) -> &'static str {
        match self {
            Self::Shared(_) => "HS256",
            Self::Public(_) => "RS256 and ES256",
        }
    }

    /// Returns whether a token header's `alg` fits these keys.
    pub fn accepts(&self, algorithm: Algorithm) -> bool {
        match self {
            Self::Shared(_) => algorithm == Algorithm::HS256,
            Self::Public(_) => matches!(algorithm, Algorithm::RS256 | Algorithm::ES256),
        }
    }

    /// Returns the keys to try for a token with this algorithm and key id:
    /// the key with that id, or every key of the algorithm when the token
    /// names none.
    pub fn candidates(&self, algorithm: Algorithm, key_id: Option<&str>) -> Vec<&DecodingKey> {
        match self {
            Self::Shared(key) => vec![key],
            Self::Public(keys) => keys
                .iter()
                .filter(|key| key.algorithm == algorithm)
                .filter(|key| key_id.is_none() || key.key_id.as_deref() == key_id)
                .map(|key| &key.key)
                .collect(),
        }
    }
}

/// Reads an HS256 secret file. Surrounding whitespace is ignored, so the
/// file may end with a newline.
pub fn read_secret_file(path: &Path) -> Result<KeySet, SetupError> {
    let secret = read_secret_bytes(path)?;
    let key = DecodingKey::from_secret(&secret).map_err(|error| {
        SetupError::new("auth_secret_file", format!("{}: {error}", path.display()))
    })?;
    Ok(KeySet::Shared(key))
}

/// Reads the secret of an HS256 secret file, checking its length.
pub fn read_secret_bytes(path: &Path) -> Result<Vec<u8>, SetupError> {
    let setting = "auth_secret_file";
    let bytes = std::fs::read(path).map_err(|error| {
        SetupError::new(setting, format!("cannot read {}: {error}", path.display()))
    })?;
    let secret = bytes.trim_ascii();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SetupError::new(
            setting,
            format!(
                "{} holds {} bytes; an HS256 secret needs at least {MIN_SECRET_BYTES}",
                path.display(),
                secret.len()
            ),
        ));
    }
    Ok(secret.to_vec())
}

/// Reads a JWKS file.
pub fn read_jwks_file(path: &Path) -> Result<KeySet, SetupError> {
    let setting = "auth_jwks_file";
    let text = std::fs::read_to_string(path).map_err(|error| {
        SetupError::new(setting, format!("cannot read {}: {error}", path.display()))
    })?;
    parse_jwks(&text).map_err(|message| SetupError::new(setting, format!("{}: {message}", path.display())))
}

/// Parses a JWKS document and keeps its RS256 and ES256 signing keys.
/// Keys for other algorithms or for encryption are skipped; a set without
/// any usable key is an error.
pub fn parse_jwks(text: &str) -> Result<KeySet, String> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|error| format!("not a JSON Web Key Set: {error}"))?;

    let mut keys = Vec::new();
    for jwk in &set.keys {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::RS256), AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(ec))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => {
                tracing::debug!(key_id = ?jwk.common.key_id, "skipping a JWKS key that is neither RS256 nor ES256");
                continue;
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|error| {
            format!("key {:?} cannot be used: {error}", jwk.common.key_id)
        })?;
        keys.push(PublicKey {
            key_id: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }

    if keys.is_empty() {
        return Err("the set has no RS256 or ES256 signing key".to_owned());
    }
    Ok(KeySet::Public(keys))
}

/// Fetches JWKS documents over https only.
#[derive(Debug, Clone)]
pub struct JwksFetcher {
    url: String,
    client: reqwest::Client,
}

impl JwksFetcher {
    /// Builds an https client that trusts the built-in web roots and the
    /// certificate authorities of `ca_file`.
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, SetupError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            let setting = "auth_jwks_ca_file";
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| {
                    SetupError::new(setting, format!("cannot read {}: {error}", path.display()))
                })?;
            if certificates.is_empty() {
                return Err(SetupError::new(
                    setting,
                    format!("{} holds no PEM certificate", path.display()),
                ));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|error| {
                    SetupError::new(setting, format!("{}: {error}", path.display()))
                })?;
            }
        }

        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| SetupError::new("auth_jwks_url", format!("TLS setup failed: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|error| {
                SetupError::new("auth_jwks_url", format!("cannot build the HTTP client: {error}"))
            })?;
        Ok(Self {
            url: url.to_owned(),
            client,
        })
    }

    /// Fetches and parses the key set.
    pub async fn fetch(&self) -> Result<KeySet, String> {
        let response = self
            .client
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| format!("cannot fetch {}: {error}", self.url))?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("{} is larger than {MAX_JWKS_BYTES} bytes", self.url));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| format!("cannot read {}: {error}", self.url))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("{} is larger than {MAX_JWKS_BYTES} bytes", self.url));
        }
        let text = std::str::from_utf8(&body).map_err(|_| format!("{} is not UTF-8 text", self.url))?;
        parse_jwks(text).map_err(|message| format!("{}: {message}", self.url))
    }
}
