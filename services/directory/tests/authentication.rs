//! Authentication of directory calls on a real server. Every kind of bad
//! credential gets UNAUTHENTICATED, and the token's subject becomes the
//! recorded actor. Callers are rate-limited while health and reflection stay
//! open. Mutual TLS rejects clients without a certificate, and the binary
//! does not start without authentication.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;
use workteams_auth::{AuthSettings, KeySource, RateLimit, TokenClaims, mint_hs256};
use workteams_directory::{Authentication, TlsSettings};
use workteams_proto::directory::v1 as proto;
use workteams_storage::testing::TestDatabase;

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "workteams-directory";
const SECRET: &str = "directory-test-secret-0123456789abcdef";
const ADMIN: &str = "provisioner";
const READER: &str = "reporting";
const HOUR: Duration = Duration::from_secs(3600);

/// Writes the secret and service-accounts files, and returns the settings.
fn auth_settings(folder: &Path) -> AuthSettings {
    let secret = folder.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let accounts = folder.join("accounts.yaml");
    std::fs::write(
        &accounts,
        format!(
            "service_accounts:\n  - name: {ADMIN}\n    scopes: [admin]\n  - name: {READER}\n    scopes: [read]\n"
        ),
    )
    .unwrap();
    AuthSettings {
        keys: KeySource::SharedSecretFile(secret),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway: Duration::ZERO,
        service_accounts_file: Some(accounts),
    }
}

async fn start_authenticated(folder: &Path, rate_limit: Option<RateLimit>) -> TestServer {
    let settings = auth_settings(folder);
    TestServer::start_with(TestDatabase::sqlite(), move |config| {
        config.authentication = Authentication::Tokens(settings);
        config.rate_limit = rate_limit;
    })
    .await
}

fn token(claims: &TokenClaims) -> String {
    mint_hs256(SECRET.as_bytes(), claims).unwrap()
}

fn valid(subject: &str) -> TokenClaims {
    TokenClaims::new(subject, ISSUER, AUDIENCE, HOUR)
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn get_revision(server: &TestServer, token: Option<&str>) -> Result<proto::GetRevisionResponse, Status> {
    let mut client = server.new_client().await;
    let request = match token {
        Some(token) => with_token(proto::GetRevisionRequest {}, token),
        None => Request::new(proto::GetRevisionRequest {}),
    };
    client.get_revision(request).await.map(tonic::Response::into_inner)
}

fn assert_unauthenticated(status: &Status, reason: &str, case: &str) {
    assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(info.map(|info| info.reason), Some(reason.to_owned()), "{case}");
}

#[tokio::test]
async fn missing_token_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let server = start_authenticated(folder.path(), None).await;

    let status = get_revision(&server, None).await.unwrap_err();
    assert_unauthenticated(&status, "MISSING_TOKEN", "no token");
    assert!(status.message().contains("Bearer"), "{}", status.message());

    let mut client = server.new_client().await;
    let create = client
        .create_organization(proto::CreateOrganizationRequest {
            name: unique("anonymous"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_unauthenticated(&create, "MISSING_TOKEN", "anonymous write");

    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let server = start_authenticated(folder.path(), None).await;

    let mut expired = valid(ADMIN);
    expired.exp = expired.iat - 60;
    let mut early = valid(ADMIN);
    early.nbf = Some(early.iat + 600);
    let wrong_audience = TokenClaims::new(ADMIN, ISSUER, "mail-backend", HOUR);
    let wrong_issuer = TokenClaims::new(ADMIN, "https://evil.test", AUDIENCE, HOUR);

    let reader = token(&valid(READER));
    let (header, rest) = reader.split_once('.').unwrap();
    let signature = rest.rsplit('.').next().unwrap();
    let escalated = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&valid(ADMIN)).unwrap());
    let tampered = format!("{header}.{escalated}.{signature}");

    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{escalated}.");

    let cases = [
        ("expired", token(&expired), "TOKEN_EXPIRED"),
        ("not yet valid", token(&early), "TOKEN_NOT_YET_VALID"),
        ("wrong audience", token(&wrong_audience), "WRONG_AUDIENCE"),
        ("wrong issuer", token(&wrong_issuer), "WRONG_ISSUER"),
        ("tampered signature", tampered, "BAD_SIGNATURE"),
        ("alg none", unsigned, "ALGORITHM_REJECTED"),
        ("unknown subject", token(&valid("intruder")), "UNKNOWN_SUBJECT"),
        ("not a jwt", "not-a-jwt".to_owned(), "MALFORMED_TOKEN"),
    ];
    for (case, bad_token, reason) in cases {
        let status = get_revision(&server, Some(&bad_token)).await.unwrap_err();
        assert_unauthenticated(&status, reason, case);
        assert!(
            !status.message().contains(&bad_token),
            "{case}: the message repeats the token"
        );
    }

    server.stop().await;
}

#[tokio::test]
async fn service_token_names_actor() {
    let folder = tempfile::tempdir().unwrap();
    let server = start_authenticated(folder.path(), None).await;
    let admin = token(&valid(ADMIN));
    let mut client = server.new_client().await;

    let start = get_revision(&server, Some(&admin)).await.unwrap();
    let mut watch = client
        .watch(with_token(
            proto::WatchRequest {
                from_consistency_token: start.consistency_token.clone(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();

    let mut request = with_token(
        proto::CreateOrganizationRequest {
            name: unique("service"),
            ..Default::default()
        },
        &admin,
    );
    // A client-chosen actor must not override the authenticated caller.
    request
        .metadata_mut()
        .insert("x-workteams-actor", "mallory".parse().unwrap());
    client.create_organization(request).await.unwrap();

    let batch = loop {
        let message = tokio::time::timeout(Duration::from_secs(30), watch.message())
            .await
            .expect("no change batch arrived")
            .unwrap()
            .expect("the stream ended");
        if let Some(batch) = message.batches.into_iter().next() {
            break batch;
        }
    };
    assert_eq!(batch.actor, format!("service:{ADMIN}"));

    server.stop().await;
}

#[tokio::test]
async fn user_token_authenticates() {
    let folder = tempfile::tempdir().unwrap();
    let server = start_authenticated(folder.path(), None).await;
    let user = "0190c3a4-5b6e-7f80-9a1b-2c3d4e5f6a70";

    // What a user may read is the authorization rules' concern; here the
    // call only has to get past authentication.
    for subject in [format!("user:{user}"), user.to_owned()] {
        let outcome = get_revision(&server, Some(&token(&valid(&subject)))).await;
        if let Err(status) = outcome {
            assert_ne!(status.code(), Code::Unauthenticated, "{subject}: {status:?}");
        }
    }

    server.stop().await;
}

#[tokio::test]
async fn health_and_reflection_open() {
    let folder = tempfile::tempdir().unwrap();
    let server = start_authenticated(folder.path(), None).await;
    let channel = Endpoint::from_shared(server.channel_address())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = HealthClient::new(channel.clone());
    let response = health
        .check(HealthCheckRequest {
            service: "workteams.directory.v1.DirectoryService".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, 1);

    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(responses.message().await.unwrap().is_some());

    server.stop().await;
}

#[tokio::test]
async fn rate_limit_exceeded() {
    let folder = tempfile::tempdir().unwrap();
    let limit = RateLimit {
        per_second: NonZeroU32::MIN,
        burst: NonZeroU32::new(3).unwrap(),
    };
    let server = start_authenticated(folder.path(), Some(limit)).await;
    let admin = token(&valid(ADMIN));
    let reader = token(&valid(READER));

    // One call per second refills the bucket far slower than these calls
    // drain it, so a call soon after the first three is rejected.
    let mut rejected = None;
    for _ in 0..20 {
        if let Err(status) = get_revision(&server, Some(&admin)).await {
            rejected = Some(status);
            break;
        }
    }
    let status = rejected.expect("the rate limit never applied");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_error_details().retry_info().cloned();
    assert!(retry.and_then(|retry| retry.retry_delay).is_some(), "no retry hint");

    // Another caller has its own bucket.
    get_revision(&server, Some(&reader)).await.unwrap();

    server.stop().await;
}

/// A certificate authority, a server certificate for 127.0.0.1 and a client
/// certificate, all generated for the test.
struct TestPki {
    ca_pem: String,
    server_cert: PathBuf,
    server_key: PathBuf,
    ca_file: PathBuf,
    client_cert_pem: String,
    client_key_pem: String,
}

fn generate_pki(folder: &Path) -> TestPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Work Teams test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();

    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "provisioner");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();

    let write = |name: &str, text: &str| {
        let path = folder.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    TestPki {
        ca_pem: ca.pem(),
        ca_file: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server.pem()),
        server_key: write("server-key.pem", &server_key.serialize_pem()),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

async fn tls_health(address: std::net::SocketAddr, tls: ClientTlsConfig) -> Result<(), String> {
    let endpoint = Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|error| error.to_string())?;
    let channel = endpoint.connect().await.map_err(|error| format!("{error:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
        .map_err(|status| format!("{status:?}"))
}

#[tokio::test]
async fn mutual_tls_requires_client_certificate() {
    let folder = tempfile::tempdir().unwrap();
    let pki = generate_pki(folder.path());
    let settings = auth_settings(folder.path());
    let tls = TlsSettings {
        cert_file: pki.server_cert.clone(),
        key_file: pki.server_key.clone(),
        client_ca_file: Some(pki.ca_file.clone()),
    };
    let database = TestDatabase::sqlite();
    let mut config = test_config(&database, folder.path());
    config.authentication = Authentication::Tokens(settings);
    config.tls = Some(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(workteams_directory::serve(config, listener, async {
        let _ = stopped.await;
    }));
    wait_for_port(address).await;

    let anonymous = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    assert!(
        tls_health(address, anonymous).await.is_err(),
        "a client without a certificate was served"
    );

    let with_certificate = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(&pki.client_cert_pem, &pki.client_key_pem));
    tls_health(address, with_certificate).await.unwrap();

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    database.cleanup().await;
}

/// Waits until the server accepts TCP connections; it migrates first.
async fn wait_for_port(address: std::net::SocketAddr) {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never accepted connections on {address}");
}

/// Runs the binary with `args` and no authentication variables, and returns
/// its exit status (when it exited by itself) and its output so far.
fn run_binary(args: &[&str], wait_for: Option<&str>) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workteams-directory"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("WORKTEAMS_DIRECTORY_INSECURE_NO_AUTH")
        .env_remove("WORKTEAMS_DIRECTORY_AUTH_SECRET_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let Some(marker) = wait_for else {
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        return (output.status.code(), text);
    };

    let stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            break;
        }
    }
    // The child was started by this test, so it is stopped by its own id.
    let _ = child.kill();
    let _ = child.wait();
    (None, seen)
}

#[test]
fn binary_without_auth_exits_64() {
    let data_dir = tempfile::tempdir().unwrap();
    let (code, output) = run_binary(
        &["--listen-address", "127.0.0.1:0", "--data-dir", data_dir.path().to_str().unwrap()],
        None,
    );
    assert_eq!(code, Some(64), "{output}");
    assert!(output.contains("auth_secret_file"), "{output}");
    assert!(output.contains("--insecure-no-auth"), "{output}");
}

#[test]
fn binary_insecure_flag_warns() {
    let data_dir = tempfile::tempdir().unwrap();
    let (_, output) = run_binary(
        &[
            "--listen-address",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.path().to_str().unwrap(),
            "--insecure-no-auth",
        ],
        Some("directory serving"),
    );
    let warning = output
        .lines()
        .find(|line| line.contains("authentication is off"))
        .unwrap_or_else(|| panic!("no warning in {output}"));
    assert!(warning.contains("WARN"), "{warning}");
}

#[test]
fn binary_missing_secret_exits_64() {
    let data_dir = tempfile::tempdir().unwrap();
    let missing = data_dir.path().join("no-such-secret");
    let (code, output) = run_binary(
        &[
            "--listen-address",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.path().to_str().unwrap(),
            "--auth-secret-file",
            missing.to_str().unwrap(),
            "--auth-issuer",
            ISSUER,
            "--auth-audience",
            AUDIENCE,
        ],
        None,
    );
    assert_eq!(code, Some(64), "{output}");
    assert!(output.contains("auth_secret_file"), "{output}");
}
