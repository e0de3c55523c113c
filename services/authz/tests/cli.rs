//! The `workteams-authz` binary rejects bad settings before binding, with
//! exit status 64 and a message naming the setting.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Command, Output};

fn run(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workteams-authz"))
        .args(arguments)
        .env_remove("WORKTEAMS_AUTHZ_LISTEN")
        .env_remove("WORKTEAMS_DIRECTORY_ADDRESS")
        .env_remove("WORKTEAMS_AUTHZ_ORGANIZATION_ID")
        .output()
        .expect("run workteams-authz")
}

#[test]
fn unparsable_duration_exits_64() {
    let output = run(&["--max-staleness", "soon"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr.contains("--max-staleness"), "{stderr}");
}

#[test]
fn public_listen_exits_64() {
    let output = run(&["--listen", "0.0.0.0:50152"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn https_directory_exits_64() {
    let output = run(&["--directory-address", "https://127.0.0.1:50151"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr.contains("--directory-address"), "{stderr}");
}

#[test]
fn help_exits_zero() {
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
}
