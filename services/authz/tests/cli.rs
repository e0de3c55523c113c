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
        .env_remove("WORKTEAMS_AUTHZ_METRICS_LISTEN")
        .env_remove("WORKTEAMS_AUTHZ_EXT_AUTHZ_CONFIG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .output()
        .expect("run workteams-authz")
}

/// Runs the binary and returns its stderr after checking it exited with 64.
fn usage_error(arguments: &[&str]) -> String {
    let output = run(arguments);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    stderr
}

#[test]
fn bad_operations_settings_exit_64() {
    let cases: [(&[&str], &str); 6] = [
        (&["--metrics-listen", "localhost"], "--metrics-listen"),
        (&["--metrics-listen", "127.0.0.1:50152"], "--metrics-listen"),
        (&["--unix-socket-mode", "0999"], "--unix-socket-mode"),
        (&["--concurrency-limit", "0"], "--concurrency-limit"),
        (&["--shutdown-grace-period", "0s"], "--shutdown-grace-period"),
        (&["--default-deadline", "0s"], "--default-deadline"),
    ];
    for (arguments, setting) in cases {
        let stderr = usage_error(arguments);
        assert!(stderr.contains(setting), "{arguments:?}: {stderr}");
    }
}

#[test]
fn missing_mapping_file_exits_64() {
    let stderr = usage_error(&["--ext-authz-config", "/nonexistent/ext-authz.yaml"]);
    assert!(stderr.contains("--ext-authz-config"), "{stderr}");
}

#[test]
fn mapping_with_unknown_permission_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ext-authz.yaml");
    std::fs::write(
        &path,
        "organization: acme\nuser: {header: x-user-id}\nmethods: {GET: read, POST: write}\n\
         routes: [{template: '/mailboxes/{mailbox}', resource_type: mail.mailbox}]\n",
    )
    .unwrap();

    let stderr = usage_error(&["--ext-authz-config", path.to_str().unwrap()]);

    assert!(stderr.contains("--ext-authz-config"), "{stderr}");
    assert!(stderr.contains("\"write\""), "{stderr}");
}

#[test]
fn bad_otel_variable_exits_64() {
    let output = Command::new(env!("CARGO_BIN_EXE_workteams-authz"))
        .env_remove("WORKTEAMS_AUTHZ_LISTEN")
        .env_remove("WORKTEAMS_DIRECTORY_ADDRESS")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
        .output()
        .expect("run workteams-authz");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{stderr}");
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

#[test]
fn sigterm_stops_with_status_zero() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut child = Command::new(env!("CARGO_BIN_EXE_workteams-authz"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        // Nothing listens there, so the follower keeps retrying while the
        // server runs.
        .args(["--directory-address", "http://127.0.0.1:1"])
        .env_remove("WORKTEAMS_AUTHZ_EXT_AUTHZ_CONFIG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start workteams-authz");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let started = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("authorization sidecar started"));
    assert!(started, "the sidecar exited before serving");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // Guards against a hang only; shutdown takes milliseconds.
    let give_up = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("the sidecar did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
