//! Tokens and credentials must never appear in an error or a log line: the
//! servers run with every log line captured while tampered and forged
//! tokens are sent to them.
//!
//! This is its own test binary because it installs the process-wide log
//! subscriber: the SQLite driver runs queries on its own threads, which a
//! thread-local subscriber would not see.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use tonic::{Code, Request, Status};
use tonic_types::StatusExt;
use workteams_proto::authz::v1 as authz;
use workteams_proto::directory::v1 as directory;
use workteams_tests::testing::TestDatabase;
use workteams_tests::{
    Stack, TEST_ADMIN_ACCOUNT, fresh_as, minimize_latency, resource_id, test_auth, user_id, user_login,
};

/// A log sink shared between the subscriber and the test.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Flips one character in the middle of a token, keeping it well-formed
/// base64, so the decoder reaches its checksum or signature check.
fn tamper(token: &str) -> String {
    let mut characters: Vec<char> = token.chars().collect();
    let middle = characters.len() / 2;
    characters[middle] = if characters[middle] == 'A' { 'B' } else { 'A' };
    characters.into_iter().collect()
}

/// Length of the token pieces searched for: errors shorten long values, so a
/// leak may show only the start of a token.
const PIECE_CHARS: usize = 16;

/// Checks whether `text` contains any piece of `token` of [`PIECE_CHARS`]
/// characters. Pieces start every half piece, so every leaked run of 24
/// characters or more contains one.
fn contains_piece_of(text: &str, token: &str) -> bool {
    let characters: Vec<char> = token.chars().collect();
    let last_start = characters.len().saturating_sub(PIECE_CHARS);
    (0..=last_start).step_by(PIECE_CHARS / 2).any(|start| {
        let end = (start + PIECE_CHARS).min(characters.len());
        let piece: String = characters[start..end].iter().collect();
        text.contains(&piece)
    })
}

#[test]
fn piece_search_finds_shortened_token() {
    let token = "wtp1.".to_owned() + &"AbCdEfGh".repeat(12);
    let shortened: String = token.chars().take(80).collect();
    let message = format!("invalid page_token \"{shortened}…\": not a page token");

    assert!(contains_piece_of(&message, &token));
    assert!(!contains_piece_of("invalid page_token \"<101 characters, not shown>\"", &token));
}

#[track_caller]
fn assert_token_absent(status: &Status, tokens: &[&str]) {
    let details = format!("{:?}", status.get_error_details());
    for token in tokens {
        assert!(
            !contains_piece_of(status.message(), token),
            "the error message repeats part of a token: {}",
            status.message()
        );
        assert!(!contains_piece_of(&details, token), "the error details repeat part of a token: {details}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_absent_from_logs_and_errors() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");

    let database = TestDatabase::sqlite();
    let stack = Stack::start(&database).await;
    let admin = &stack.admin;
    let organization = admin.organization("acme").await;
    for name in ["platform", "security", "support"] {
        admin.team(&organization.id, name, None, &[]).await;
    }

    let page = admin
        .client
        .clone()
        .list_teams(directory::ListTeamsRequest {
            organization_id: organization.id.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("ListTeams")
        .into_inner();
    let page_token = page.next_page_token;
    let tampered_page_token = tamper(&page_token);
    let status = admin
        .client
        .clone()
        .list_teams(directory::ListTeamsRequest {
            organization_id: organization.id.clone(),
            page_size: 1,
            page_token: tampered_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_token_absent(&status, &[&page_token, &tampered_page_token]);

    let head = admin.head().await;
    let tampered_head = tamper(&head);
    let status = stack
        .authz
        .try_check(
            user_id(&uuid::Uuid::now_v7().to_string()),
            resource_id(&uuid::Uuid::now_v7().to_string()),
            "read",
            fresh_as(&tampered_head),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_token_absent(&status, &[&tampered_head]);

    let watch = admin
        .client
        .clone()
        .watch(directory::WatchRequest {
            from_consistency_token: tampered_head.clone(),
            ..Default::default()
        })
        .await;
    let status = match watch {
        Ok(mut stream) => stream.get_mut().message().await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_token_absent(&status, &[&tampered_head]);

    let sidecar_page_token = format!("wtp1.{}", tamper(&page_token));
    let status = stack
        .authz
        .client
        .clone()
        .list_effective_access(authz::ListEffectiveAccessRequest {
            target: Some(authz::list_effective_access_request::Target::User(user_login("ada"))),
            page_token: sidecar_page_token.clone(),
            consistency: Some(minimize_latency()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_token_absent(&status, &[&sidecar_page_token]);

    // A valid token with one character changed, and a token shaped like a
    // JWT that no configured key signed.
    let admin_token = test_auth().token(TEST_ADMIN_ACCOUNT);
    let forged_token = tamper(&admin_token);
    let unsigned_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLW9mLW1hbGxvcnk";
    for bearer in [forged_token.as_str(), unsigned_token] {
        let mut request = Request::new(directory::GetRevisionRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
        let status = stack
            .directory
            .anonymous_client()
            .await
            .get_revision(request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_token_absent(&status, &[bearer]);
    }

    stack.stop().await;
    database.cleanup().await;

    let captured = logs.text();
    assert!(!captured.is_empty(), "the subscriber captured no log lines");
    // The admin token was valid and sent with every admin call, so it must
    // not be logged either.
    let tokens: [&str; 7] = [
        &page_token,
        &tampered_page_token,
        &tampered_head,
        &sidecar_page_token,
        &admin_token,
        &forged_token,
        unsigned_token,
    ];
    for token in tokens {
        assert!(!contains_piece_of(&captured, token), "a log line contains part of the token {token}");
    }
}
