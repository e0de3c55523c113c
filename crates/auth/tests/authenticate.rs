//! The authenticator against tokens a caller could send: valid ones for each
//! subject kind, and every kind of forgery or mistake it must reject.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::metadata::MetadataMap;
use workteams_auth::jwt::jwk::{Jwk, JwkSet};
use workteams_auth::jwt::{Algorithm, EncodingKey};
use workteams_auth::{
    AuthError, AuthSettings, Authenticator, DevCredentials, KeySource, TokenClaims, mint,
    mint_hs256,
};
use workteams_domain::{Caller, OrganizationId, Scope, UserId};

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "workteams-directory";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
const ORGANIZATION: &str = "0190c3a4-5b6e-7f80-9a1b-2c3d4e5f6a7b";
const USER: &str = "0190c3a4-5b6e-7f80-9a1b-2c3d4e5f6a70";
const HOUR: Duration = Duration::from_secs(3600);

struct Fixture {
    _folder: tempfile::TempDir,
    authenticator: Authenticator,
}

fn write(folder: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = folder.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn hs256_fixture() -> Fixture {
    let folder = tempfile::tempdir().unwrap();
    let secret = write(folder.path(), "secret", &format!("{}\n", std::str::from_utf8(SECRET).unwrap()));
    let accounts = write(
        folder.path(),
        "accounts.yaml",
        &format!(
            "service_accounts:\n  - name: reporting\n    scopes: [read]\n  - name: provisioner\n    scopes: [\"organization:{ORGANIZATION}:admin\"]\n"
        ),
    );
    let settings = AuthSettings {
        keys: KeySource::SharedSecretFile(secret),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::from_secs(5),
        service_accounts_file: Some(accounts),
    };
    Fixture {
        authenticator: Authenticator::load(&settings).await.unwrap(),
        _folder: folder,
    }
}

fn claims(subject: &str) -> TokenClaims {
    TokenClaims::new(subject, ISSUER, AUDIENCE, HOUR)
}

fn bearer(token: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
    metadata
}

fn check(fixture: &Fixture, token: &str) -> Result<Caller, AuthError> {
    fixture.authenticator.authenticate_metadata(&bearer(token))
}

#[tokio::test]
async fn user_subject_accepted() {
    let fixture = hs256_fixture().await;
    let user = UserId::parse("id", USER).unwrap();
    for subject in [format!("user:{USER}"), USER.to_owned()] {
        let token = mint_hs256(SECRET, &claims(&subject)).unwrap();
        assert_eq!(check(&fixture, &token), Ok(Caller::User(user)), "{subject}");
    }
}

#[tokio::test]
async fn service_scopes_reach_caller() {
    let fixture = hs256_fixture().await;
    let token = mint_hs256(SECRET, &claims("provisioner")).unwrap();
    let Ok(Caller::Service(account)) = check(&fixture, &token) else {
        panic!("the provisioner was not accepted as a service account");
    };
    assert_eq!(account.name, "provisioner");
    let organization = OrganizationId::parse("id", ORGANIZATION).unwrap();
    assert_eq!(account.scopes, vec![Scope::AdminOrganization(organization)]);
}

#[tokio::test]
async fn unknown_subject_rejected() {
    let fixture = hs256_fixture().await;
    for subject in ["intruder", "user:not-a-uuid", "0190C3A4-5B6E-7F80-9A1B-2C3D4E5F6A70"] {
        let token = mint_hs256(SECRET, &claims(subject)).unwrap();
        assert_eq!(check(&fixture, &token), Err(AuthError::UnknownSubject), "{subject}");
    }
}

#[tokio::test]
async fn missing_token_rejected() {
    let fixture = hs256_fixture().await;
    assert_eq!(
        fixture.authenticator.authenticate_metadata(&MetadataMap::new()),
        Err(AuthError::MissingToken)
    );
    let mut basic = MetadataMap::new();
    basic.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(
        fixture.authenticator.authenticate_metadata(&basic),
        Err(AuthError::MalformedHeader)
    );
}

#[tokio::test]
async fn expired_token_rejected() {
    let fixture = hs256_fixture().await;
    let mut expired = claims("reporting");
    expired.exp -= 2 * 3600;
    let token = mint_hs256(SECRET, &expired).unwrap();
    assert_eq!(check(&fixture, &token), Err(AuthError::Expired));
}

#[tokio::test]
async fn future_token_rejected() {
    let fixture = hs256_fixture().await;
    let mut early = claims("reporting");
    early.nbf = Some(early.iat + 600);
    let token = mint_hs256(SECRET, &early).unwrap();
    assert_eq!(check(&fixture, &token), Err(AuthError::NotYetValid));
}

#[tokio::test]
async fn wrong_audience_rejected() {
    let fixture = hs256_fixture().await;
    let token = mint_hs256(SECRET, &TokenClaims::new("reporting", ISSUER, "mail-backend", HOUR)).unwrap();
    assert_eq!(check(&fixture, &token), Err(AuthError::WrongAudience));
}

#[tokio::test]
async fn wrong_issuer_rejected() {
    let fixture = hs256_fixture().await;
    let token =
        mint_hs256(SECRET, &TokenClaims::new("reporting", "https://evil.test", AUDIENCE, HOUR)).unwrap();
    assert_eq!(check(&fixture, &token), Err(AuthError::WrongIssuer));
}

#[tokio::test]
async fn tampered_token_rejected() {
    let fixture = hs256_fixture().await;
    let token = mint_hs256(SECRET, &claims("reporting")).unwrap();
    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("provisioner")).unwrap());
    let forged = format!("{header}.{forged_claims}.{signature}");
    assert_eq!(check(&fixture, &forged), Err(AuthError::BadSignature));

    let other_secret = mint_hs256(b"another-secret-that-is-long-enough-to-use", &claims("reporting")).unwrap();
    assert_eq!(check(&fixture, &other_secret), Err(AuthError::BadSignature));
}

#[tokio::test]
async fn alg_none_rejected() {
    let fixture = hs256_fixture().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("reporting")).unwrap());
    for token in [format!("{header}.{body}."), format!("{header}.{body}.c2ln")] {
        assert!(
            matches!(check(&fixture, &token), Err(AuthError::AlgorithmRejected { .. })),
            "{token}"
        );
    }
}

#[tokio::test]
async fn other_algorithm_rejected() {
    let fixture = hs256_fixture().await;
    let key = EncodingKey::from_secret(SECRET).unwrap();
    let token = mint(&key, Algorithm::HS512, None, &claims("reporting")).unwrap();
    assert!(matches!(check(&fixture, &token), Err(AuthError::AlgorithmRejected { .. })));
}

#[tokio::test]
async fn garbage_rejected() {
    let fixture = hs256_fixture().await;
    for token in ["abc", "a.b", "a.b.c.d", "!!.e30.e30", &"x".repeat(10_000)] {
        assert!(
            matches!(check(&fixture, token), Err(AuthError::MalformedToken(_))),
            "{token:.20}"
        );
    }
}

#[tokio::test]
async fn errors_never_echo_token() {
    let fixture = hs256_fixture().await;
    let mut expired = claims("reporting");
    expired.exp -= 2 * 3600;
    let token = mint_hs256(SECRET, &expired).unwrap();
    let error = check(&fixture, &token).unwrap_err();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!error.to_string().contains(signature));
    assert!(!format!("{error:?}").contains(signature));
}

#[tokio::test]
async fn short_secret_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let secret = write(folder.path(), "secret", "too-short\n");
    let settings = AuthSettings {
        keys: KeySource::SharedSecretFile(secret),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::ZERO,
        service_accounts_file: None,
    };
    let error = Authenticator::load(&settings).await.unwrap_err();
    assert_eq!(error.setting, "auth_secret_file");
}

/// Generates an ES256 key pair and returns its signing key and public JWK.
fn es256_key() -> (EncodingKey, Jwk) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("signing-1".to_owned());
    (key, jwk)
}

#[tokio::test]
async fn jwks_es256_accepted() {
    let (key, jwk) = es256_key();
    let folder = tempfile::tempdir().unwrap();
    let jwks = write(
        folder.path(),
        "jwks.json",
        &serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    );
    let settings = AuthSettings {
        keys: KeySource::JwksFile(jwks),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::ZERO,
        service_accounts_file: None,
    };
    let authenticator = Authenticator::load(&settings).await.unwrap();
    let user = UserId::parse("id", USER).unwrap();

    let token = mint(&key, Algorithm::ES256, Some("signing-1"), &claims(USER)).unwrap();
    assert_eq!(authenticator.authenticate_metadata(&bearer(&token)), Ok(Caller::User(user)));

    let unnamed = mint(&key, Algorithm::ES256, None, &claims(USER)).unwrap();
    assert_eq!(authenticator.authenticate_metadata(&bearer(&unnamed)), Ok(Caller::User(user)));

    let other_kid = mint(&key, Algorithm::ES256, Some("signing-2"), &claims(USER)).unwrap();
    assert_eq!(
        authenticator.authenticate_metadata(&bearer(&other_kid)),
        Err(AuthError::UnknownKey)
    );

    let (other_key, _) = es256_key();
    let forged = mint(&other_key, Algorithm::ES256, Some("signing-1"), &claims(USER)).unwrap();
    assert_eq!(
        authenticator.authenticate_metadata(&bearer(&forged)),
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn jwks_rejects_hs256_confusion() {
    // A token signed with HS256 using the public key's text as the secret
    // must not pass against a JWKS, whatever the bytes are.
    let (_, jwk) = es256_key();
    let folder = tempfile::tempdir().unwrap();
    let text = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
    let jwks = write(folder.path(), "jwks.json", &text);
    let settings = AuthSettings {
        keys: KeySource::JwksFile(jwks),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::ZERO,
        service_accounts_file: None,
    };
    let authenticator = Authenticator::load(&settings).await.unwrap();
    let token = mint_hs256(text.as_bytes(), &claims(USER)).unwrap();
    assert!(matches!(
        authenticator.authenticate_metadata(&bearer(&token)),
        Err(AuthError::AlgorithmRejected { .. })
    ));
}

#[tokio::test]
async fn service_only_rejects_user() {
    let fixture = hs256_fixture().await;
    let token = mint_hs256(SECRET, &claims(USER)).unwrap();
    assert_eq!(
        fixture.authenticator.authenticate_service(&bearer(&token)),
        Err(AuthError::ServiceAccountRequired)
    );
    let token = mint_hs256(SECRET, &claims("reporting")).unwrap();
    assert!(fixture.authenticator.authenticate_service(&bearer(&token)).is_ok());
}

#[tokio::test]
async fn dev_credentials_created_once() {
    let folder = tempfile::tempdir().unwrap();
    let first = DevCredentials::ensure(folder.path()).unwrap();
    let secret = std::fs::read(&first.secret_file).unwrap();
    let token = std::fs::read_to_string(&first.token_file).unwrap();

    let second = DevCredentials::ensure(folder.path()).unwrap();
    assert_eq!(first, second);
    assert_eq!(std::fs::read(&second.secret_file).unwrap(), secret);
    assert_eq!(std::fs::read_to_string(&second.token_file).unwrap(), token);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [&first.secret_file, &first.token_file] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }

    let authenticator = Authenticator::load(&first.settings()).await.unwrap();
    let Ok(Caller::Service(owner)) = authenticator.authenticate_metadata(&bearer(token.trim())) else {
        panic!("the development owner token was not accepted");
    };
    assert_eq!(owner.scopes, vec![Scope::AdminAll]);
}

#[tokio::test]
async fn dev_token_renewed_when_invalid() {
    let folder = tempfile::tempdir().unwrap();
    let first = DevCredentials::ensure(folder.path()).unwrap();
    std::fs::write(&first.token_file, "garbage\n").unwrap();
    DevCredentials::ensure(folder.path()).unwrap();
    let token = std::fs::read_to_string(&first.token_file).unwrap();
    assert_ne!(token, "garbage\n");
    let authenticator = Authenticator::load(&first.settings()).await.unwrap();
    assert!(authenticator.authenticate_metadata(&bearer(token.trim())).is_ok());
}
