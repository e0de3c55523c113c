//! Measures how long a directory write takes to become visible in the
//! sidecar, with both servers running in this process on 127.0.0.1.
//!
//! Each round grants or revokes one mailbox permission through the
//! directory, then sends the sidecar a check at the write's consistency
//! token. The sidecar returns the decision as soon as its index has applied
//! the write.
//!
//! ```text
//! cargo run -p workteams-authz --example visibility -- [sqlite|postgres] [ROUNDS]
//! ```
//!
//! `postgres` needs `WORKTEAMS_TEST_DATABASE_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/postgres`); a fresh database is
//! created on that server and dropped afterwards. ROUNDS defaults to 500
//! and is capped at 10,000 so a run stays bounded.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use workteams_authz::AuthzConfig;
use workteams_directory::{Authentication, DirectoryConfig};
use workteams_proto::authz::v1 as authz;
use workteams_proto::authz::v1::authorization_service_client::AuthorizationServiceClient;
use workteams_proto::directory::v1 as directory;
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use workteams_storage::testing::TestDatabase;

const MAX_ROUNDS: usize = 10_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let backend = arguments.next().unwrap_or_else(|| "sqlite".to_owned());
    let rounds: usize = arguments
        .next()
        .map(|text| text.parse().expect("ROUNDS must be a number"))
        .unwrap_or(500)
        .min(MAX_ROUNDS);

    let database = match backend.as_str() {
        "sqlite" => TestDatabase::sqlite(),
        "postgres" => {
            let server = TestDatabase::postgres_server_url().expect("set WORKTEAMS_TEST_DATABASE_URL for postgres");
            TestDatabase::postgres(&server).await.expect("create a PostgreSQL database")
        }
        other => panic!("unknown backend {other:?}; use sqlite or postgres"),
    };

    let report = measure(&database, rounds).await;
    println!("backend: {backend}, rounds: {rounds}");
    report.print();
    database.cleanup().await;
}

/// Latencies of each round, in microseconds.
struct Report {
    write: Vec<u64>,
    visible_after_ack: Vec<u64>,
    write_to_visible: Vec<u64>,
}

impl Report {
    fn print(mut self) {
        println!("{:<36} {:>8} {:>8} {:>8} {:>8}", "microseconds", "p50", "p90", "p99", "max");
        for (name, samples) in [
            ("directory write (request to ack)", &mut self.write),
            ("ack to visible in sidecar", &mut self.visible_after_ack),
            ("write request to visible", &mut self.write_to_visible),
        ] {
            samples.sort_unstable();
            println!(
                "{name:<36} {:>8} {:>8} {:>8} {:>8}",
                percentile(samples, 50),
                percentile(samples, 90),
                percentile(samples, 99),
                samples.last().copied().unwrap_or(0)
            );
        }
    }
}

fn percentile(sorted: &[u64], percent: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

async fn measure(database: &TestDatabase, rounds: usize) -> Report {
    let directory_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let directory_address = directory_listener.local_addr().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let directory_config = DirectoryConfig {
        listen_address: directory_address,
        database_url: database.url().to_owned(),
        authentication: Authentication::InsecureNoAuth,
        rate_limit: None,
        ..DirectoryConfig::with_data_dir(data_dir.path().to_path_buf())
    };
    let (stop_directory, directory_stopped) = oneshot::channel::<()>();
    let directory_task = tokio::spawn(workteams_directory::serve(directory_config, directory_listener, async {
        let _ = directory_stopped.await;
    }));

    let sidecar_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sidecar_address = sidecar_listener.local_addr().unwrap();
    let sidecar_config = AuthzConfig {
        directory_address: format!("http://{directory_address}"),
        ..AuthzConfig::default()
    };
    let (stop_sidecar, sidecar_stopped) = oneshot::channel::<()>();
    let sidecar_task = tokio::spawn(workteams_authz::serve(sidecar_config, sidecar_listener, async {
        let _ = sidecar_stopped.await;
    }));

    let mut admin = DirectoryServiceClient::new(connect(&format!("http://{directory_address}")).await);
    let mut checks = AuthorizationServiceClient::new(connect(&format!("http://{sidecar_address}")).await);

    let organization = admin
        .create_organization(directory::CreateOrganizationRequest {
            name: "bench".to_owned(),
            display_name: "Bench".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
        .id;
    let user = admin
        .create_user(directory::CreateUserRequest {
            login: "ada".to_owned(),
            email: "ada@example.com".to_owned(),
            display_name: "Ada".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .id;
    admin
        .add_organization_member(directory::AddOrganizationMemberRequest {
            organization_id: organization.clone(),
            user_id: user.clone(),
            role: directory::MemberRole::Collaborator.into(),
            status: directory::MemberStatus::Active.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mailbox = admin
        .create_resource(directory::CreateResourceRequest {
            organization_id: organization.clone(),
            resource: Some(directory::NewResource {
                resource_type: "mail.mailbox".to_owned(),
                external_id: "ada@example.com".to_owned(),
                display_name: "Ada".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap()
        .id;
    let subject = directory::Subject {
        kind: Some(directory::subject::Kind::UserId(user.clone())),
    };

    let mut report = Report {
        write: Vec::with_capacity(rounds),
        visible_after_ack: Vec::with_capacity(rounds),
        write_to_visible: Vec::with_capacity(rounds),
    };
    for round in 0..rounds {
        let granting = round % 2 == 0;

        let started = Instant::now();
        let token = if granting {
            admin
                .grant_access(directory::GrantAccessRequest {
                    resource_id: mailbox.clone(),
                    subject: Some(subject.clone()),
                    permissions: vec!["read".to_owned()],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .consistency_token
        } else {
            admin
                .revoke_access(directory::RevokeAccessRequest {
                    resource_id: mailbox.clone(),
                    subject: Some(subject.clone()),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .consistency_token
        };
        let acknowledged = Instant::now();

        let check = checks
            .check_access(authz::CheckAccessRequest {
                user: Some(authz::UserRef {
                    kind: Some(authz::user_ref::Kind::Id(user.clone())),
                }),
                resource: Some(authz::ResourceRef {
                    kind: Some(authz::resource_ref::Kind::Id(mailbox.clone())),
                }),
                permission: "read".to_owned(),
                consistency: Some(authz::Consistency {
                    requirement: Some(authz::consistency::Requirement::AtLeastAsFresh(token)),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        let visible = Instant::now();
        assert_eq!(check.allowed, granting, "round {round} saw the wrong decision");

        report.write.push(micros(acknowledged - started));
        report.visible_after_ack.push(micros(visible - acknowledged));
        report.write_to_visible.push(micros(visible - started));
    }

    let _ = stop_sidecar.send(());
    let _ = stop_directory.send(());
    sidecar_task.await.unwrap().unwrap();
    directory_task.await.unwrap().unwrap();
    report
}

async fn connect(url: &str) -> tonic::transport::Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).unwrap().tcp_nodelay(true);
    for _ in 0..500 {
        if let Ok(channel) = endpoint.connect().await {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("cannot connect to {url}");
}
