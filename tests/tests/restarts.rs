//! Restarts: a new sidecar catches up from a snapshot, and a sidecar keeps
//! serving checks while the directory restarts, then resumes its change
//! stream.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use workteams_proto::authz::v1 as authz;
use workteams_tests::{
    Authz, GrantTo, RunningDirectory, RunningSidecar, SETUP_TIMEOUT, for_each_database, minimize_latency, resource_id,
    user_id,
};

const MAILBOX: &str = "mail.mailbox";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sidecar_catches_up() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;
        let directory_url = stack.directory.url();
        let workteams_tests::Stack {
            directory,
            sidecar,
            admin,
            authz: _,
        } = stack;
        sidecar.stop().await;

        let token = admin.grant(&mailbox, GrantTo::User(&user), &["read", "send"], None).await;
        let sidecar = RunningSidecar::start(&directory_url).await;
        let status = sidecar.wait_until_ready().await;
        let authz = Authz::new(sidecar.client().await);
        let check = authz.check(&user, &mailbox, "send", &token).await;

        assert!(check.allowed);
        assert_eq!(status.organizations, 1);
        assert_eq!(status.resources, 1);
        workteams_tests::Stack {
            directory,
            sidecar,
            admin,
            authz,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_restart_resumes_stream() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        let other = admin.resource(&organization, MAILBOX, "team@example.com", None, true).await.id;
        let granted = admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;
        let before = stack.authz.check(&user, &mailbox, "read", &granted).await;

        let workteams_tests::Stack {
            directory,
            sidecar,
            admin,
            authz,
        } = stack;
        let address = directory.address();
        let database_url = directory.database_url().to_owned();
        directory.stop().await;

        let disconnected = wait_for_status(&authz, |status| !status.connected).await;
        let during = authz
            .try_check(user_id(&user), resource_id(&mailbox), "read", minimize_latency())
            .await
            .unwrap();

        let directory = RunningDirectory::start_at(address, &database_url).await;
        let admin_after = directory.client().await;
        let token = admin_after.grant(&other, GrantTo::User(&user), &["send"], None).await;
        let after = authz.check(&user, &other, "send", &token).await;
        let reconnected = wait_for_status(&authz, |status| status.connected).await;

        assert!(before.allowed);
        assert!(!disconnected.connected);
        assert!(during.allowed, "the sidecar stopped answering from its last index");
        assert_eq!(during.revision, before.revision);
        assert!(after.allowed);
        assert!(after.revision > before.revision);
        assert!(reconnected.connected);
        drop(admin);
        workteams_tests::Stack {
            directory,
            sidecar,
            admin: admin_after,
            authz,
        }
    })
    .await;
}

/// Polls GetIndexStatus until `condition` holds, for a bounded time.
async fn wait_for_status(
    authz: &Authz,
    condition: impl Fn(&authz::GetIndexStatusResponse) -> bool,
) -> authz::GetIndexStatusResponse {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let status = authz
            .client
            .clone()
            .get_index_status(authz::GetIndexStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if condition(&status) || tokio::time::Instant::now() >= deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_log_forces_snapshot() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization("acme").await.id;
        let user = admin.collaborator(&organization, "ada").await.id;
        let mailbox = admin.resource(&organization, MAILBOX, "ada@example.com", None, true).await.id;
        let workteams_tests::Stack {
            directory,
            sidecar,
            admin,
            authz: _,
        } = stack;
        sidecar.stop().await;

        // A sidecar that waits 3 to 6 seconds before reconnecting, so the
        // restarted directory can purge its log in the meantime.
        let config = workteams_authz::AuthzConfig {
            reconnect_min_backoff: Duration::from_secs(6),
            reconnect_max_backoff: Duration::from_secs(6),
            ..workteams_tests::test_sidecar_config(&directory.url())
        };
        let sidecar = RunningSidecar::start_with(config).await;
        let followed = sidecar.wait_until_ready().await;
        let authz = Authz::new(sidecar.client().await);
        let address = directory.address();
        let database_url = directory.database_url().to_owned();
        directory.stop().await;
        drop(admin);

        let directory = RunningDirectory::start_at_with(address, &database_url, |config| {
            config.change_log_retention = Duration::from_millis(300);
            config.purge_interval = Duration::from_millis(100);
        })
        .await;
        let admin = directory.client().await;
        let token = admin.grant(&mailbox, GrantTo::User(&user), &["read"], None).await;
        let truncated = wait_until_truncated(&admin, &followed.consistency_token).await;
        let mut request = tonic::Request::new(authz::CheckAccessRequest {
            user: Some(user_id(&user)),
            resource: Some(resource_id(&mailbox)),
            permission: "read".to_owned(),
            consistency: Some(workteams_tests::fresh_as(&token)),
        });
        request.set_timeout(SETUP_TIMEOUT);
        let check = authz.client.clone().check_access(request).await.unwrap().into_inner();

        assert_eq!(truncated, tonic::Code::FailedPrecondition);
        assert!(check.allowed);
        workteams_tests::Stack {
            directory,
            sidecar,
            admin,
            authz,
        }
    })
    .await;
}

/// Waits until the directory refuses to stream from `token` because its log
/// was purged, and returns the refusal's code (or the last code seen).
async fn wait_until_truncated(admin: &workteams_tests::Directory, token: &str) -> tonic::Code {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let watched = admin
            .client
            .clone()
            .watch(workteams_proto::directory::v1::WatchRequest {
                from_consistency_token: token.to_owned(),
                organization_id: String::new(),
            })
            .await;
        let code = match watched {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        if code == tonic::Code::FailedPrecondition || tokio::time::Instant::now() >= deadline {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
