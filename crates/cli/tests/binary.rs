//! The `workteams` binary itself: exit statuses of `check` and the JSON of
//! the read commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use workteams_cli::sync::SyncOptions;

use support::{Services, all_services, examples};

/// Runs the binary on a blocking thread, so the servers, which run on this
/// test's runtime, keep serving meanwhile.
async fn workteams(services: &Services, arguments: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_workteams"));
    command
        .arg("--directory")
        .arg(&services.endpoints.directory)
        .arg("--authz")
        .arg(&services.endpoints.authz)
        .arg("--data-dir")
        .arg(&services.endpoints.data_dir)
        .args(arguments);
    tokio::task::spawn_blocking(move || command.output().expect("run workteams"))
        .await
        .expect("the command thread")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn started() -> Vec<Services> {
    let mut all = Vec::new();
    for services in all_services().await {
        let company = examples().join("company.yaml");
        services
            .apply(&company, SyncOptions::default())
            .await
            .0
            .expect("apply");
        all.push(services);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exit_statuses() {
    for services in started().await {
        let base = [
            "check",
            "--org",
            "lumen-studio",
            "--resource",
            "kdrive.folder:1001",
        ];

        let allowed = workteams(
            &services,
            &[&base[..], &["--user", "marc", "--permission", "modify"]].concat(),
        )
        .await;
        assert_eq!(
            allowed.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&allowed.stderr)
        );
        let text = String::from_utf8_lossy(&allowed.stdout);
        assert!(text.starts_with("allowed:"), "{text}");
        assert!(text.contains("team Design: view, modify"), "{text}");

        let denied = workteams(
            &services,
            &[&base[..], &["--user", "lea", "--permission", "modify"]].concat(),
        )
        .await;
        assert_eq!(denied.status.code(), Some(1));
        let text = String::from_utf8_lossy(&denied.stdout);
        assert!(text.starts_with("denied:"), "{text}");
        assert!(text.contains("individual grant: view"), "{text}");

        let failed = workteams(
            &services,
            &[
                "check",
                "--org",
                "lumen-studio",
                "--user",
                "marc",
                "--resource",
                "nonsense",
                "--permission",
                "x",
            ],
        )
        .await;
        assert_eq!(failed.status.code(), Some(2));
        services.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_json_has_decision() {
    for services in started().await {
        let output = workteams(
            &services,
            &[
                "check",
                "--org",
                "lumen-studio",
                "--user",
                "lea",
                "--resource",
                "kdrive.folder:1001",
                "--permission",
                "modify",
                "--output",
                "json",
            ],
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let decision = json(&output);
        assert_eq!(decision["allowed"], Value::Bool(false));
        assert_eq!(decision["level"], Value::String("view".to_owned()));
        assert_eq!(
            decision["deny_reason"],
            Value::String("individual_override".to_owned())
        );
        services.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_json_lists_held_resources() {
    for services in started().await {
        let output = workteams(
            &services,
            &[
                "access",
                "--org",
                "lumen-studio",
                "--user",
                "lea",
                "--output",
                "json",
            ],
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let entries = json(&output);
        let entries = entries.as_array().expect("array");

        let projects = entries
            .iter()
            .find(|entry| entry["type"] == "kdrive.folder" && entry["resource"] == "1001")
            .expect("Projects is listed");
        assert_eq!(projects["level"], Value::String("view".to_owned()));
        assert_eq!(projects["permissions"], serde_json::json!(["view"]));

        let mailbox = entries
            .iter()
            .find(|entry| {
                entry["type"] == "mail.mailbox" && entry["resource"] == "hello@lumen.example"
            })
            .expect("the contact mailbox is listed");
        assert_eq!(mailbox["level"], Value::Null);
        assert_eq!(mailbox["permissions"], serde_json::json!(["read"]));

        let finance = entries
            .iter()
            .any(|entry| entry["type"] == "kdrive.folder" && entry["resource"] == "1003");
        assert!(
            !finance,
            "Finance breaks inheritance and grants Léa nothing"
        );
        services.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_json_explains_each_user() {
    for services in started().await {
        let output = workteams(
            &services,
            &[
                "who",
                "--org",
                "lumen-studio",
                "--resource",
                "kdrive.folder:1004",
                "--output",
                "json",
            ],
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let entries = json(&output);
        let users: Vec<&str> = entries
            .as_array()
            .expect("array")
            .iter()
            .map(|entry| entry["user"].as_str().expect("login"))
            .collect();
        assert_eq!(users, vec!["claire"]);
        let claire = &entries[0];
        assert_eq!(claire["level"], Value::String("manage".to_owned()));
        assert_eq!(
            claire["reasons"][0]["team"],
            Value::String("Finance".to_owned())
        );
        assert_eq!(
            claire["reasons"][0]["resource"],
            Value::String("1003".to_owned())
        );
        services.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_add_is_read_back() {
    for services in started().await {
        let added = workteams(
            &services,
            &[
                "members",
                "add",
                "--org",
                "lumen-studio",
                "Finance",
                "sofia",
            ],
        )
        .await;
        assert_eq!(
            added.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );

        // The stored token makes the next read see the new membership.
        let check = workteams(
            &services,
            &[
                "check",
                "--org",
                "lumen-studio",
                "--user",
                "sofia",
                "--resource",
                "kdrive.folder:1003",
                "--permission",
                "manage",
            ],
        )
        .await;
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );

        let listed = workteams(
            &services,
            &[
                "members",
                "list",
                "--org",
                "lumen-studio",
                "Finance",
                "--output",
                "json",
            ],
        )
        .await;
        let members = json(&listed);
        let logins: Vec<&str> = members
            .as_array()
            .expect("array")
            .iter()
            .map(|member| member["login"].as_str().expect("login"))
            .collect();
        assert_eq!(logins, vec!["claire", "sofia", "theo"]);
        services.stop().await;
    }
}
