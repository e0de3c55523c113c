//! Keys fetched from a JWKS URL: a local https server on 127.0.0.1 with a
//! certificate from a test authority serves the key set, and the
//! authenticator trusts that authority through its CA file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use workteams_auth::jwt::jwk::{Jwk, JwkSet};
use workteams_auth::jwt::{Algorithm, EncodingKey};
use workteams_auth::{AuthSettings, Authenticator, KeySource, TokenClaims, mint};
use workteams_domain::{Caller, UserId};

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "workteams-directory";
const USER: &str = "0190c3a4-5b6e-7f80-9a1b-2c3d4e5f6a70";

/// Serves `body` as JSON over TLS to every connection until the task is
/// aborted.
async fn serve_jwks(body: String) -> (u16, String, tokio::task::JoinHandle<()>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(server.der().to_vec())],
        PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = [0_u8; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, ca.pem(), task)
}

#[tokio::test]
async fn jwks_url_keys_verify() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("url-key".to_owned());
    let body = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
    let (port, ca_pem, server) = serve_jwks(body).await;

    let folder = tempfile::tempdir().unwrap();
    let ca_file = folder.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let settings = AuthSettings {
        keys: KeySource::JwksUrl {
            url: format!("https://localhost:{port}/jwks.json"),
            refresh: Duration::from_secs(300),
            ca_file: Some(ca_file),
        },
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::ZERO,
        service_accounts_file: None,
    };
    let authenticator = Authenticator::load(&settings).await.unwrap();

    let claims = TokenClaims::new(USER, ISSUER, AUDIENCE, Duration::from_secs(3600));
    let token = mint(&key, Algorithm::ES256, Some("url-key"), &claims).unwrap();
    let mut metadata = MetadataMap::new();
    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(
        authenticator.authenticate_metadata(&metadata),
        Ok(Caller::User(UserId::parse("id", USER).unwrap()))
    );

    server.abort();
}

#[tokio::test]
async fn jwks_url_untrusted_certificate_rejected() {
    let (port, _, server) = serve_jwks(r#"{"keys":[]}"#.to_owned()).await;
    let settings = AuthSettings {
        keys: KeySource::JwksUrl {
            url: format!("https://localhost:{port}/jwks.json"),
            refresh: Duration::from_secs(300),
            ca_file: None,
        },
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::ZERO,
        service_accounts_file: None,
    };
    let error = Authenticator::load(&settings).await.unwrap_err();
    assert_eq!(error.setting, "auth_jwks_url");
    server.abort();
}
